"""Chapter 7, "Seeing it coming": progress measures, token uniformity and data coverage.

ci and book: chapter 1's Transformer (1 layer, d_model 64, 4 heads, MLP 256, no LayerNorm,
init scale 0.5) on a+b mod 59 with half of the table for training, and chapter 1's FNN
(d_embed 32, two layers of width 128) with 40% (at 30% its plateau outlasts the book's
budget). Both at lr 1e-2, weight decay 1, stopped once test accuracy has held 99% for 20
evaluations (200 epochs of cleanup), so every measure's final value is measured after the jump.
Uniformity: the same FNN with 15% of the table, too little to grok within the budget, at weight
decay 0 and 1. Coverage: the FNN on 35% of the table (the reference code: 30%, at which our
FNN needs most of 3,000 epochs to grok even with nothing held out; at 35% it groks within 1,000)
at weight decay 3 (chapter 1's heatmap: the fastest), with the square or the strip held out, k
in {24, 36}: Gu et al.'s {40, 60} at p = 97 scaled to p = 59 (their 67 would leave the strip
fewer pairs outside it than the training set needs at p = 59).
ci: smaller models, 5 seeds instead of 8: the Transformer at d_model 32 on the book's data (at
p = 31 it is erratic: many seeds generalize with no delay, others not within the budget), the
FNN and the coverage runs at p = 31 (k scaled likewise; the FNN on 60% of the table).

Images: Gu et al.'s polygon counting at a CPU size (``grokbook.images``): hexagons at most, cells
of 12 pixels (24 x 24 pictures, 625 in all), half of them for training, a small ResNet of width 8
from scratch (``grokbook.models.SmallResNet``) at its default initialisation and at 3 times it,
AdamW lr 5e-3, weight decay 0.1, 300 epochs (the largest initialisation memorizes in about 150).
ci: the same runs, 200 epochs and 3 seeds instead of 4.

paper: Nanda et al.'s Transformer (d_model 128, MLP 512) on a+b mod 113, 30% train, lr 1e-3,
for a GPU; the coverage runs at Gu et al.'s p = 97, 30% train, k in {40, 50, 60}; the pictures
with up to 12 sides (14,641 of them), a quarter for training, cells of 16 pixels, the ResNet at
width 64 (ResNet-18's), lr 1e-3 and 20,000 epochs (Gu et al.'s; their pictures are 224 pixels
square, their ResNet-18 pretrained).
"""

from __future__ import annotations

from dataclasses import dataclass

from grokbook.config import (
    BudgetCfg,
    CoverageCfg,
    FNNCfg,
    ModularCfg,
    OptimCfg,
    PolygonCfg,
    ResNetCfg,
    RunCfg,
    TransformerCfg,
    replace,
)

HOLDOUTS = ("square", "strip")


@dataclass(frozen=True)
class Progress:
    """``transformer``, ``fnn``: the runs whose progress measures the chapter follows, one per
    seed in ``seeds``; ``uniformity``: the FNN run with too little data to grok, trained at each
    weight decay in ``uniformity_wds`` from ``uniformity_seeds``; ``coverage``: the run of the
    coverage experiment (its data's operation, p and training fraction; :meth:`coverage_run`
    holds out nothing, the square or the strip of each size in ``coverage_ks``), from
    ``coverage_seeds``; ``images``: the polygon-counting
    run, trained at each init scale in ``image_scales`` from ``image_seeds``."""

    name: str
    seeds: tuple[int, ...]
    transformer: RunCfg
    fnn: RunCfg
    uniformity: RunCfg
    uniformity_wds: tuple[float, ...]
    uniformity_seeds: tuple[int, ...]
    coverage: RunCfg
    coverage_ks: tuple[int, ...]
    coverage_seeds: tuple[int, ...]
    images: RunCfg
    image_scales: tuple[float, ...]
    image_seeds: tuple[int, ...]

    @property
    def p(self) -> int:
        return self.transformer.data.p

    def coverage_run(self, holdout: str | None, k: int = 0) -> RunCfg:
        """The coverage run with ``holdout`` (``"square"``, ``"strip"``; None: no region held
        out) of size ``k``. Every one of them, the control with nothing held out included,
        gives the two operands separate tokens (``grokbook.tasks.coverage_split``), so the
        control differs from the others only in the region. ``k`` must be 0 with None."""
        d = self.coverage.data
        region = "none" if holdout is None else holdout
        return replace(self.coverage, data=CoverageCfg(d.op, d.p, d.frac, region, k))

    def uniformity_run(self, weight_decay: float) -> RunCfg:
        return replace(self.uniformity, optim__weight_decay=weight_decay)

    def image_run(self, init_scale: float) -> RunCfg:
        """The polygon-counting run with the ResNet's parameters ``init_scale`` times their
        default initialisation."""
        return replace(self.images, model__init_scale=init_scale)


_STOP = BudgetCfg(2000, eval_every=10, stop_acc=0.99, stop_patience=20)
_OPTIM = OptimCfg(lr=1e-2, weight_decay=1.0, warmup_steps=10)
_FNN = FNNCfg(d_embed=32, width=128, depth=2, init_scale=0.5)
BOOK = Progress(
    name="book", seeds=tuple(range(8)),
    transformer=RunCfg(data=ModularCfg("add", p=59, frac=0.5),
                       model=TransformerCfg(d_model=64, n_heads=4, d_mlp=256, init_scale=0.5),
                       optim=_OPTIM, budget=_STOP),
    fnn=RunCfg(data=ModularCfg("add", p=59, frac=0.4), model=_FNN, optim=_OPTIM, budget=_STOP),
    uniformity=RunCfg(data=ModularCfg("add", p=59, frac=0.15), model=_FNN, optim=_OPTIM,
                      budget=BudgetCfg(1500, eval_every=10)),
    uniformity_wds=(0.0, 1.0), uniformity_seeds=(0, 1, 2),
    coverage=RunCfg(data=ModularCfg("add", p=59, frac=0.35), model=_FNN,
                    optim=replace(_OPTIM, weight_decay=3.0),
                    budget=BudgetCfg(1500, eval_every=10, stop_acc=0.99, stop_patience=20)),
    coverage_ks=(24, 36), coverage_seeds=(0, 1, 2),
    images=RunCfg(data=PolygonCfg(max_sides=6, cell=12, frac=0.5), model=ResNetCfg(width=8),
                  optim=OptimCfg(lr=5e-3, weight_decay=0.1),
                  budget=BudgetCfg(300, eval_every=20)),
    image_scales=(1.0, 3.0), image_seeds=(0, 1, 2, 3),
)
_CI = {"data__p": 31}
CI = replace(
    BOOK, name="ci", seeds=tuple(range(5)),
    transformer=replace(BOOK.transformer, model__d_model=32, model__d_mlp=128,
                        budget__epochs=2500),
    fnn=replace(BOOK.fnn, **_CI, model__d_embed=16, model__width=64, data__frac=0.6),
    uniformity=replace(BOOK.uniformity, **_CI, model__d_embed=16, model__width=64,
                       data__frac=0.2, budget__epochs=1000),
    coverage=replace(BOOK.coverage, **_CI, model__d_embed=16, model__width=64,
                     data__frac=0.4, budget__epochs=1500),
    coverage_ks=(12, 16), coverage_seeds=(0, 1),
    images=replace(BOOK.images, budget__epochs=200), image_seeds=(0, 1, 2),
)
_PAPER = {"data__p": 113, "data__frac": 0.3, "optim__lr": 1e-3, "budget__epochs": 30000,
          "budget__eval_every": 50}
PAPER = replace(
    BOOK, name="paper", seeds=tuple(range(8)),
    transformer=replace(BOOK.transformer, **_PAPER, model__d_model=128, model__d_mlp=512,
                        model__init_scale=1.0),
    fnn=replace(BOOK.fnn, **_PAPER, model__d_embed=128, model__width=512),
    uniformity=replace(BOOK.uniformity, data__p=113, budget__epochs=30000),
    coverage=replace(BOOK.coverage, data__p=97, data__frac=0.3, budget__epochs=30000),
    coverage_ks=(40, 50, 60),
    images=replace(BOOK.images, data=PolygonCfg(max_sides=12, cell=16, frac=0.25),
                   model__width=64, optim__lr=1e-3, budget__epochs=20000,
                   budget__eval_every=100),
)
PROFILES = {"ci": CI, "book": BOOK, "paper": PAPER}
