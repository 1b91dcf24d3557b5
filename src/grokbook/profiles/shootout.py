"""Chapter 8, "The shoot-out": every way to remove the delay, on the same tasks, seeds and grid.

The tasks and the network are chapter 6's (``profiles/neuralgrok.py``): the book's FNN
(learned embedding d_embed 16, one hidden layer of width 64) on a+b, a-b, a*b and a^2-b mod 59
with half of the table for training, full-batch AdamW, a budget in epochs (twice as many on
a^2-b, as in chapter 6). The methods:

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

A fifth task is not arithmetic: chapter 4's (40, 3)-sparse parity (:data:`PARITY`), 1000
training points, its target FNN (first layer 128 wide, then 128, 128; logistic loss) with the
race's optimizer, budget and stopping rule, and chapter 4's weak model for GrokTransfer (3 layers
of width 16, stopped at 70% test). Chapter 6 does not tune parity, so every method but
``wd-only`` has rows of its own there (:func:`tuned_here`).

A sixth task changes the network: chapter 5's one-layer Transformer on a+b mod 59
(:data:`TRANSFORMER`, ``profiles/cross.py``), with chapter 5's data, optimizer, budget and
stopping rule. Plain training, GrokFast's two filters and GrokTransfer (chapter 5's recipe: the
weak FNN stops at 30% test) are chapter 5's methods and read chapter 5's rows of the tuning
table, so their race runs are chapter 5's; ``wd-only`` reads plain training's rows there at
learning rate 1e-2; ``small-init`` (the Transformer's init scale halved), ``TensorNorm`` and
``NeuralGrok`` are tuned on chapter 5's grid and budget (``tuning.TASK_GRIDS``).

The same Transformer on a-b, a*b and a^2-b (:data:`LATER`, :data:`TRANSFORMER_OPS`) has no
chapter-5 rows, so every method but ``wd-only`` is tuned here on chapter 5's grid and budget
(1500 epochs on every operation), and ``wd-only`` reads this chapter's plain rows at 1e-2;
GrokTransfer keeps chapter 5's recipe on each operation (the weak FNN, d_embed 6, reached its
30% stop on a*b within 210-310 epochs on the tuning seeds). These tasks are tuned one at a time
(``grokbook tune --chapter shootout --task transformer_sub``); no profile races them, each is
raced alone into a committed table once tuned (``grokbook.leaderboard.committed``).

Every method is tuned on the same lr x weight decay grid with the same budget and tuning seeds
(``grokbook.tuning``): the methods chapter 6 already tuned read chapter 6's rows of the table
(:data:`SHARED`), ``small-init`` and ``GrokTransfer`` have rows of their own (chapter
``shootout``), ``wd-only`` reads plain training's rows at learning rate 1e-2 (on parity and
the Transformer's :data:`LATER` operations, this chapter's). ci: the book's models, data and
table, one task (a+b), 5 seeds, a shorter budget.
paper: chapter 6's paper setting (the 2-layer Transformer of GrokFast's and NeuralGrok's papers,
mod 97: its four operations already race on a Transformer, so there is no sixth task) and
chapter 4's paper-size parity for a GPU, the methods at the chapter's default (lr, weight
decay); GrokTransfer there starts the Transformer from the weak FNN (chapter 5's recipe).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from grokbook.config import BudgetCfg, FNNCfg, OptimCfg, RunCfg, replace
from grokbook.experiments import GrokTransfer, Recipe
from grokbook.profiles import cross as ch5
from grokbook.profiles import neuralgrok as ch6
from grokbook.profiles import transfer as ch4
from grokbook.tasks import OPERATIONS

METHODS = ("plain", "wd-only", "small-init", "GrokFast-EMA", "GrokFast-MA", "TensorNorm",
           "NeuralGrok", "GrokTransfer")
SHARED = ("plain", "GrokFast-EMA", "GrokFast-MA", "TensorNorm", "NeuralGrok")
"""Methods tuned (and raced) exactly as in chapter 6: their tuned settings are chapter 6's."""
OWN = ("small-init", "GrokTransfer")
"""Methods with tuning rows of their own (``grokbook tune --chapter shootout``)."""
PARITY = "parity"
"""The sparse-parity task's name (chapter 4's (40, 3)-sparse parity)."""
TRANSFORMER = "transformer"
"""The Transformer task's name: chapter 5's one-layer Transformer on a+b."""
TRANSFORMER_OPS = {TRANSFORMER: "add", "transformer_sub": "sub", "transformer_mul": "mul",
                   "transformer_sq_sub": "sq_sub"}
"""Chapter 5's Transformer on each of chapter 6's operations: task name -> operation. On a+b
(:data:`TRANSFORMER`) plain training, GrokFast and GrokTransfer are chapter 5's; on the other
operations every method but ``wd-only`` is tuned here (:func:`tuned_here`), on chapter 5's grid
and budget."""
LATER = tuple(t for t in TRANSFORMER_OPS if t != TRANSFORMER)
"""Tasks tuned (``grokbook tune --chapter shootout``) but raced by no profile: each is raced
alone once its tuning is complete, into a committed table (``grokbook.leaderboard.committed``)
that chapter 8 reads."""
CHAPTER5 = ("plain", "GrokFast-EMA", "GrokFast-MA", "GrokTransfer")
"""Methods raced on :data:`TRANSFORMER` exactly as in chapter 5 (its tuned settings, its runs)."""
DEFAULT_LR = 1e-2
"""wd-only's learning rate: the chapter's setting before tuning (chapter 6's)."""
SMALL_INIT = 0.5


@dataclass(frozen=True)
class Shootout:
    """``base``: chapter 6's settings at this profile (the run, the transforms, the seeds);
    ``tasks``, ``seeds``: the races; ``weak``: the GrokTransfer weak run per task;
    ``parity``, ``parity_weak``: the sparse-parity run before tuning and its weak run;
    ``transformer``: chapter 5's profile, whose network and methods race on :data:`TRANSFORMER`;
    ``tuned_optim``: (task, method, lr, weight decay) from the tuning table (:func:`tuned`)."""

    name: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    base: ch6.NeuralGrokChapter
    weak: RunCfg
    weak_mul: RunCfg
    parity: RunCfg
    parity_weak: RunCfg
    transformer: ch5.Cross
    tuned_optim: tuple[tuple[str, str, float, float], ...] = ()

    def label(self, task: str) -> str:
        """A task's short name: ``a+b``, ..., ``(40, 3)-parity``."""
        if task == PARITY:
            return f"({self.parity.data.n_bits}, {self.parity.data.k})-parity"
        if task in TRANSFORMER_OPS:
            return f"{OPERATIONS[TRANSFORMER_OPS[task]].formula}, Transformer"
        return OPERATIONS[task].formula

    def title(self, task: str) -> str:
        """A task with its size: ``a+b mod 59``, ``(40, 3)-parity, 1000 training points``."""
        if task == PARITY:
            return f"{self.label(task)}, {self.parity.data.n_train} training points"
        if task in TRANSFORMER_OPS:
            plain = self.transformer.plain
            return (f"{OPERATIONS[TRANSFORMER_OPS[task]].formula} mod {plain.data.p}, "
                    f"{plain.model.n_layers}-layer Transformer")
        return f"{self.label(task)} mod {self.p}"

    @property
    def p(self) -> int:
        return self.base.p

    @property
    def frac(self) -> float:
        return self.base.frac

    @property
    def budget(self) -> int:
        """The race's epochs on every task but those chapter 6 races longer (:meth:`epochs`)."""
        return self.base.run.budget.epochs

    def epochs(self, task: str) -> int:
        """The race's epochs on ``task``: chapter 6's (a^2-b twice as many), parity's
        :attr:`budget`, chapter 5's on the Transformer (:data:`TRANSFORMER_OPS`)."""
        if task not in ALL_TASKS:
            raise ValueError(f"unknown task {task!r}; tasks: {', '.join(ALL_TASKS)}")
        if task in TRANSFORMER_OPS:
            return self.transformer.plain.budget.epochs
        return self.budget if task == PARITY else self.base.epochs(task)

    def optim(self, task: str, method: str) -> dict[str, float]:
        for t, name, lr, wd in self.tuned_optim:
            if (t, name) == (task, method):
                return {"optim__lr": lr, "optim__weight_decay": wd}
        return {}

    def method(self, task: str, method: str) -> Recipe:
        """``method`` on ``task`` at its tuned (lr, weight decay)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
        if task not in ALL_TASKS:
            raise ValueError(f"unknown task {task!r}; tasks: {', '.join(ALL_TASKS)}")
        tuned = self.optim(task, method)
        if task in TRANSFORMER_OPS:
            return self._transformer(TRANSFORMER_OPS[task], method, tuned)
        run = self.parity if task == PARITY else replace(
            self.base.run, data__op=task, budget__epochs=self.epochs(task))
        if method in SHARED:
            return replace(run, grad_transform=self.base.transform(method), **tuned)
        if method == "wd-only":
            return replace(run, **{"optim__lr": DEFAULT_LR, **tuned})
        if method == "small-init":
            return replace(run, model__init_scale=SMALL_INIT, **tuned)
        if task == PARITY:
            return GrokTransfer(self.parity_weak, replace(run, **tuned))
        weak = replace(self.weak_mul if task == "mul" else self.weak, data=run.data)
        return GrokTransfer(weak, replace(run, **tuned))

    def methods(self, task: str) -> dict[str, Recipe]:
        return {name: self.method(task, name) for name in METHODS}

    def _transformer(self, op: str, method: str, tuned: dict[str, float]) -> Recipe:
        """``method`` on chapter 5's Transformer learning ``op``: chapter 5's own recipe for
        :data:`CHAPTER5` (on a+b the same configurations as chapter 5's race, so the same
        runs), else plain training changed as on the other tasks (small-init halves the
        Transformer's init scale)."""
        P = ch5.on_op(self.transformer, op)
        if method in CHAPTER5:  # chapter 5's own construction, at this (lr, weight decay)
            setting = ((method, tuned["optim__lr"], tuned["optim__weight_decay"]),) if tuned else ()
            return dataclasses.replace(P, tuned_optim=setting).methods()[method]
        if method == "wd-only":
            return replace(P.plain, **{"optim__lr": DEFAULT_LR, **tuned})
        if method == "small-init":
            return replace(P.plain, model__init_scale=P.plain.model.init_scale * SMALL_INIT,
                           **tuned)
        return replace(P.plain, grad_transform=self.base.transform(method), **tuned)


TASKS = (*ch6.TASKS, PARITY, TRANSFORMER)
"""The tasks the book profile races."""
ALL_TASKS = (*TASKS, *LATER)


def tuned_here(task: str) -> tuple[str, ...]:
    """The methods this chapter tunes on ``task`` itself (its rows of the tuning table):
    :data:`OWN` on chapter 6's tasks; on parity, which chapter 6 does not tune, every method
    but ``wd-only`` (which reads plain training's rows); on the Transformer, every method
    chapter 5 does not tune but ``wd-only`` on a+b, every method but ``wd-only`` on the other
    operations (:data:`LATER`), which chapter 5 does not race."""
    if task not in ALL_TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(ALL_TASKS)}")
    if task == TRANSFORMER:
        return tuple(m for m in METHODS if m not in (*CHAPTER5, "wd-only"))
    everything_but_wd_only = tuple(m for m in METHODS if m != "wd-only")
    return everything_but_wd_only if task == PARITY or task in LATER else OWN


def _parity(transfer: ch4.Transfer, neuralgrok: ch6.NeuralGrokChapter) -> RunCfg:
    """Chapter 4's parity target (data, network, loss) with the race's optimizer and budget."""
    return replace(transfer.parity_scratch, optim=neuralgrok.run.optim,
                   budget=neuralgrok.run.budget)


_WEAK = RunCfg(data=ch6.BOOK.run.data, model=FNNCfg(d_embed=6, width=16, depth=2),
               optim=OptimCfg(lr=1e-2, weight_decay=0.1),
               budget=BudgetCfg(4000, eval_every=10, stop_acc=0.5, stop_patience=1))
BOOK = Shootout(name="book", tasks=TASKS, seeds=tuple(range(8)), base=ch6.BOOK,
                weak=_WEAK, weak_mul=replace(_WEAK, model__d_embed=8),
                parity=_parity(ch4.BOOK, ch6.BOOK), parity_weak=ch4.BOOK.parity_weak,
                transformer=ch5.BOOK)
CI = replace(BOOK, name="ci", tasks=("add",), seeds=tuple(range(5)), base=ch6.CI,
             parity=_parity(ch4.BOOK, ch6.CI), transformer=ch5.CI)
PAPER = replace(BOOK, name="paper", tasks=(*ch6.TASKS, PARITY), base=ch6.PAPER,
                transformer=ch5.PAPER,
                parity=_parity(ch4.PAPER, ch6.PAPER), parity_weak=ch4.PAPER.parity_weak,
                weak=replace(_WEAK, model__d_embed=4, budget__epochs=20000),
                weak_mul=replace(_WEAK, model__d_embed=4, budget__epochs=20000))
PROFILES = {"ci": CI, "book": BOOK, "paper": PAPER}


def tuned_cell(profile: str, task: str, method: str):
    """The tuning table's scores row (``grokbook.tuning.best_cell``) that ``method`` races at
    on ``task``: chapter 6's rows for :data:`SHARED`, plain training's rows at learning rate
    :data:`DEFAULT_LR` for ``wd-only``, this chapter's rows for :data:`OWN` and for every
    method on parity and on the Transformer's :data:`LATER` operations (:func:`tuned_here`;
    ``wd-only`` there reads this chapter's plain rows); on :data:`TRANSFORMER`, chapter 5's
    rows for :data:`CHAPTER5` and ``wd-only``; None for the paper profile."""
    from grokbook.tuning import best_cell

    if task == TRANSFORMER and method in (*CHAPTER5, "wd-only"):
        return best_cell("cross", profile, "add", "plain" if method == "wd-only" else method,
                         lrs=(DEFAULT_LR,) if method == "wd-only" else None)
    if method == "wd-only":
        here = task == PARITY or task in LATER
        return best_cell("shootout" if here else "neuralgrok", profile, task, "plain",
                         lrs=(DEFAULT_LR,))
    return best_cell("shootout" if method in tuned_here(task) else "neuralgrok", profile, task,
                     method)


def tuned(P: Shootout) -> Shootout:
    """``P`` with every method at its tuned (lr, weight decay) on every task
    (:func:`tuned_cell`; the paper profile keeps the defaults)."""
    chosen = []
    for task in P.tasks:
        for method in METHODS:
            cell = tuned_cell(P.name, task, method)
            if cell is not None:
                chosen.append((task, method, float(cell.lr), float(cell.weight_decay)))
    return replace(P, tuned_optim=tuple(chosen))
