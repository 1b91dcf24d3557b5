"""Chapter 8, "The shoot-out": every way to remove the delay, on the same tasks, seeds and grid.

The tasks and the network are chapter 6's (``profiles/neuralgrok.py``): the book's FNN
(learned embedding d_embed 16, one hidden layer of width 64) on a+b, a-b and a*b mod 59 with
half of the table for training, full-batch AdamW, a budget in epochs. The methods:

- ``plain``: plain training at its tuned (lr, weight decay);
- ``wd-only``: plain training at the chapter's default learning rate (1e-2), only its weight
  decay tuned: the weight decay as the one knob (Power et al.; chapter 1's heatmap);
- ``small-init``: plain training from an initialisation scaled by 0.5 (Omnigrok's knob: a large
  initial weight norm makes the delay, a small one shortens it; chapter 1's init-scale runs);
- ``GrokFast-EMA``, ``GrokFast-MA``, ``TensorNorm``, ``NeuralGrok``: chapter 6's, at their
  settings there;
- ``GrokTransfer``: chapter 4's weak FNN on the same table (d_embed 6, width 16, stopped at 50%
  test; d_embed 8 for a*b, as chapter 4's ci profile) hands over its embedding A, the FNN starts
  from ``A @ B``; its weak model's cost is counted.

Every method is tuned on the same lr x weight decay grid with the same budget and tuning seeds
(``grokbook.tuning``): the methods chapter 6 already tuned read chapter 6's rows of the table
(:data:`SHARED`), ``small-init`` and ``GrokTransfer`` have rows of their own (chapter
``shootout``), ``wd-only`` reads plain training's rows at learning rate 1e-2. ci: the book's models,
data and table, one task (a+b), 5 seeds, a shorter budget. paper: chapter 6's paper setting (the
2-layer Transformer of GrokFast's and NeuralGrok's papers, mod 97) for a GPU, the methods at the
chapter's default (lr, weight decay); GrokTransfer there starts the Transformer from the weak FNN
(chapter 5's recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

from grokbook.config import BudgetCfg, FNNCfg, OptimCfg, RunCfg, replace
from grokbook.experiments import GrokTransfer, Method
from grokbook.profiles import neuralgrok as ch6

METHODS = ("plain", "wd-only", "small-init", "GrokFast-EMA", "GrokFast-MA", "TensorNorm",
           "NeuralGrok", "GrokTransfer")
SHARED = ("plain", "GrokFast-EMA", "GrokFast-MA", "TensorNorm", "NeuralGrok")
"""Methods tuned (and raced) exactly as in chapter 6: their tuned settings are chapter 6's."""
OWN = ("small-init", "GrokTransfer")
"""Methods with tuning rows of their own (``grokbook tune --chapter shootout``)."""
DEFAULT_LR = 1e-2
"""wd-only's learning rate: the chapter's setting before tuning (chapter 6's)."""
SMALL_INIT = 0.5


@dataclass(frozen=True)
class Shootout:
    """``base``: chapter 6's settings at this profile (the run, the transforms, the seeds);
    ``tasks``, ``seeds``: the races; ``weak``: the GrokTransfer weak run per task;
    ``tuned_optim``: (task, method, lr, weight decay) from the tuning table (:func:`tuned`)."""

    name: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    base: ch6.NeuralGrokChapter
    weak: RunCfg
    weak_mul: RunCfg
    tuned_optim: tuple[tuple[str, str, float, float], ...] = ()

    @property
    def p(self) -> int:
        return self.base.p

    @property
    def frac(self) -> float:
        return self.base.frac

    @property
    def budget(self) -> int:
        return self.base.run.budget.epochs

    def optim(self, task: str, method: str) -> dict[str, float]:
        for t, name, lr, wd in self.tuned_optim:
            if (t, name) == (task, method):
                return {"optim__lr": lr, "optim__weight_decay": wd}
        return {}

    def method(self, task: str, method: str) -> Method:
        """``method`` on ``task`` at its tuned (lr, weight decay)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
        if task not in ch6.TASKS:
            raise ValueError(f"unknown task {task!r}; tasks: {', '.join(ch6.TASKS)}")
        run = replace(self.base.run, data__op=task)
        tuned = self.optim(task, method)
        if method in SHARED:
            return replace(run, grad_transform=self.base.transform(method), **tuned)
        if method == "wd-only":
            return replace(run, **{"optim__lr": DEFAULT_LR, **tuned})
        if method == "small-init":
            return replace(run, model__init_scale=SMALL_INIT, **tuned)
        weak = replace(self.weak_mul if task == "mul" else self.weak, data=run.data)
        return GrokTransfer(weak, replace(run, **tuned))

    def methods(self, task: str) -> dict[str, Method]:
        return {name: self.method(task, name) for name in METHODS}


_WEAK = RunCfg(data=ch6.BOOK.run.data, model=FNNCfg(d_embed=6, width=16, depth=2),
               optim=OptimCfg(lr=1e-2, weight_decay=0.1),
               budget=BudgetCfg(4000, eval_every=10, stop_acc=0.5, stop_patience=1))
BOOK = Shootout(name="book", tasks=ch6.RACED, seeds=tuple(range(8)), base=ch6.BOOK,
                weak=_WEAK, weak_mul=replace(_WEAK, model__d_embed=8))
CI = replace(BOOK, name="ci", tasks=("add",), seeds=tuple(range(5)), base=ch6.CI)
PAPER = replace(BOOK, name="paper", base=ch6.PAPER,
                weak=replace(_WEAK, model__d_embed=4, budget__epochs=20000),
                weak_mul=replace(_WEAK, model__d_embed=4, budget__epochs=20000))
PROFILES = {"ci": CI, "book": BOOK, "paper": PAPER}


def tuned(P: Shootout) -> Shootout:
    """``P`` with every method at its tuned (lr, weight decay) on every task: chapter 6's rows
    for :data:`SHARED`, plain training's rows at learning rate :data:`DEFAULT_LR` for ``wd-only``,
    this chapter's rows for :data:`OWN` (the paper profile keeps the defaults)."""
    from grokbook.tuning import best

    chosen = []
    for task in P.tasks:
        for method in METHODS:
            if method in SHARED:
                lr_wd = best("neuralgrok", P.name, task, method)
            elif method == "wd-only":
                lr_wd = best("neuralgrok", P.name, task, "plain", lrs=(DEFAULT_LR,))
            else:
                lr_wd = best("shootout", P.name, task, method)
            chosen.append((task, method, lr_wd))
    return replace(P, tuned_optim=tuple((t, m, *lr_wd) for t, m, lr_wd in chosen if lr_wd))
