"""Chapter 4, "Let a weak model grok for you": GrokTransfer for FNNs (paper Sec. 4, Figs. 6, 7).

``weak[task]`` is the weak FNN's run (2 layers), stopped when its test accuracy first reaches
50%; ``target[task]`` the 3-layer FNN trained from ``A @ B``; ``scratch[task]`` the same network
trained from scratch. Both targets have the same budget and stop once test accuracy has held
97% for 3 evaluations; each trains at its tuned (lr, weight decay) per task
(``grokbook.tuning``; before tuning: (1e-2, 0.1) and (1e-2, 1); the paper profile keeps the
paper's). book: 8 seeds; a+b and a*b mod 97 with 30% train; the weak model has d_embed 6 (the
paper's 4 mostly learns a single Fourier frequency at our size, see the chapter) and, for a*b,
width 32 (width 16 stays below 50% test on half the seeds). ci: 5 seeds, p 59 with half the
table, a narrower target (also on digits), a weak a*b model with d_W 8 and width 16, shorter
budgets. paper:
p = 113 with 25% train, weak d_embed 4 / width 16, target 128 / 512 and the paper's Fig. 1b
triples: GrokTransfer (0.3, 5e-3, 3), scratch (1, 5e-2, 3).

``random_seeds``, ``random_epochs``: the no-transfer control (a random A); ``sweep``: weak
embeddings of other sizes, targets trained ``epochs``; ``snapshots``: the weak model (of a+b)
trained a fixed number of ``epochs`` without its accuracy stop, a target from each (Fig. 7; the
paper's epochs at the paper profile), with the sweep's target budget; ``ablations``: merging
``A @ B`` after ``merge_at`` epochs and a weak embedding as wide as the target's (Fig. 15b, c),
whose weak model trains at the weight decay among ``wide_weight_decays`` that reaches the
weak model's stop soonest (median over the tuning seeds, ``wide_scan_epochs`` at most: at the
weak model's own weight decay it memorizes and never gets there); ``regime``:
the regime map's task, primes, training fractions and tuning candidates per side
(``grokbook.regime``). ``parity_*``:
(40, 3)-sparse parity (Fig. 6c) with the paper's weak model (3 layers, width 16, stopped at 70%
test) and its (lr, wd), not tuned: GrokTransfer (1e-3, 1e-3), scratch (1e-2, 1). ``digits_*``:
the image task of Fig. 14 on scikit-learn's 8 x 8 digits (1000 training pictures, the other 797
for test; the paper trains on 200 MNIST pictures, with which 8 x 8 digits barely reach 95% test),
a 4-layer target at init scale 16 (Omnigrok's way to make a network on pictures grok; at scale 1
it generalizes at once), a 2-layer weak model stopped at 40% test as in the paper; scratch and
the target tuned like the arithmetic tasks (task ``digits`` of the tuning table).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from grokbook.config import (
    BudgetCfg,
    DigitsCfg,
    FNNCfg,
    ModularCfg,
    OptimCfg,
    ParityCfg,
    RunCfg,
    VectorFNNCfg,
    replace,
)
from grokbook.experiments import GrokTransfer


@dataclass(frozen=True)
class Transfer:
    name: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    weak: dict[str, RunCfg]
    target: dict[str, RunCfg]
    scratch: dict[str, RunCfg]
    random_seeds: tuple[int, ...]
    random_epochs: int
    sweep: dict[str, Any]
    snapshots: dict[str, Any]
    ablations: dict[str, Any]
    regime: dict[str, Any]
    parity_seeds: tuple[int, ...]
    parity_weak: RunCfg
    parity_target: RunCfg
    parity_scratch: RunCfg
    digits_seeds: tuple[int, ...]
    digits_weak: RunCfg
    digits_target: RunCfg
    digits_scratch: RunCfg

    @property
    def p(self) -> int:
        return self.target[self.tasks[0]].data.p

    @property
    def frac(self) -> float:
        return self.target[self.tasks[0]].data.frac

    def grok_transfer(self, task: str, weak: dict | None = None, **target_changes
                      ) -> GrokTransfer:
        """GrokTransfer on ``task``; ``weak`` and ``target_changes`` change the weak run and
        the target run (``config.replace`` fields, e.g. ``budget__epochs=1000``)."""
        return GrokTransfer(replace(self.weak[task], **(weak or {})),
                            replace(self.target[task], **target_changes))

    def parity_transfer(self) -> GrokTransfer:
        return GrokTransfer(self.parity_weak, self.parity_target)

    def digits_transfer(self) -> GrokTransfer:
        return GrokTransfer(self.digits_weak, self.digits_target)


def _tasks(p: int, frac: float, tasks: tuple[str, ...], **runs: RunCfg) -> dict:
    """Per task, the same run on that task's table."""
    return {name: {task: replace(run, data=ModularCfg(task, p, frac)) for task in tasks}
            for name, run in runs.items()}


_TARGET_STOP = {"stop_acc": 0.97, "stop_patience": 3}
_WEAK = RunCfg(model=FNNCfg(d_embed=6, width=16, depth=2),
               optim=OptimCfg(lr=1e-2, weight_decay=0.1),
               budget=BudgetCfg(4000, eval_every=10, stop_acc=0.5, stop_patience=1))
_TARGET = RunCfg(model=FNNCfg(d_embed=32, width=128, depth=3),
                 optim=OptimCfg(lr=1e-2, weight_decay=0.1),
                 budget=BudgetCfg(3000, eval_every=10, **_TARGET_STOP))
_SCRATCH = replace(_TARGET, optim__weight_decay=1.0)  # the same budget as the target
_BOOK_RUNS = _tasks(97, 0.3, ("add", "mul"), weak=_WEAK, target=_TARGET, scratch=_SCRATCH)
_PARITY = ParityCfg(n_bits=40, k=3, n_train=1000, n_test=2000)
_DIGITS_TARGET = RunCfg(data=DigitsCfg(n_train=1000, n_test=797),
                        model=VectorFNNCfg(d_embed=128, width=128, depth=4, init_scale=16.0),
                        optim=OptimCfg(lr=1e-3, weight_decay=1.0),
                        budget=BudgetCfg(2000, eval_every=10, stop_acc=0.95, stop_patience=3))
BOOK = Transfer(
    name="book", tasks=("add", "mul"), seeds=tuple(range(8)),
    weak={**_BOOK_RUNS["weak"], "mul": replace(_BOOK_RUNS["weak"]["mul"], model__width=32)},
    target=_BOOK_RUNS["target"], scratch=_BOOK_RUNS["scratch"],
    random_seeds=tuple(range(5)), random_epochs=2000,
    sweep={"seeds": (0, 1), "d_embed": (2, 4), "epochs": 1000},
    snapshots={"seeds": tuple(range(6)), "epochs": (200, 300, 400, 500, 600, 800)},
    ablations={"seeds": tuple(range(5)), "merge_at": 100, "epochs": 1500,
               "wide_weight_decays": (0.1, 0.3, 1.0, 3.0), "wide_scan_epochs": 1500},
    regime={"task": "add", "ps": (59, 97), "fracs": (0.15, 0.2, 0.3, 0.4), "candidates": 3},
    parity_seeds=tuple(range(8)),
    parity_weak=RunCfg(data=_PARITY, model=VectorFNNCfg(d_embed=16, width=16, depth=3),
                       optim=OptimCfg(lr=1e-2, weight_decay=1e-3), loss="logistic",
                       budget=BudgetCfg(3000, eval_every=10, stop_acc=0.7, stop_patience=1)),
    parity_target=RunCfg(data=_PARITY, model=VectorFNNCfg(d_embed=128, width=128, depth=3),
                         optim=OptimCfg(lr=1e-3, weight_decay=1e-3), loss="logistic",
                         budget=BudgetCfg(2000, eval_every=10, **_TARGET_STOP)),
    parity_scratch=RunCfg(data=_PARITY, model=VectorFNNCfg(d_embed=128, width=128, depth=3),
                          optim=OptimCfg(lr=1e-2, weight_decay=1.0), loss="logistic",
                          budget=BudgetCfg(4000, eval_every=10, **_TARGET_STOP)),
    digits_seeds=tuple(range(8)),
    digits_weak=replace(_DIGITS_TARGET, model=VectorFNNCfg(d_embed=16, width=32, depth=2),
                        optim__lr=1e-2, optim__weight_decay=0.1,
                        budget=BudgetCfg(500, eval_every=1, stop_acc=0.4, stop_patience=1)),
    digits_target=_DIGITS_TARGET,
    digits_scratch=_DIGITS_TARGET,
)

_CI_DATA = {"data__p": 59, "data__frac": 0.5}
CI = replace(
    BOOK, name="ci", seeds=tuple(range(5)),
    weak={"add": replace(BOOK.weak["add"], **_CI_DATA),
          "mul": replace(BOOK.weak["mul"], **_CI_DATA, model__d_embed=8, model__width=16)},
    target={t: replace(r, **_CI_DATA, model__width=64, budget__epochs=1500)
            for t, r in BOOK.target.items()},
    scratch={t: replace(r, **_CI_DATA, model__width=64, budget__epochs=1500)
             for t, r in BOOK.scratch.items()},
    random_epochs=1500,
    sweep={**BOOK.sweep, "seeds": (0, 1, 2), "epochs": 800},
    snapshots={"seeds": tuple(range(5)), "epochs": (100, 150, 200, 300, 500, 800)},
    ablations={**BOOK.ablations, "merge_at": 50, "epochs": 800, "wide_scan_epochs": 1000},
    regime={**BOOK.regime, "ps": (47, 59), "fracs": (0.3, 0.5), "candidates": 2},
    parity_seeds=tuple(range(5)),
    parity_target=replace(BOOK.parity_target, model__d_embed=64, model__width=64,
                          budget__epochs=1000),
    parity_scratch=replace(BOOK.parity_scratch, model__d_embed=64, model__width=64,
                           budget__epochs=1500),
    digits_seeds=tuple(range(5)),
    digits_target=replace(BOOK.digits_target, model__d_embed=64, model__width=64,
                          budget__epochs=1500),
    digits_scratch=replace(BOOK.digits_scratch, model__d_embed=64, model__width=64,
                           budget__epochs=1500),
)

_PAPER_DATA = {"data__p": 113, "data__frac": 0.25, "budget__eval_every": 20}
_PAPER_TARGET = {"model__d_embed": 128, "model__width": 512, "budget__epochs": 10000}
PAPER = replace(
    BOOK, name="paper",
    weak={t: replace(r, **_PAPER_DATA, model__d_embed=4, model__width=16, budget__epochs=10000)
          for t, r in BOOK.weak.items()},
    target={t: replace(r, **_PAPER_DATA, **_PAPER_TARGET, model__init_scale=0.3,
                       optim__lr=5e-3, optim__weight_decay=3.0)
            for t, r in BOOK.target.items()},
    scratch={t: replace(r, **_PAPER_DATA, **_PAPER_TARGET, optim__lr=5e-2,
                        optim__weight_decay=3.0)
             for t, r in BOOK.scratch.items()},
    random_epochs=10000,
    sweep={"seeds": (0, 1, 2), "d_embed": (2, 8), "epochs": 5000},
    snapshots={"seeds": (0, 1, 2), "epochs": (100, 500, 800, 900, 1000, 1100, 1500, 2000)},
    ablations={**BOOK.ablations, "seeds": (0, 1, 2), "epochs": 10000,
               "wide_scan_epochs": 10000},
    regime={**BOOK.regime, "ps": (97, 113), "fracs": (0.15, 0.2, 0.25, 0.3, 0.4),
            "candidates": 1},
    parity_weak=replace(BOOK.parity_weak, budget__epochs=10000, budget__eval_every=20),
    parity_target=replace(BOOK.parity_target, model__width=512, budget__epochs=10000,
                          budget__eval_every=20),
    parity_scratch=replace(BOOK.parity_scratch, model__width=512, budget__epochs=10000,
                           budget__eval_every=20),
)
PROFILES = {"ci": CI, "book": BOOK, "paper": PAPER}


DIGITS = "digits"
"""The digits task's name in the tuning table."""


def tuned(P: Transfer) -> Transfer:
    """``P`` with scratch and the GrokTransfer target at their tuned (lr, weight decay) per task
    (``grokbook.tuning``; the paper profile keeps the paper's)."""
    from grokbook.tuning import best

    runs = {"scratch": {**P.scratch, DIGITS: P.digits_scratch},
            "GrokTransfer": {**P.target, DIGITS: P.digits_target}}
    for task in (*P.tasks, DIGITS):
        for method, by_task in runs.items():
            chosen = best("transfer", P.name, task, method)
            if chosen is not None:
                by_task[task] = replace(by_task[task], optim__lr=chosen[0],
                                        optim__weight_decay=chosen[1])
    scratch, target = runs["scratch"], runs["GrokTransfer"]
    return dataclasses.replace(P, scratch={t: scratch[t] for t in P.tasks},
                               target={t: target[t] for t in P.tasks},
                               digits_scratch=scratch[DIGITS], digits_target=target[DIGITS])
