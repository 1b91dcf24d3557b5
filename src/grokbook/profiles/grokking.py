"""Chapter 1, "Grokking": an FNN and a Transformer memorize a+b mod p, then generalize.

Ours for ci and book: p and widths small enough for a CPU, lr and weight decay raised so that
the plateau ends within a few thousand epochs (the delay scales roughly like 1 / (lr * wd), Liu
et al. 2022). paper: Nanda et al.'s 1-layer Transformer on a+b mod 113 with 30% train, and the
GrokTransfer paper's 3-layer FNN. Seeds: 8 at book (each model, and each init scale), 5 at ci;
the weight decay x training fraction grid uses the first seed only.
"""

from __future__ import annotations

from dataclasses import dataclass

from grokbook.config import (
    BudgetCfg,
    FNNCfg,
    ModularCfg,
    OptimCfg,
    RunCfg,
    TransformerCfg,
    replace,
)


@dataclass(frozen=True)
class Grokking:
    """``fnn``, ``transformer``: the two grokking runs (one per seed in ``seeds``); the weight
    decay x training fraction grid (``wd_grid``, ``frac_grid``, ``grid_epochs``, one seed) and
    the init-scale experiment (``init_scales`` x ``seeds``, ``init_epochs``), both FNN runs that
    stop once test accuracy has held 99% for 5 evaluations."""

    name: str
    seeds: tuple[int, ...]
    fnn: RunCfg
    transformer: RunCfg
    wd_grid: tuple[float, ...]
    frac_grid: tuple[float, ...]
    grid_epochs: int
    init_scales: tuple[float, ...]
    init_epochs: int

    @property
    def data(self) -> ModularCfg:
        return self.fnn.data

    @property
    def p(self) -> int:
        return self.data.p

    @property
    def frac(self) -> float:
        return self.data.frac

    def sweep_run(self, epochs: int) -> RunCfg:
        """The FNN run of the grid and init-scale experiments: stops at 99% for 5 evaluations."""
        return replace(self.fnn, budget__epochs=epochs, budget__stop_acc=0.99,
                       budget__stop_patience=5)


_DATA = ModularCfg("add", p=59, frac=0.5)
BOOK = Grokking(
    name="book", seeds=tuple(range(8)),
    fnn=RunCfg(data=_DATA, model=FNNCfg(d_embed=32, width=128, depth=2),
               optim=OptimCfg(lr=1e-2, weight_decay=1.0), budget=BudgetCfg(2000, eval_every=10)),
    transformer=RunCfg(data=_DATA,
                       model=TransformerCfg(d_model=64, n_heads=4, d_mlp=256, init_scale=0.5),
                       optim=OptimCfg(lr=1e-2, weight_decay=1.0, warmup_steps=10),
                       budget=BudgetCfg(2000, eval_every=10, stop_acc=0.99, stop_patience=20)),
    wd_grid=(0.0, 0.3, 1.0, 3.0), frac_grid=(0.3, 0.5, 0.7), grid_epochs=3000,
    init_scales=(0.5, 2.0, 8.0, 16.0), init_epochs=3000,
)
_CI_DATA = {"data__p": 31, "data__frac": 0.6}
CI = Grokking(
    name="ci", seeds=tuple(range(5)),
    fnn=replace(BOOK.fnn, **_CI_DATA, model__d_embed=16, model__width=64, budget__epochs=1200),
    transformer=replace(BOOK.transformer, **_CI_DATA, model__d_model=32, model__d_mlp=128,
                        budget__epochs=3000),
    wd_grid=(0.0, 1.0), frac_grid=(0.6, 0.8), grid_epochs=1500,
    init_scales=BOOK.init_scales, init_epochs=3000,
)
_PAPER_DATA = {"data__p": 113, "data__frac": 0.3, "optim__lr": 1e-3, "budget__epochs": 30000,
               "budget__eval_every": 50}
PAPER = Grokking(
    name="paper", seeds=(0, 1, 2, 3, 4),
    fnn=replace(BOOK.fnn, **_PAPER_DATA, model__d_embed=128, model__width=512, model__depth=3),
    transformer=replace(BOOK.transformer, **_PAPER_DATA, model__d_model=128, model__d_mlp=512,
                        model__init_scale=1.0),
    wd_grid=(0.0, 0.1, 0.3, 1.0, 3.0), frac_grid=(0.2, 0.3, 0.5, 0.7), grid_epochs=30000,
    init_scales=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0), init_epochs=30000,
)
PROFILES = {"ci": CI, "book": BOOK, "paper": PAPER}
