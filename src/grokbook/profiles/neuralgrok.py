"""Chapter 6, "Learning how to step": NeuralGrok against plain training, GrokFast and the
per-tensor normalisation ablation.

ci and book: the book's FNN (learned embedding d_embed 16, one hidden layer of width 64;
about 6,800 weights) on the paper's Table 1 operations a+b, a-b, a*b and a^2-b mod 59 with
half of the table for training, every method tuned and raced on each (:data:`TASKS`; a^2-b,
the hardest, for twice the epochs, :attr:`NeuralGrokChapter.longer`). The paper's split: inner
49%, outer 1% of the table for NeuralGrok, test 50%; the other methods train on the whole
50%. Full-batch AdamW, budgets in epochs (= steps). Chosen for the CPU: one run of a task that
groks takes about a second, so that 5 methods x 4 tasks x 42 grid cells x 3 tuning seeds fit in
about an hour and a half on two cores (a^2-b, tuned for twice the epochs, the longest part);
a 1-layer Transformer of d_model 64 costs about ten times more per step. Each method trains at
its tuned (lr, weight decay) per task (``grokbook.tuning``; before tuning: (1e-2, 1)).
GrokFast's filters at their authors' defaults (EMA alpha 0.98, lambda 2; MA window 100,
lambda 5), as in chapter 5. NeuralGrok as the reference code runs it (T = 4, c = 0.2, clip
1.0, virtual SGD step 1e-3, meta Adam 1e-4), but an amplifier of one hidden layer of 32
(the reference: (128, 128); ``grokbook.neuralgrok``). TensorNorm: the same per-tensor
normalisation to norm c and clipping, without the amplifier (the paper's ablation).
ci: the book's models, data and tuning table, 5 seeds instead of 8, a shorter budget, the
first three operations (:data:`CI_TASKS`).

paper: the paper's Table 1 setting, for a GPU: GrokFast's decoder (2 layers, width 128,
4 heads, MLP 512) on mod 97 with half of the table for training, lr 1e-3, weight decay 1e-3
(the reference: Adam with coupled L2; here AdamW), 10 warm-up steps, the amplifier at the
reference's (128, 128). The reference trains minibatches of 512 for 3e5 steps; the book's loop
is full batch, so the paper profile's budget (20,000 epochs) is in full-batch steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from grokbook.config import (
    BudgetCfg,
    FNNCfg,
    GrokFastCfg,
    ModularCfg,
    OptimCfg,
    RunCfg,
    TransformerCfg,
    replace,
)
from grokbook.neuralgrok import NeuralGrokCfg, TensorNormCfg

METHODS = ("plain", "GrokFast-EMA", "GrokFast-MA", "TensorNorm", "NeuralGrok")
TASKS = ("add", "sub", "mul", "sq_sub")
"""The paper's Table 1 operations: every method is tuned and raced on each of them."""
CI_TASKS = ("add", "sub", "mul")
"""The operations the ci profile races: a^2-b, raced for twice the epochs, would add a third
to the tests' time."""
PAPER_TABLE_1 = {  # steps to 95% test accuracy, mod 97, Table 1 of the paper
    "add": {"plain": 1650, "GrokFast-MA": 1780, "GrokFast-EMA": 1820, "NeuralGrok": 900},
    "sub": {"plain": 4330, "GrokFast-MA": 2990, "GrokFast-EMA": 1340, "NeuralGrok": 1467},
    "mul": {"plain": 1280, "GrokFast-MA": 1150, "GrokFast-EMA": 1400, "NeuralGrok": 918},
    "sq_sub": {"plain": 4820, "GrokFast-MA": 3830, "GrokFast-EMA": 2730, "NeuralGrok": 1845},
}
"""The paper's Table 1 (steps to 95% test; Transformer, mod 97, minibatches of 512): the
paper's numbers, not ours; it has no TensorNorm column."""


@dataclass(frozen=True)
class NeuralGrokChapter:
    """``run``: the base run (its task replaced per task, no gradient transform); ``ema``,
    ``ma``, ``tensor_norm``, ``neuralgrok``: the transforms of the methods; ``c_values``,
    ``c_seeds``, ``c_task``: the robustness check of NeuralGrok's c; ``trace_seed``,
    ``trace_task``, ``trace_epochs``: the traced runs (AGE per method, the amplifier's weight
    along training), trained without early stopping."""

    name: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    run: RunCfg
    ema: GrokFastCfg
    ma: GrokFastCfg
    tensor_norm: TensorNormCfg
    neuralgrok: NeuralGrokCfg
    c_task: str
    c_values: tuple[float, ...]
    c_seeds: tuple[int, ...]
    trace_task: str
    trace_seeds: tuple[int, ...]
    trace_epochs: int
    longer: tuple[tuple[str, int], ...] = (("sq_sub", 2),)
    """(task, factor): tasks raced for ``factor`` times :attr:`run`'s epochs. a^2-b is also
    tuned for twice the epochs of the others (``grokbook.tuning.TASK_BUDGETS``): at 1000 some
    methods had no cell of the grid in which the median tuning seed reached 95% test."""
    tuned_optim: tuple[tuple[str, str, float, float], ...] = ()
    """(task, method, lr, weight decay), from the tuning table (see :func:`tuned`)."""

    @property
    def p(self) -> int:
        return self.run.data.p

    def epochs(self, task: str) -> int:
        """The race's epochs on ``task``: :attr:`run`'s, times its :attr:`longer` factor."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
        return self.run.budget.epochs * dict(self.longer).get(task, 1)

    @property
    def frac(self) -> float:
        return self.run.data.frac

    def transform(self, method: str):
        """The gradient transform of ``method`` (None for plain training)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
        return {"plain": None, "GrokFast-EMA": self.ema, "GrokFast-MA": self.ma,
                "TensorNorm": self.tensor_norm, "NeuralGrok": self.neuralgrok}[method]

    def optim(self, task: str, method: str) -> dict[str, float]:
        """``method``'s tuned optimizer changes on ``task`` (empty before tuning)."""
        for t, name, lr, wd in self.tuned_optim:
            if (t, name) == (task, method):
                return {"optim__lr": lr, "optim__weight_decay": wd}
        return {}

    def method(self, task: str, method: str, **changes) -> RunCfg:
        """``method`` on ``task`` at its tuned (lr, weight decay); ``changes`` (``config.replace``
        fields, ``grad_transform=`` included) apply after tuning."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
        return replace(self.run, **{"data__op": task, "budget__epochs": self.epochs(task),
                                    "grad_transform": self.transform(method),
                                    **self.optim(task, method), **changes})

    def methods(self, task: str, **changes) -> dict[str, RunCfg]:
        """Every method on ``task`` (see :meth:`method`)."""
        return {name: self.method(task, name, **changes) for name in METHODS}


_RUN = RunCfg(data=ModularCfg("add", 59, 0.5), model=FNNCfg(d_embed=16, width=64, depth=2),
              optim=OptimCfg(lr=1e-2, weight_decay=1.0),
              budget=BudgetCfg(1500, eval_every=10, stop_acc=0.97, stop_patience=3))
BOOK = NeuralGrokChapter(
    name="book", tasks=TASKS, seeds=tuple(range(8)), run=_RUN,
    ema=GrokFastCfg("ema", alpha=0.98, lamb=2.0), ma=GrokFastCfg("ma", window=100, lamb=5.0),
    tensor_norm=TensorNormCfg(c=0.2, max_norm=1.0), neuralgrok=NeuralGrokCfg(),
    c_task="add", c_values=(0.1, 0.2, 0.5, 1.0), c_seeds=(0, 1, 2, 3),
    trace_task="sub", trace_seeds=(0,), trace_epochs=1500,
)
CI = replace(BOOK, name="ci", tasks=CI_TASKS, seeds=tuple(range(5)),
             run=replace(_RUN, budget__epochs=1000), c_seeds=(0, 1), trace_epochs=600)
_PAPER_RUN = RunCfg(
    data=ModularCfg("add", 97, 0.5),
    model=TransformerCfg(d_model=128, n_heads=4, d_mlp=512, n_layers=2),
    optim=OptimCfg(lr=1e-3, weight_decay=1e-3, warmup_steps=10),
    budget=BudgetCfg(20000, eval_every=50, stop_acc=0.97, stop_patience=3))
PAPER = replace(BOOK, name="paper", run=_PAPER_RUN, longer=(),
                neuralgrok=NeuralGrokCfg(hidden=(128, 128)), trace_epochs=20000)
PROFILES = {"ci": CI, "book": BOOK, "paper": PAPER}


def tuned(P: NeuralGrokChapter) -> NeuralGrokChapter:
    """``P`` with every method at its tuned (lr, weight decay) on every task
    (``grokbook.tuning``; the paper profile keeps the paper's)."""
    from grokbook.tuning import best

    chosen = [(task, method, best("neuralgrok", P.name, task, method))
              for task in P.tasks for method in METHODS]
    return replace(P, tuned_optim=tuple((t, m, *lr_wd) for t, m, lr_wd in chosen if lr_wd))
