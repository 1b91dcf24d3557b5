"""Which measure sees generalization coming (chapter 7): the phases of a grokking run, each
measure's transition, its lead over the test-accuracy jump and how closely it tracks the test
loss, read from Histories that :func:`grokbook.experiments.progress_run` measured; and, for
the images, how far memorization runs ahead of generalization (:func:`gap_table`).

Definitions (the chapter states them; all exact to the evaluation interval):

- *memorized*: the first epoch with 99% training accuracy;
- the *jump*: the first epoch with 50% test accuracy (the middle of the rise);
- the *window*: from memorization to the end of cleanup (the first epoch with 99% test
  accuracy; the run's last evaluation if it never got there). A run that goes on training
  after it has generalized keeps shrinking its losses by orders of magnitude; measuring up to a
  fixed point of the run keeps that tail from deciding where "half-way" lies;
- a measure's *transition*: the first epoch in the window at which it has covered half of its
  change across the window (on a log scale for losses, which move by orders of magnitude); None
  when it changes by less than 5% (on the log scale: by less than a factor 1.05);
- its *lead*: the jump minus its transition (positive: the measure moved first);
- how it *tracks* the test loss: Spearman's rank correlation with the test loss over the
  window's evaluations (scipy), its sign saying which way it moves;
- the *phases* (Nanda et al.'s, located from the measures): memorization up to the minimum of
  the excluded loss (the memorizing solution at its best; from there the key frequencies take
  over the fit of the training set), circuit formation until the test loss first falls below a
  tenth of its peak, cleanup until test accuracy first reaches 99%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from grokbook.history import History

LOG_SCALE = ("train_loss", "test_loss", "restricted_loss", "excluded_loss", "full_loss")
WATCHED = ("restricted_loss", "excluded_loss", "key_share", "gini", "ipr", "med",
           "relative_med", "norm_spread", "weight_norm", "train_loss")
"""The measures the chapter compares, in the order it shows them."""
MEMORIZED, JUMP, DONE = 0.99, 0.5, 0.99


def _values(history: History, column: str) -> np.ndarray:
    values = np.asarray(history.column(column), dtype=float)
    return np.log10(np.maximum(values, 1e-300)) if column in LOG_SCALE else values


def memorized(history: History) -> int | None:
    """The first epoch with 99% training accuracy (None: never)."""
    return history.first_epoch("train_acc", MEMORIZED)


def jump(history: History) -> int | None:
    """The first epoch with 50% test accuracy (None: never)."""
    return history.first_epoch("test_acc", JUMP)


def window(history: History) -> tuple[int, int] | None:
    """The indices ``(first, last)`` of the evaluations from memorization to the end of
    cleanup (module doc), both included; None if the run never memorized."""
    start = memorized(history)
    if start is None:
        return None
    epochs = np.asarray(history.epoch)
    done = history.first_epoch("test_acc", DONE)
    end = len(epochs) - 1 if done is None else int(np.searchsorted(epochs, done))
    return int(np.searchsorted(epochs, start)), max(end, int(np.searchsorted(epochs, start)))


def transition(history: History, column: str) -> int | None:
    """The first epoch of the window (:func:`window`) at which ``column`` has covered half of
    its change across it (see the module doc); None if the run never memorized or the measure
    barely moves."""
    span = window(history)
    if span is None:
        return None
    i, j = span
    epochs = np.asarray(history.epoch)
    values = _values(history, column)[:j + 1]
    first, last = values[i], values[j]
    change = last - first
    if column in LOG_SCALE:
        if abs(change) < math.log10(1.05):
            return None
    elif abs(change) < 0.05 * max(abs(first), abs(last), 1e-300):
        return None
    half = first + change / 2
    crossed = (values[i:] - half) * np.sign(change) >= 0
    return int(epochs[i + int(np.argmax(crossed))])


def tracking(history: History, column: str) -> float:
    """Spearman's rank correlation of ``column`` with the test loss over the window's
    evaluations (:func:`window`; NaN when the run never memorized or either is constant
    there)."""
    from scipy.stats import spearmanr

    span = window(history)
    if span is None:
        return math.nan
    i, j = span
    a, b = _values(history, column)[i:j + 1], _values(history, "test_loss")[i:j + 1]
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def phases(history: History) -> dict[str, int | None]:
    """Where each of Nanda et al.'s phases begins, located from the measures (module doc):
    ``{"circuit formation": ..., "cleanup": ..., "done": ...}`` (memorization begins at 0);
    None where the run never got there. Needs ``excluded_loss`` among the extras."""
    epochs = np.asarray(history.epoch)
    excluded = np.asarray(history.column("excluded_loss"))
    circuit = int(epochs[1 + int(np.argmin(excluded[1:]))]) if len(epochs) > 1 else None
    test = np.asarray(history.column("test_loss"))
    cleanup = None
    if circuit is not None:
        after = epochs >= circuit
        peak = test.max()
        below = np.nonzero(after & (test <= peak / 10))[0]
        cleanup = int(epochs[below[0]]) if len(below) else None
    return {"circuit formation": circuit, "cleanup": cleanup,
            "done": history.first_epoch("test_acc", DONE)}


def leads(histories: Sequence[History], seeds: Sequence[int],
          measures: Sequence[str] = WATCHED) -> pd.DataFrame:
    """One row per seed and measure: ``seed``, ``measure``, ``memorized``, ``jump``,
    ``transition``, ``lead`` (jump minus transition; NaN where either is missing) and
    ``tracking`` (the rank correlation with the test loss)."""
    if len(histories) != len(seeds):
        raise ValueError(f"histories and seeds must have equal lengths, got {len(histories)} "
                         f"and {len(seeds)}")
    rows = []
    for history, seed in zip(histories, seeds):
        grok = jump(history)
        for name in measures:
            moved = transition(history, name)
            rows.append({"seed": seed, "measure": name, "memorized": memorized(history),
                         "jump": grok, "transition": moved,
                         "lead": (grok - moved) if grok is not None and moved is not None
                         else math.nan,
                         "tracking": tracking(history, name)})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per measure, over seeds: the median lead (epochs), the share of seeds on which it moved
    before the jump, and the median rank correlation with the test loss; sorted by lead."""
    grouped = table.groupby("measure", sort=False)
    out = pd.DataFrame({
        "median lead": grouped["lead"].median(),
        "moved first": grouped["lead"].apply(lambda s: f"{int((s > 0).sum())} of {len(s)}"),
        "median tracking": grouped["tracking"].median(),
    })
    return out.sort_values("median lead", ascending=False)


# ---- data coverage --------------------------------------------------------------------------

def pair_accuracy(model, data) -> np.ndarray:
    """Whether ``model`` answers each pair of the table right: a ``(p, p)`` array of 0 / 1
    indexed by the operand values ``(a, b)`` (the second operand's token may be offset, as in
    a coverage split)."""
    import torch

    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test])
    p = data.p
    with torch.no_grad():
        right = (model(x).argmax(dim=1) == y).double().numpy()
    grid = np.full((p, p), np.nan)
    grid[x[:, 0].numpy(), x[:, 1].numpy() % p] = right
    return grid


def decay_factor(lr: float, weight_decay: float, steps: int, warmup_steps: int = 0) -> float:
    """What AdamW's decoupled weight decay alone does to a weight in ``steps`` steps (with the
    book's linear warm-up): the product of ``1 - lr_t * weight_decay``. A weight whose gradient
    is always exactly zero (a token no training pair uses) ends at its initial value times
    this: Adam's moments stay zero, so its step is zero."""
    from grokbook.train import warmup_factor

    factor = 1.0
    for step in range(steps):
        factor *= 1.0 - lr * warmup_factor(step, warmup_steps) * weight_decay
    return factor


# ---- memorization against generalization (the images) ----------------------------------------

def gap_table(runs: dict[str, dict[int, History]]) -> pd.DataFrame:
    """One row per run of ``runs`` (``label -> seed -> History``): ``run`` (the label),
    ``seed``, ``memorized`` (the first epoch with 99% training accuracy; NaN: never), ``test
    at memorized`` (test accuracy then), ``best train`` and ``best test`` (the highest
    accuracies over the run's evaluations) and ``gap`` (best train minus best test). Best
    accuracies rather than final ones: a small run's last evaluation can land on a spike."""
    rows = []
    for label, histories in runs.items():
        for seed, history in histories.items():
            when = memorized(history)
            at = history.test_acc[history.epoch.index(when)] if when is not None else math.nan
            best_train, best_test = max(history.train_acc), max(history.test_acc)
            rows.append({"run": label, "seed": seed,
                         "memorized": math.nan if when is None else when,
                         "test at memorized": at, "best train": best_train,
                         "best test": best_test, "gap": best_train - best_test})
    return pd.DataFrame(rows)
