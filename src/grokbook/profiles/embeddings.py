"""Chapter 2, "The embedding decides": Sec. 2.1 of the GrokTransfer paper.

A 3-layer bias-free FNN reads a FIXED unit-norm embedding of each operand; each embedding has
its own (init scale, lr, weight decay). paper: width 512 and the paper's tuned triples. book:
the paper's task (a+b mod 113, 25% train) at width 128, the paper's triples except Fourier's,
which at lr 0.1 trains at the edge of stability (its kernel jumps every few hundred epochs), so
it uses lr 0.01, the learning rate of one-hot, text and binary, and weight decay 1. ci: p = 71
with 35% train, the smallest table on which one-hot still shows a clear plateau. ``seeds`` train
one-hot and Fourier (the claims compare them), ``other_seeds`` binary and text. Every run stops
once its test accuracy has held 95% for 20 evaluations (binary levels off below 99%), except
one-hot's, which hold it for 50 (500 epochs: the kernel is compared with itself after the
jump), Fourier's, which train their whole budget so that the kernel can be watched after it
generalized, and text's, which at book have 6000 epochs, long enough to measure its plateau;
one-hot and Fourier record the relative NTK change on ``ntk_probe`` test inputs. The claims
compare one-hot and Fourier, so they train 8 seeds at book and 5 at ci; binary and text, shown
but not compared in a claim, train 2 and 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from grokbook.config import BudgetCfg, FNNCfg, ModularCfg, OptimCfg, RunCfg, replace

NAMES = ("one_hot", "binary", "fourier", "text")


@dataclass(frozen=True)
class Embeddings:
    """``runs``: one RunCfg per embedding name (``NAMES``); ``seeds`` for one-hot and Fourier,
    ``other_seeds`` for binary and text."""

    name: str
    seeds: tuple[int, ...]
    other_seeds: tuple[int, ...]
    runs: dict[str, RunCfg]

    @property
    def p(self) -> int:
        return self.runs["one_hot"].data.p

    @property
    def frac(self) -> float:
        return self.runs["one_hot"].data.frac

    def seeds_of(self, name: str) -> tuple[int, ...]:
        return self.seeds if name in ("one_hot", "fourier") else self.other_seeds


def _runs(data: ModularCfg, width: int, epochs: int, text_epochs: int, fourier_epochs: int,
          probe: int, triples: dict[str, tuple[float, float, float]]) -> dict[str, RunCfg]:
    stop = BudgetCfg(epochs, eval_every=10, stop_acc=0.95, stop_patience=20)
    budgets = {"one_hot": replace(stop, stop_patience=50), "binary": stop,
               "text": replace(stop, epochs=text_epochs),
               "fourier": replace(stop, epochs=fourier_epochs, stop_acc=None)}
    return {name: RunCfg(data=data,
                         model=FNNCfg(width=width, depth=3, init_scale=init, embedding=name),
                         optim=OptimCfg(lr=lr, weight_decay=wd), budget=budgets[name],
                         ntk_probe=probe if name in ("one_hot", "fourier") else 0)
            for name, (init, lr, wd) in triples.items()}


TRIPLES = {"one_hot": (0.2, 1e-2, 5.0), "binary": (0.3, 1e-2, 1.0),
           "fourier": (0.5, 1e-2, 1.0), "text": (1.3, 1e-2, 1.0)}
PAPER_TRIPLES = {**TRIPLES, "fourier": (0.5, 0.1, 0.1)}

BOOK = Embeddings("book", seeds=tuple(range(8)), other_seeds=(0, 1),
                  runs=_runs(ModularCfg("add", 113, 0.25), width=128, epochs=3000,
                             text_epochs=6000, fourier_epochs=1000, probe=64, triples=TRIPLES))
CI = Embeddings("ci", seeds=tuple(range(5)), other_seeds=(0,),
                runs=_runs(ModularCfg("add", 71, 0.35), width=128, epochs=1200, text_epochs=500,
                           fourier_epochs=600, probe=48, triples=TRIPLES))
PAPER = Embeddings("paper", seeds=(0, 1, 2), other_seeds=(0, 1, 2),
                   runs={name: replace(run, model__width=512, budget__eval_every=20)
                         for name, run in _runs(ModularCfg("add", 113, 0.25), width=128,
                                                epochs=10000, text_epochs=10000,
                                                fourier_epochs=5000, probe=128,
                                                triples=PAPER_TRIPLES).items()})
PROFILES = {"ci": CI, "book": BOOK, "paper": PAPER}
