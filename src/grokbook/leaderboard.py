"""Methods side by side over seeds: what each run cost, an interval per method, a ranking.

A race (``grokbook.experiments.race``) gives every method the same seeds. :func:`per_run` turns
its runs into one tidy table, a row per (method, seed), with the cost of reaching 95% test
accuracy in four units: epochs, the time gap (epochs from 95% train to 95% test), wall seconds
and GFLOP (PyTorch's count, :func:`epoch_flops`), GrokTransfer's weak
model included in seconds and GFLOP. A run that never got there is censored at its budget
(``grokbook.stats``): each unit has a value column (NaN for such a run) and a ``*_budget``
column.

:func:`board` ranks the methods by the median of one unit, with a bootstrap confidence interval
of that median (:func:`median_interval`). Ranks are honest about the seeds: a
method's rank is one plus the number of methods whose whole interval lies below its own, so
the methods that no interval separates from the best share rank 1 (ranks need not be
consecutive: they count only the intervals wholly below). Reaching is not keeping: a run can
touch 95% test and lose it again before it ends, so each row also keeps the test accuracy of
the run's last evaluation, and the board counts the seeds that still held 95% there (``held``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from grokbook.checks import check_int
from grokbook.config import RunCfg
from grokbook.experiments import (
    GrokTransfer,
    Recipe,
    build_model,
    make_data,
    make_transform,
    train_options,
)
from grokbook.history import STOP_REASONS
from grokbook.stats import Censored, Estimate, surely_less, time_gaps
from grokbook.train import train
from grokbook.transfer import weak_embedding

COMMITTED = Path(str(resources.files("grokbook") / "data" / "shootout_book.csv"))
"""The book profile's shoot-out table, made by ``grokbook shootout --profile book``."""


def committed(task: str | None = None) -> Path:
    """A committed race at the book profile: the book's own (None: :data:`COMMITTED`, every
    task the page races) or one of the Transformer's other operations
    (``grokbook.profiles.shootout.LATER``), raced alone by ``grokbook shootout --profile book
    --task TASK`` into ``shootout_book_TASK.csv``, which the page reads and does not re-run.
    The file need not exist yet: a task is raced once its tuning is complete."""
    if task is None:
        return COMMITTED
    from grokbook.profiles.shootout import LATER

    if task not in LATER:
        raise ValueError(f"task must be one of {', '.join(LATER)} (raced alone) or None (the "
                         f"book's race), got {task!r}")
    return COMMITTED.with_name(f"shootout_book_{task}.csv")


UNITS = {"epochs": "epochs to 95% test", "time_gap": "time gap (epochs)",
         "seconds": "seconds to 95% test", "gflop": "GFLOP to 95% test"}
"""The units of cost, as :func:`per_run` names its columns, with their axis labels."""
TARGET = 0.95
"""The test accuracy a run must reach (``reached``, the costs) and, to have held it, still
have at its last evaluation (``held``): when its stopping rule ended it, or its budget."""


# ---- what a run costs, and the interval of a median ------------------------------------------

def epoch_flops(method: Recipe, seed: int = 0) -> tuple[float, float]:
    """FLOPs of one training epoch of ``method``, counted by PyTorch's ``FlopCounterMode``
    (matrix products, forward and backward, the gradient transform's included: NeuralGrok's
    amplifier and its meta step every ``meta_every`` steps, on average): ``(the run's, its weak
    model's)``, the second 0 for a method without one. Counted as the difference between two
    short runs of ``k`` and ``2k`` epochs that evaluate only at their ends, so evaluations
    cancel out; full batch (one step per epoch). Element-wise work (AdamW, GrokFast's filters,
    ReLU) is not counted, nor a Transformer's attention scores and weighted values: on three
    positions ``grokbook.models.Block`` computes them as element-wise products (a small share of a
    step; a one-layer Transformer also computes its keys once per token, so most of its
    counted work is the output projection, the MLP and the unembedding)."""
    def per_epoch(cfg: RunCfg, a: torch.Tensor | None = None) -> float:
        period = getattr(cfg.grad_transform, "meta_every", 1)
        counts = []
        for epochs in (period, 2 * period):
            model = build_model(cfg, seed, a)
            data, transform = make_transform(cfg, make_data(cfg.data, seed), seed)
            options = {**train_options(cfg), "epochs": epochs, "eval_every": epochs,
                       "stop_acc": None, "stop_patience": 1}
            with FlopCounterMode(display=False) as counter:
                train(model, data, grad_transform=transform, progress=False, **options)
            counts.append(counter.get_total_flops())
        return (counts[1] - counts[0]) / period

    if isinstance(method, GrokTransfer):
        weak = build_model(method.weak, seed)
        return per_epoch(method.target, weak_embedding(weak)), per_epoch(method.weak)
    if not isinstance(method, RunCfg):
        raise ValueError(f"method must be a RunCfg or a GrokTransfer, got a "
                         f"{type(method).__name__}")
    return per_epoch(method), 0.0


def median_interval(data: Censored, confidence: float = 0.95, resamples: int = 2000,
                    seed: int = 0) -> tuple[Estimate, Estimate]:
    """A bootstrap confidence interval of the median over seeds (scipy's percentile bootstrap,
    ``resamples`` draws from ``seed``: the same data give the same interval). A run that never
    got there stands for "more than its budget": an end of the interval that lands on such a
    run is reported as ``> budget`` (censored), never as a number it did not reach."""
    from scipy.stats import bootstrap

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    check_int("resamples", resamples, 100)
    ceiling = max(data.budgets)
    # Never-runs take a value above every observation, so a median or quantile that touches
    # one lands above the largest budget and reads back as censored.
    beyond = 2 * ceiling + 1
    values = np.array([beyond if v is None else float(v) for v in data.values])
    if data.n == 1 or np.all(values == values[0]):
        ends = (float(values[0]), float(values[0]))
    else:
        result = bootstrap((values,), np.median, confidence_level=confidence,
                           n_resamples=resamples, method="percentile",
                           rng=np.random.default_rng(seed))
        ends = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    return tuple(Estimate(ceiling, True) if end > ceiling else Estimate(end)  # type: ignore
                 for end in ends)


# ---- the table of runs -----------------------------------------------------------------------

def run_row(run, flops: tuple[float, float], task: str, method: str) -> dict:
    """One row of :func:`per_run` for one Run of ``method`` on ``task`` (``run.cfg`` gives the
    setting it trained at)."""
    run_flops, weak_flops = flops
    h = run.history
    epoch = h.first_epoch(threshold=TARGET)
    gaps = time_gaps([h])
    weak = run.weak.history if run.weak is not None else None
    weak_steps = 0 if weak is None else weak.config.get("steps", weak.epoch[-1])
    weak_gflop = weak_flops * weak_steps / 1e9
    return {"task": task, "method": method, "seed": run.seed,
            "lr": run.cfg.optim.lr, "weight_decay": run.cfg.optim.weight_decay,
            "reached": epoch is not None,
            "epochs": epoch, "epochs_budget": h.budget,
            "time_gap": gaps.values[0], "time_gap_budget": gaps.budgets[0],
            "seconds": run.cost_seconds,
            "seconds_budget": h.seconds + (weak.seconds if weak is not None else 0.0),
            "gflop": None if epoch is None else run_flops * epoch / 1e9 + weak_gflop,
            "gflop_budget": run_flops * h.budget / 1e9 + weak_gflop, "weak_gflop": weak_gflop,
            "weak_stopped": "" if weak is None else weak.stopped,
            "final_test_acc": float(h.test_acc[-1])}


def _typed(rows: list[dict]) -> pd.DataFrame:
    """Rows as a table with fixed types, the same whether built here or read from a CSV."""
    types = {"task": str, "method": str, "seed": int, "lr": float, "weight_decay": float,
             "reached": bool, "weak_gflop": float,
             "weak_stopped": str, "final_test_acc": float,
             **{u: float for u in UNITS}, **{f"{u}_budget": float for u in UNITS}}
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.assign(weak_stopped=_blank_if_missing(table.weak_stopped)).astype(types)


def _blank_if_missing(column: pd.Series) -> pd.Series:
    """``column`` with every missing value ``""`` (a CSV reads an empty string back as NaN)."""
    return column.astype(object).where(column.notna(), "")


COLUMNS = ("task", "method", "seed", "lr", "weight_decay", "reached", "epochs",
           "epochs_budget", "time_gap", "time_gap_budget", "seconds", "seconds_budget", "gflop",
           "gflop_budget", "weak_gflop", "weak_stopped", "final_test_acc")
"""``lr``, ``weight_decay``: the AdamW setting the run trained at (GrokTransfer's: its target
network's), so that a committed table says what it raced and a reader can check it against the
tuning table that chose it.
``weak_stopped``: why GrokTransfer's weak model stopped (``"target"``: it reached its test
accuracy; ``"budget"``: it never did, and handed over what it had; or another of
``history.STOP_REASONS``), empty for the other methods. ``final_test_acc``: the run's test
accuracy at its last evaluation (see :data:`TARGET`)."""


def per_run(runs: Mapping[str, Sequence], flops: Mapping[str, tuple[float, float]],
            task: str = "") -> pd.DataFrame:
    """One row per (method, seed) of ``runs`` (``{method: [Run per seed]}``): ``reached``,
    then per unit of :data:`UNITS` its value (NaN if the run never reached 95% test) and
    ``<unit>_budget`` (the value it is censored at). ``flops[method]`` is
    :func:`epoch_flops`'s ``(run, weak model)`` FLOPs per epoch."""
    missing = sorted(set(runs) - set(flops))
    if missing:
        raise ValueError(f"flops lacks the methods {missing}: give epoch_flops for each")
    return _typed([run_row(run, flops[method], task, method)
                   for method, method_runs in runs.items() for run in method_runs])


def shootout_table(P, *, workers: int | None = None, scheduler: str | None = None,
                   progress: bool | None = None) -> pd.DataFrame:
    """Chapter 8's race as one tidy table (:func:`per_run`'s columns): every method of the
    shoot-out profile ``P`` on every task and seed, each run through the run cache and trained
    side by side (``grokbook.experiments.run_all``: ``workers`` one-thread processes, by
    default one per core; 0 trains in this process, one run after another; ``scheduler`` an
    existing Dask cluster). Every run is computed on one thread, so the table is the same
    whichever way. A run that fails is an error naming it."""
    from grokbook.experiments import run_all
    from grokbook.profiles.shootout import METHODS

    flops = {(t, m): epoch_flops(P.method(t, m), P.seeds[0]) for t in P.tasks for m in METHODS}
    cells = [(t, m, s) for t in P.tasks for m in METHODS for s in P.seeds]
    runs = run_all([(P.method(t, m), s, f"{t} {m}") for t, m, s in cells], workers=workers,
                   scheduler=scheduler, progress=progress, desc="shoot-out runs")
    return _typed([run_row(run, flops[(t, m)], t, m) for (t, m, _), run in zip(cells, runs)])


def write(table: pd.DataFrame, path, command: str = "", machine: str = ""):
    """Write a shoot-out table atomically as CSV, the command that made it and the machine
    it ran on (:func:`this_machine`) on top."""
    from grokbook.tables import write_csv

    return write_csv(table, path, "Shoot-out runs of grokbook (see grokbook.leaderboard).",
                     command, machine)


def this_machine() -> str:
    """This machine as a race's table records it: what decides a run's last bits on it (the
    CPU, which picks the BLAS kernels, with its family and model numbers where Linux gives
    them, since one model name can cover generations with different instruction sets; the
    kernel set torch dispatches to) and torch's version. Runs trained on one CPU and re-run on
    another agree in their statistics, not bit for bit."""
    from grokbook.cache import cpu_fields, machine

    here = machine()
    if here["device"] == "cuda":
        return f"GPU {here['gpu']}, torch {torch.__version__}"
    fields = cpu_fields("cpu family", "model")
    generation = (f" (family {fields['cpu family']}, model {fields['model']})"
                  if len(fields) == 2 else "")
    return f"CPU {here['cpu']}{generation}, {here['kernel']} kernels, torch {torch.__version__}"


def machine_of(path) -> str | None:
    """The machine a committed race ran on, as its table records it (None: not recorded)."""
    from grokbook.tables import header

    return header(path, "machine")


def read(path) -> pd.DataFrame:
    """A shoot-out table written by :func:`write`, validated: its columns, one row per
    (task, method, seed), one (lr, weight_decay) per (task, method)."""
    table = pd.read_csv(path, comment="#")
    missing = sorted(set(COLUMNS) - set(table.columns))
    if missing:
        raise ValueError(f"{path}: not a shoot-out table, columns {missing} are missing (a "
                         "table made before they existed must be made again: grokbook "
                         "shootout)")
    final = pd.to_numeric(table["final_test_acc"], errors="coerce")
    if not final.between(0, 1).all():
        raise ValueError(f"{path}: final_test_acc must be an accuracy between 0 and 1 in every "
                         f"row, got {table['final_test_acc'][~final.between(0, 1)].iloc[0]!r}")
    if table.duplicated(["task", "method", "seed"]).any():
        raise ValueError(f"{path}: a (task, method, seed) appears twice")
    for column, rule, holds in (("lr", "> 0", np.greater), ("weight_decay", ">= 0",
                                                             np.greater_equal)):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = ~(holds(values, 0) & np.isfinite(values))
        if bad.any():
            raise ValueError(f"{path}: {column} must be a finite number {rule} in every row, "
                             f"got {table[column][bad].iloc[0]!r}")
    settings = table.groupby(["task", "method"])[["lr", "weight_decay"]].nunique()
    twice = settings[(settings > 1).any(axis=1)]
    if len(twice):
        task, method = twice.index[0]
        raise ValueError(f"{path}: {method} on {task} raced at more than one (lr, weight_decay); "
                         "a race trains each method at one setting")
    bad = ~_blank_if_missing(table["weak_stopped"]).isin(("", *STOP_REASONS))
    if bad.any():
        raise ValueError(f"{path}: weak_stopped must be empty or one of {STOP_REASONS}, got "
                         f"{table['weak_stopped'][bad].iloc[0]!r}")
    return _typed(table[list(COLUMNS)].to_dict("records"))


def censored_of(table: pd.DataFrame, unit: str) -> Censored:
    """The ``unit`` column of ``table``'s rows as censored data (see ``grokbook.stats``)."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    if table.empty:
        raise ValueError("no runs to summarise")
    return Censored(tuple(None if np.isnan(v) else float(v) for v in table[unit]),
                    tuple(float(b) for b in table[f"{unit}_budget"]))


def board(table: pd.DataFrame, unit: str = "gflop", confidence: float = 0.95,
          seed: int = 0) -> pd.DataFrame:
    """Per method of ``table`` (:func:`per_run`'s, one task): ``k`` of ``n`` seeds that reached
    95% test, ``held``: how many of them still had 95% at their last evaluation, the
    ``median`` of ``unit`` with its bootstrap interval (``low``, ``high``, all
    :class:`~grokbook.stats.Estimate`), and ``rank``: one plus the number of methods whose
    interval lies wholly below this one's. Sorted by rank, then median."""
    if table["task"].nunique() > 1:
        raise ValueError("board ranks the methods of one task: select one task's rows first")
    rows = {}
    for method, runs in table.groupby("method", sort=False):
        data = censored_of(runs, unit)
        low, high = median_interval(data, confidence, seed=seed)
        held = int((runs["reached"] & (runs["final_test_acc"] >= TARGET)).sum())
        rows[method] = {"k": data.k, "n": data.n, "held": held, "median": data.median(),
                        "low": low, "high": high}
    for method, row in rows.items():
        row["rank"] = 1 + sum(surely_less(other["high"], row["low"])
                              for name, other in rows.items() if name != method)
    out = pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")
    order = sorted(out.index, key=lambda m: (out.loc[m, "rank"], _sort_key(out.loc[m, "median"])))
    return out.loc[order]


def _sort_key(estimate: Estimate) -> tuple[bool, float]:
    return estimate.censored, estimate.value


def as_text(estimate: Estimate, digits: int = 3) -> str:
    """An estimate for reading: ``digits`` significant digits (whole below 10**digits),
    ``>`` before a censored one."""
    e = estimate
    value = f"{e.value:.{digits}g}" if e.value < 10**digits else f"{e.value:.0f}"
    return f">{value}" if e.censored else value


def shown(board_: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """``board_`` for reading: "k of n" reached and held, the median and its interval as
    text."""

    def text(e: Estimate) -> str:
        return as_text(e, digits)

    return pd.DataFrame({
        "rank": board_["rank"],
        "reached 95%": [f"{k} of {n}" for k, n in zip(board_["k"], board_["n"])],
        "held it to the end": [f"{h} of {n}" for h, n in zip(board_["held"], board_["n"])],
        "median": [text(e) for e in board_["median"]],
        "95% interval": [f"{text(lo)} to {text(hi)}"
                         for lo, hi in zip(board_["low"], board_["high"])]},
        index=board_.index)
