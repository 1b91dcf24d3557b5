"""Result tables the chapters show: pandas DataFrames, one row per method (or setting).

A table renders as HTML in the book and in Jupyter, with its own scroll bar where it is wide,
and a reader can sort, filter or save it (``df.to_csv``); a printed line of eight seeds does
none of that and runs past the column. Every count comes from :mod:`grokbook.stats`, so a
run that never got there is shown as "never" and a median that lands on one as ">N".
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from grokbook.history import History
from grokbook.stats import Censored, censored, time_gaps


def per_seed(values: Censored) -> str:
    """``"270, never, 580"``: every seed's value, in seed order."""
    return ", ".join("never" if v is None else f"{v:.0f}" for v in values.values)


def seeds_table(groups: Mapping[str, Sequence[History]], *, time_gap: bool = True,
                index_name: str = "method") -> pd.DataFrame:
    """Epochs to 95% test accuracy per group of runs: how many seeds got there (``k/n``), the
    censored median, every seed's epoch, and the same for the time gap when ``time_gap``."""
    rows = {}
    for name, histories in groups.items():
        epochs = censored(histories)
        row = {"reached 95% test": f"{epochs.k}/{epochs.n}",
               "median epochs": str(epochs.median()),
               "epochs per seed": per_seed(epochs)}
        if time_gap:
            gaps = time_gaps(histories)
            row |= {"median time gap": str(gaps.median()), "time gap per seed": per_seed(gaps)}
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = index_name
    return table


def tuned_cells(chapter: str, profiles: Sequence[str], tasks: Sequence[str],
                methods: Sequence[str]) -> pd.DataFrame:
    """The tuned cell of every method on every task for each profile's tuning table
    (:func:`grokbook.tuning.best_cell`): its (lr, weight decay), the median epochs to 95% test
    over the tuning seeds (">N" where that median seed never got there), how many tuning seeds
    got there, the budget, and whether its learning rate is the smallest or the largest of the
    chapter's grid (``grokbook.tuning.grid_lrs``): there the method's best setting may lie
    beyond the grid."""
    from grokbook import tuning

    rows = []
    for profile in profiles:
        size = tuning.table_profile(chapter, profile)
        for task in tasks:
            for method in methods:
                cell = tuning.best_cell(chapter, profile, task, method)
                rows.append({"table": size, "task": task, "method": method, "lr": cell.lr,
                             "weight decay": cell.weight_decay,
                             "median epochs": f"{'>' if cell.censored else ''}"
                                              f"{cell['median']:.0f}",
                             "tuning seeds reached": f"{cell.reached}/{cell.seeds}",
                             "budget": tuning.tuning_budget(chapter, size, task),
                             "lr at the grid's edge": tuning.grid_edge(
                                 cell.lr, tuning.grid_lrs(chapter))})
    return pd.DataFrame(rows).set_index(["table", "task", "method"])


def write_csv(table: pd.DataFrame, path, title: str, command: str = "",
              machine: str = "") -> Path:
    """Write ``table`` atomically as CSV under a ``# title`` line and, when given, the
    ``# made by: command`` that made it and the ``# machine: ...`` it ran on (the shoot-out's
    and the regime map's tables)."""
    from grokbook.files import atomic_write_bytes

    text = io.StringIO()
    text.write(f"# {title}\n")
    if command:
        text.write(f"# made by: {command}\n")
    if machine:
        text.write(f"# machine: {machine}\n")
    table.to_csv(text, index=False, float_format="%.6g")
    return atomic_write_bytes(path, text.getvalue().encode())


def header(path, name: str) -> str | None:
    """The value of a ``# name: value`` line among the comment lines on top of a table
    written by :func:`write_csv`, None if it has none."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.startswith("#"):
                break
            key, colon, value = line[1:].strip().partition(":")
            if colon and key == name:
                return value.strip()
    return None


def snapshot_table(runs: Mapping[tuple[int, int], object]) -> pd.DataFrame:
    """One row per GrokTransfer run whose weak model trained a fixed number of epochs (the
    paper's Fig. 7): ``runs`` maps ``(seed, weak epochs)`` to an ``experiments.Run`` with its
    weak run. Columns: the weak model's test accuracy when its embedding was taken, the
    target's epochs to 95% test and time gap (NaN where it never got there within its budget),
    ``reached`` and the target's ``budget``."""
    import numpy as np

    from grokbook.measures import time_gap

    rows = []
    for (seed, weak_epochs), run in runs.items():
        target = run.history
        reached = target.first_epoch()
        gap = time_gap(target)
        rows.append({"seed": seed, "weak epochs": weak_epochs,
                     "weak test acc": run.weak.history.test_acc[-1],
                     "target epochs": np.nan if reached is None else reached,
                     "time gap": np.nan if gap is None else gap,
                     "reached": reached is not None, "budget": target.budget})
    return pd.DataFrame(rows)


def snapshot_gaps(table: pd.DataFrame) -> dict[int, Censored]:
    """Per weak epoch count of a :func:`snapshot_table`, the targets' time gaps over the seeds
    (None where a target never reached 95% test within its budget)."""
    return {int(weak_epochs): Censored(
                tuple(None if pd.isna(g) else int(g) for g in part["time gap"]),
                tuple(int(b) for b in part.budget))
            for weak_epochs, part in table.groupby("weak epochs")}


def snapshot_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per weak epoch count of a :func:`snapshot_table`: the weak model's median test accuracy,
    how many targets reached 95% test (``k/n``), and their censored median time gap."""
    gaps = snapshot_gaps(table)
    rows = {}
    for weak_epochs, part in table.groupby("weak epochs"):
        found = gaps[int(weak_epochs)]
        rows[int(weak_epochs)] = {
            "weak model's median test accuracy": f"{part['weak test acc'].median():.0%}",
            "targets that reached 95% test": f"{found.k}/{found.n}",
            "median time gap": str(found.median()), "time gap per seed": per_seed(found)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("weak model's epochs")


def snapshot_correlation(table: pd.DataFrame) -> tuple[float, float]:
    """Spearman's rank correlation (scipy) between the weak model's test accuracy and the
    target's time gap over every target of a :func:`snapshot_table`, a target that never
    reached 95% test ranked after every one that did; and its two-sided p-value."""
    import numpy as np
    from scipy.stats import spearmanr

    result = spearmanr(table["weak test acc"], table["time gap"].fillna(np.inf))
    return float(result.statistic), float(result.pvalue)


def snapshot_findings(table: pd.DataFrame) -> str:
    """The findings of a :func:`snapshot_table` as Markdown: the first and last epoch counts
    (the weak model's median test accuracy, targets that reached 95%, median time gap) and
    :func:`snapshot_correlation`."""
    gaps = snapshot_gaps(table)
    first, last = min(gaps), max(gaps)

    def point(weak_epochs: int) -> str:
        acc = table[table["weak epochs"] == weak_epochs]["weak test acc"].median()
        found = gaps[weak_epochs]
        return (f"after {weak_epochs} epochs the weak models' median test accuracy is "
                f"{acc:.0%}, and {found.k} of {found.n} targets reach 95% test (median time "
                f"gap {found.median()} epochs)")

    rho, p_value = snapshot_correlation(table)
    most = max(gaps, key=lambda e: (gaps[e].k, -e))
    return (f"In this run, on {table.seed.nunique()} seeds: {point(first)}; {point(last)}. "
            f"The most targets reach 95% test from the weak model after {most} epochs "
            f"({gaps[most].k} of {gaps[most].n}). Spearman's rank correlation between the "
            f"weak model's test accuracy and the target's time gap (a target that never got "
            f"there ranked last) is {rho:.2f} over {len(table)} targets (p = {p_value:.2g}).")
