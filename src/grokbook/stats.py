"""Statistics over seeds when some runs never get there: censored at their budget.

A run that never reached 95% test accuracy within ``budget`` epochs did not take "infinitely
long": it took *more than* ``budget``. Dropping it flatters a method; calling it infinity breaks
arithmetic. Here it is a censored observation: it counts in ``k of n``, it sorts above every
epoch that was observed, and a median that lands on it is reported as the bound ``> budget``
(:class:`Estimate` with ``censored=True``). Comparisons are *safe*: :func:`surely_less` holds
only when it holds for every value the censored runs might have had.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grokbook.history import History


@dataclass(frozen=True)
class Estimate:
    """A statistic of censored data: ``value``, or, when ``censored``, "more than ``value``"."""

    value: float
    censored: bool = False

    def __str__(self) -> str:
        text = f"{self.value:.0f}" if float(self.value).is_integer() else f"{self.value:.3g}"
        return f">{text}" if self.censored else text

    def __mul__(self, factor: float) -> Estimate:
        if not factor > 0:
            raise ValueError(f"factor must be positive, got {factor!r}")
        return Estimate(self.value * factor, self.censored)

    __rmul__ = __mul__


@dataclass(frozen=True)
class Censored:
    """Epochs (or seconds) per seed: ``values[i]`` is None when seed ``i`` never got there,
    ``budgets[i]`` is where it stopped looking."""

    values: tuple[float | None, ...]
    budgets: tuple[float, ...]

    def __post_init__(self):
        if len(self.values) != len(self.budgets) or not self.values:
            raise ValueError("values and budgets must be non-empty and of equal length")

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def k(self) -> int:
        """How many seeds got there."""
        return sum(v is not None for v in self.values)

    def _sorted(self) -> list[tuple[float, bool]]:
        # Censored runs sort after every observed value, by budget among themselves.
        keyed = [(v, False) if v is not None else (b, True)
                 for v, b in zip(self.values, self.budgets)]
        return sorted(keyed, key=lambda item: (item[1], item[0]))

    def quantile(self, q: float) -> Estimate:
        """The ``q`` quantile (lower, no interpolation across a censored value)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must lie in [0, 1], got {q!r}")
        ordered = self._sorted()
        position = q * (self.n - 1)
        low, high = int(np.floor(position)), int(np.ceil(position))
        (a, a_cens), (b, b_cens) = ordered[low], ordered[high]
        if a_cens or b_cens:
            return Estimate(max(a, b) if a_cens else a, True)
        return Estimate(a + (b - a) * (position - low))

    def median(self) -> Estimate:
        return self.quantile(0.5)

    def __str__(self) -> str:
        shown = ", ".join("never" if v is None else f"{v:.0f}" for v in self.values)
        return f"{self.k}/{self.n} reached; median {self.median()} ({shown})"


def censored(histories: Sequence[History], column: str = "test_acc",
             threshold: float = 0.95) -> Censored:
    """Epochs to ``threshold`` on ``column`` per run, censored at each run's budget."""
    return Censored(tuple(h.first_epoch(column, threshold) for h in histories),
                    tuple(float(h.budget) for h in histories))


def surely_less(a: Estimate, b: Estimate) -> bool:
    """``a < b`` for every value the censored estimates might stand for: ``a`` must be
    observed; a censored ``b`` ("more than b") is then larger than any ``a <= b.value``."""
    if a.censored:
        return False
    return a.value <= b.value if b.censored else a.value < b.value


def surely_at_most(a: Estimate, b: Estimate) -> bool:
    """``a <= b`` for every value the censored estimates might stand for."""
    if a.censored:
        return False
    return a.value <= b.value


def time_gaps(histories: Sequence[History], threshold: float = 0.95) -> Censored:
    """The time gap per run (epochs from ``threshold`` train to ``threshold`` test accuracy),
    censored at the budget minus the epoch of fitting when test never got there."""
    values, budgets = [], []
    for h in histories:
        fit, gen = h.first_epoch("train_acc", threshold), h.first_epoch("test_acc", threshold)
        values.append(None if fit is None or gen is None else gen - fit)
        budgets.append(float(h.budget - (fit or 0)))
    return Censored(tuple(values), tuple(budgets))


def paired_ratio_floor(a: Censored, b: Censored) -> float:
    """The median over seeds of ``a``'s value divided by ``b``'s on the same seed (``a`` and
    ``b`` list the same seeds in the same order), each ratio as low as the censoring allows:
    where ``a`` never got there its budget stands in (its true ratio is higher), where ``b``
    never did the ratio counts as 0 (it could be anything below ``a``'s value over ``b``'s
    budget). So ``paired_ratio_floor(a, b) >= x`` says, safely, that ``a`` is not much faster
    than ``b`` (say, NeuralGrok against TensorNorm). Pairing the seeds, which share their data
    split and initialisation, takes out most of the seed-to-seed spread that makes a ratio of
    two medians over a few seeds swing."""
    if a.n != b.n:
        raise ValueError(f"a and b must list the same seeds, got {a.n} and {b.n} values")
    ratios = [0.0 if vb is None else (ba if va is None else va) / max(vb, 1.0)
              for va, ba, vb in zip(a.values, a.budgets, b.values)]
    return float(np.median(ratios))
