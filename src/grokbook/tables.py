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
    got there, and the budget."""
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
                             "budget": tuning.BUDGETS[(chapter, size)]})
    return pd.DataFrame(rows).set_index(["table", "task", "method"])


def write_csv(table: pd.DataFrame, path, title: str, command: str = "") -> Path:
    """Write ``table`` atomically as CSV under a ``# title`` line and, when given, the
    ``# made by: command`` that made it (the shoot-out's and the regime map's tables)."""
    from grokbook.files import atomic_write_bytes

    text = io.StringIO()
    text.write(f"# {title}\n")
    if command:
        text.write(f"# made by: {command}\n")
    table.to_csv(text, index=False, float_format="%.6g")
    return atomic_write_bytes(path, text.getvalue().encode())
