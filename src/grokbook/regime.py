"""Where does GrokTransfer pay? The regime map of chapter 4.

Chapter 4 compares GrokTransfer with scratch training at one point: one prime and one training
fraction. The regime map repeats the comparison over a grid of primes ``p`` and training
fractions (the profile's ``regime``), and asks in each cell whether GrokTransfer, its weak model
included, reaches 95% test accuracy sooner than scratch training.

Each side is *re-tuned in every cell*, with the same rule for both: its ``candidates`` best
(lr, weight decay) settings from chapter 4's fair tuning table (``grokbook.tuning``, tuned at the
chapter's own p and fraction) are each trained in the cell from the tuning seeds
(``tuning.TUNING_SEEDS``, never reported) with the tuning budget, scored like the table (the
censored median of the epochs to 95% test, ties broken by the mean), and the best one is then
trained from the chapter's reported seeds with the chapter's budget. A full grid per cell would
cost 24 times more runs; the candidates are the settings near each side's optimum, and the map
records which one each cell chose, so a reader sees when a cell's best moved to the edge of the
candidates.

:func:`regime_table` returns one tidy row per run (the shoot-out's columns, see
``grokbook.leaderboard``, among them the ``lr`` and ``weight_decay`` the run trained at, less
``weak_stopped`` and ``final_test_acc``, plus ``role`` (``tuning`` or ``reported``), ``p``,
``frac`` and, for GrokTransfer, ``weak_test_acc``: the weak model's test accuracy when it
stopped). :func:`summary` gives, per cell, each side's median cost with its
bootstrap interval, their ratio and whether the intervals separate. The book's map is committed
data (:data:`COMMITTED`), made by ``grokbook regime --profile book``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grokbook.config import replace
from grokbook.experiments import GrokTransfer, Recipe

COMMITTED = Path(__file__).resolve().parent / "data" / "regime_book.csv"
"""The book profile's regime map, made by ``grokbook regime --profile book``."""
METHODS = ("scratch", "GrokTransfer")
ROLES = ("tuning", "reported")
BOUND_SIGNS = {"=": "", ">=": "≥", "<=": "≤", "?": "?"}
"""How a ratio is written for each ``ratio_bound`` of :func:`summary`."""
BOUND_WORDS = {"=": "", ">=": "at least ", "<=": "at most ", "?": "undetermined: "}
"""The same in words, for prose."""


def methods_at(P, p: int, frac: float) -> dict[str, Recipe]:
    """Chapter 4's two methods on the regime's task with the table of ``p`` at training
    fraction ``frac`` (the weak model's data changes with the target's), untuned."""
    task = P.regime["task"]
    data = {"data__p": p, "data__frac": frac}
    return {"scratch": replace(P.scratch[task], **data),
            "GrokTransfer": GrokTransfer(replace(P.weak[task], **data),
                                         replace(P.target[task], **data))}


def candidates(P, method: str) -> list[tuple[float, float]]:
    """The ``P.regime["candidates"]`` best (lr, weight decay) of ``method`` in chapter 4's
    tuning table, best first. The paper profile has no tuning table (it keeps the paper's
    settings): its one candidate is the profile's own setting."""
    from grokbook import tuning

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    ranked = tuning.ranked_cells("transfer", P.name, P.regime["task"], method)
    if ranked is None:
        run = methods_at(P, P.p, P.frac)[method]
        optim = (run.target if isinstance(run, GrokTransfer) else run).optim
        return [(optim.lr, optim.weight_decay)]
    top = ranked.head(P.regime["candidates"])
    return [(float(lr), float(wd)) for lr, wd in zip(top.lr, top.weight_decay)]


def _cells(P) -> list[tuple[int, float]]:
    return [(p, frac) for p in P.regime["ps"] for frac in P.regime["fracs"]]


def _run_cell(cell: tuple) -> dict:
    """Train (or load from the run cache) one run of the map and return its row."""
    from grokbook.experiments import run_method
    from grokbook.leaderboard import run_row

    role, task, p, frac, name, method, _, _, seed, flops = cell  # method holds lr, wd
    run = run_method(method, seed, desc=f"p {p} frac {frac} {name}", progress=False)
    weak = run.weak.history.test_acc[-1] if run.weak is not None else None
    return {"role": role, "p": p, "frac": frac, **run_row(run, flops, task, name),
            "weak_test_acc": weak}  # run_row's lr and weight decay: the cell's, as trained


_RUN_KEY = ("role", "p", "frac", "method", "lr", "weight_decay", "seed")
"""What names one run of the map (its row in :func:`read`'s table)."""
_REUSE_KEY = (*_RUN_KEY, "task", "epochs_budget")
"""What a tuning run of an earlier map must share with a run to stand for it
(:func:`regime_table`'s ``reuse``): the run, its task and its budget. The model's sizes are not
in a row: :func:`check_reusable` checks that the earlier map is of the same profile."""


def _map(fn_cells: list[tuple], workers, scheduler, progress, desc: str,
         reuse: pd.DataFrame | None = None) -> list[dict]:
    """Each cell's row: from ``reuse`` where it holds the run, else trained (on Dask)."""
    from grokbook.sweep import CellError, map_cells

    held = {_reuse_key(*(row[k] for k in _REUSE_KEY)): row
            for row in ([] if reuse is None else reuse.to_dict("records"))}

    def key(cell: tuple) -> tuple:
        role, task, p, frac, name, method, lr, wd, seed, _flops = cell
        target = method.target if isinstance(method, GrokTransfer) else method
        return _reuse_key(role, p, frac, name, lr, wd, seed, task, target.budget.epochs)

    todo = [cell for cell in fn_cells if key(cell) not in held]
    trained = map_cells(_run_cell, todo, workers=workers, scheduler=scheduler,
                        progress=progress, desc=desc) if todo else []
    failed = [r for r in trained if isinstance(r, CellError)]
    if failed:
        raise ValueError(f"{len(failed)} runs of the regime map failed; the first: {failed[0]}")
    new = iter(trained)
    return [dict(held[key(cell)]) if key(cell) in held else next(new) for cell in fn_cells]


def _reuse_key(role, p, frac, method, lr, weight_decay, seed, task, budget) -> tuple:
    """A run's :data:`_REUSE_KEY`, typed alike whether it comes from a cell or a table row."""
    return (str(role), int(p), float(frac), str(method), float(lr), float(weight_decay),
            int(seed), str(task), int(budget))


def regime_table(P, *, workers: int | None = None, scheduler: str | None = None,
                 progress: bool | None = None, reuse: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """The regime map of transfer profile ``P`` as one row per run (see the module docstring):
    first every candidate setting of both sides in every cell from the tuning seeds, then each
    side's best setting per cell from ``P.seeds``. Runs go through the run cache, on Dask
    (``grokbook.sweep``: by default one local one-thread process per core, ``workers=N`` that
    many, ``workers=0`` here, ``scheduler`` a cluster).

    ``reuse``: an earlier map of the same profile (:func:`read`); a tuning run it holds (same
    p, fraction, method, lr, weight decay, seed, task and budget) is taken from it instead of
    trained again, so that after the tuning table changes only the new candidates train.
    Tuning runs are scored by their epochs alone; the reported runs, whose wall seconds the
    map compares side by side, always train again, so that both sides of a cell are timed by
    the same code on the same machine."""
    from grokbook import tuning
    from grokbook.leaderboard import epoch_flops
    from grokbook.sweep import check_options

    check_options(workers, scheduler)
    grid = _cells(P)
    methods = {cell: methods_at(P, *cell) for cell in grid}
    flops = {(cell, name): epoch_flops(method, P.seeds[0])
             for cell in grid for name, method in methods[cell].items()}
    budget = tuning.BUDGETS[("transfer", P.name)]
    task = P.regime["task"]
    tuning_runs = [
        ("tuning", task, *cell, name,
         tuning.at(method, lr, wd, epochs=budget, stop_acc=tuning.THRESHOLD, stop_patience=1),
         lr, wd, seed, flops[(cell, name)])
        for cell in grid for name, method in methods[cell].items()
        for lr, wd in candidates(P, name) for seed in tuning.TUNING_SEEDS]
    held = None if reuse is None else reuse[reuse.role == "tuning"]
    tuned = pd.DataFrame(_map(tuning_runs, workers, scheduler, progress, "regime tuning runs",
                              held))
    chosen = best_settings(tuned)
    reported = [("reported", task, *cell, name, tuning.at(method, *chosen[(*cell, name)]),
                 *chosen[(*cell, name)], seed, flops[(cell, name)])
                for cell in grid for name, method in methods[cell].items() for seed in P.seeds]
    rows = _map(reported, workers, scheduler, progress, "regime runs")
    return _typed(tuned.to_dict("records") + rows)


def best_settings(tuned: pd.DataFrame) -> dict[tuple[int, float, str], tuple[float, float]]:
    """Per (p, frac, method), the (lr, weight decay) of the tuning rows with the lowest
    censored median epochs, by ``grokbook.tuning``'s rule."""
    from grokbook import tuning

    rows = tuned.rename(columns={"epochs": "epoch_95", "epochs_budget": "budget"})
    scores = tuning.score_cells(rows, by=("p", "frac", "method", "lr", "weight_decay"))
    out = {}
    for (p, frac, method), cells in scores.groupby(["p", "frac", "method"], sort=False):
        best = tuning.ranked(cells).iloc[0]
        out[(int(p), float(frac), str(method))] = (float(best.lr), float(best.weight_decay))
    return out


# ---- the table -------------------------------------------------------------------------------

def _columns() -> tuple[str, ...]:
    """The shoot-out's columns, its weak model's stop reason replaced by its test accuracy
    (and without the target's final accuracy: the map reads the costs only)."""
    from grokbook.leaderboard import COLUMNS

    return ("role", "p", "frac", "lr", "weight_decay",
            *(c for c in COLUMNS
              if c not in ("lr", "weight_decay", "weak_stopped", "final_test_acc")),
            "weak_test_acc")


def _typed(rows: list[dict]) -> pd.DataFrame:
    from grokbook.leaderboard import _typed as typed_runs

    runs = typed_runs(rows)
    extra = pd.DataFrame(rows, columns=["role", "p", "frac", "weak_test_acc"]).astype(
        {"role": str, "p": int, "frac": float, "weak_test_acc": float})
    return pd.concat([extra, runs], axis=1)[list(_columns())]


def write(table: pd.DataFrame, path, command: str = "") -> Path:
    """Write a regime table atomically as CSV, the command that made it on top."""
    from grokbook.tables import write_csv

    return write_csv(table, path, "Regime map of grokbook, chapter 4 (see grokbook.regime).",
                     command)


def read(path) -> pd.DataFrame:
    """A regime table written by :func:`write`, validated: its columns, known roles and
    methods, one row per (role, p, frac, method, lr, wd, seed), and one setting per reported
    (p, frac, method)."""
    table = pd.read_csv(path, comment="#")
    missing = sorted(set(_columns()) - set(table.columns))
    if missing:
        raise ValueError(f"{path}: not a regime table, columns {missing} are missing")
    for column, allowed in (("role", ROLES), ("method", METHODS)):
        bad = ~table[column].isin(allowed)
        if bad.any():
            raise ValueError(f"{path}: {column} {table[column][bad].iloc[0]!r} is not one of "
                             f"{', '.join(allowed)}")
    key = list(_RUN_KEY)
    if table.duplicated(key).any():
        raise ValueError(f"{path}: a run appears twice: "
                         f"{table[table.duplicated(key)][key].iloc[0].to_dict()}")
    settings = table[table.role == "reported"].groupby(["p", "frac", "method"])[
        ["lr", "weight_decay"]].nunique()
    if (settings > 1).any(axis=None):
        raise ValueError(f"{path}: a cell reports runs at more than one setting")
    return _typed(table[list(_columns())].to_dict("records"))


# ---- what the map shows ----------------------------------------------------------------------

def summary(table: pd.DataFrame, unit: str = "seconds", confidence: float = 0.95
            ) -> pd.DataFrame:
    """Per cell (p, frac) of ``table``'s reported runs: each side's setting, ``k`` of ``n`` seeds
    that reached 95% test and median ``unit`` with its bootstrap interval
    (``grokbook.leaderboard``), ``ratio`` = scratch's median / GrokTransfer's (above 1:
    GrokTransfer cheaper; ``ratio_bound`` says when a median is censored and the ratio is
    only a bound: ``>=`` or ``<=``; NaN with ``?`` when neither median was reached), and
    ``verdict``: ``GrokTransfer`` or ``scratch`` when that side's interval lies wholly below
    the other's, else ``tie``."""
    from grokbook.leaderboard import UNITS, censored_of, median_interval
    from grokbook.stats import surely_less

    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    reported = table[table.role == "reported"]
    if reported.empty:
        raise ValueError("the table has no reported runs")
    rows = []
    for (p, frac), cell in reported.groupby(["p", "frac"], sort=True):
        row: dict[str, Any] = {"p": int(p), "frac": float(frac)}
        side = {}
        for method in METHODS:
            runs = cell[cell.method == method]
            if runs.empty:
                raise ValueError(f"cell p={p}, frac={frac} has no {method} runs")
            data = censored_of(runs, unit)
            low, high = median_interval(data, confidence)
            side[method] = (data.median(), low, high)
            short = "GT" if method == "GrokTransfer" else method
            row |= {f"{short}_lr": float(runs.lr.iloc[0]),
                    f"{short}_wd": float(runs.weight_decay.iloc[0]),
                    f"{short}_k": data.k, f"{short}_n": data.n, f"{short}_median": data.median(),
                    f"{short}_low": low, f"{short}_high": high}
        scratch, transfer = side["scratch"][0], side["GrokTransfer"][0]
        row["ratio"] = (math.nan if scratch.censored and transfer.censored
                        else scratch.value / transfer.value if transfer.value > 0 else math.inf)
        row["ratio_bound"] = ("?" if scratch.censored and transfer.censored else
                              ">=" if scratch.censored else "<=" if transfer.censored else "=")
        row["verdict"] = ("GrokTransfer" if surely_less(side["GrokTransfer"][2],
                                                          side["scratch"][1])
                          else "scratch" if surely_less(side["scratch"][2],
                                                        side["GrokTransfer"][1])
                          else "tie")
        rows.append(row)
    return pd.DataFrame(rows)


def ratio_grid(summary_: pd.DataFrame) -> pd.DataFrame:
    """``summary``'s ratios as a frac x p grid (rows: training fraction, columns: p)."""
    return summary_.pivot(index="frac", columns="p", values="ratio").sort_index(
        ascending=False)


def log2_ratio(summary_: pd.DataFrame) -> pd.DataFrame:
    """``ratio_grid`` on a log2 scale (0: a tie in medians), for a diverging colour map."""
    return np.log2(ratio_grid(summary_).astype(float))


def shown(summary_: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """``summary``'s cells for reading, one row per (p, train fraction): each side's setting,
    "k of n" and median with its interval as text, the ratio and the verdict."""
    from grokbook.leaderboard import as_text

    def text(e) -> str:
        return as_text(e, digits)

    out = {}
    for short, method in (("scratch", "scratch"), ("GT", "GrokTransfer")):
        out[f"{method} (lr, wd)"] = [f"({lr:g}, {wd:g})" for lr, wd in
                                     zip(summary_[f"{short}_lr"], summary_[f"{short}_wd"])]
        out[f"{method} reached"] = [f"{k} of {n}" for k, n in
                                    zip(summary_[f"{short}_k"], summary_[f"{short}_n"])]
        out[f"{method} median"] = [
            f"{text(m)} ({text(lo)} to {text(hi)})" for m, lo, hi in
            zip(summary_[f"{short}_median"], summary_[f"{short}_low"], summary_[f"{short}_high"])]
    out["scratch / GrokTransfer"] = ["neither reached" if b == "?" else f"{BOUND_SIGNS[b]}{r:.2g}x"
                                     for r, b in zip(summary_["ratio"],
                                                     summary_["ratio_bound"])]
    out["surely cheaper"] = ["neither" if v == "tie" else v for v in summary_["verdict"]]
    index = pd.MultiIndex.from_arrays([summary_["p"], summary_["frac"]],
                                      names=["p", "train fraction"])
    return pd.DataFrame(out, index=index)


def check_reusable(path, profile: str) -> pd.DataFrame:
    """The map at ``path`` (:func:`read`), refused unless a ``# made by:`` line says it was made
    for ``profile``: a map of another profile has other models at the same (p, fraction)."""
    table = read(path)
    profiles = {line.split("--profile ", 1)[1].split()[0] for line in made_by(path)
                if "--profile " in line}
    if profiles != {profile}:
        raise ValueError(f"reuse must be a map made with --profile {profile}; {path} was made "
                         f"with {', '.join(sorted(profiles)) or 'no recorded profile'}")
    return table


def made_by(path) -> list[str]:
    """The commands that made the table at ``path`` (its ``# made by:`` lines)."""
    return [line.removeprefix("# made by: ") for line in Path(path).read_text().splitlines()
            if line.startswith("# made by: ")]


def findings(table: pd.DataFrame, P) -> list[str]:
    """What chapter 4 reads off the map ``table`` of transfer profile ``P`` (the book's): per
    unit the cells where each side is surely cheaper, tied or incomparable; where GrokTransfer
    comes closest and falls furthest behind; the chapter's own point; how often each side and
    the weak model got there; and how many per-cell settings moved, and how many of those moves
    were tie-breaks (no candidate reached 95% on a tuning seed). One Markdown bullet each."""
    by_epochs, by_seconds = summary(table, "epochs"), summary(table, "seconds")
    cells = {"epochs": by_epochs.set_index(["p", "frac"]),
             "seconds": by_seconds.set_index(["p", "frac"])}
    n_cells = len(by_seconds)

    def ratio(row):
        return f"{BOUND_WORDS[row.ratio_bound]}{row.ratio:.2g}x"

    def count(unit, verdict):
        return int((cells[unit].verdict == verdict).sum())

    lines = []
    for unit, what in (("epochs", "epochs of the target"),
                       ("seconds", "seconds, the weak model's included")):
        neither = int((cells[unit].ratio_bound == "?").sum())
        lines.append(f"- In {what}, GrokTransfer is surely cheaper in "
                     f"{count(unit, 'GrokTransfer')} of {n_cells} cells and tuned scratch in "
                     f"{count(unit, 'scratch')}; in {count(unit, 'tie') - neither} the intervals "
                     f"overlap, and in {neither} neither side reached 95% test on at least half "
                     "of its seeds, so there is nothing to compare.")
    sec = cells["seconds"]
    best, worst = sec.ratio.idxmax(), sec.ratio.idxmin()
    for (p, frac), verb in ((best, "pays most" if sec.ratio.max() > 1 else "comes closest"),
                            (worst, "falls furthest behind")):
        row = sec.loc[(p, frac)]
        lines.append(f"- GrokTransfer {verb} at p = {p} with {frac:.0%} train: scratch "
                     f"takes {ratio(row)} its seconds (GrokTransfer reached 95% on "
                     f"{row.GT_k} of {row.GT_n} seeds, scratch on {row.scratch_k} of "
                     f"{row.scratch_n}).")
    home = sec.loc[(P.p, P.frac)]
    lines.append(f"- At the chapter's own point (p = {P.p}, {P.frac:.0%} train) the ratio is "
                 f"{ratio(home)} in seconds and {ratio(cells['epochs'].loc[(P.p, P.frac)])} "
                 "in epochs.")
    reported = table[table.role == "reported"]
    reached = reported.groupby("method").reached.agg(["sum", "size"])
    lines.append(f"- Over the whole map, tuned scratch reached 95% test on "
                 f"{reached.loc['scratch', 'sum']} of {reached.loc['scratch', 'size']} runs, "
                 f"GrokTransfer on {reached.loc['GrokTransfer', 'sum']} of "
                 f"{reached.loc['GrokTransfer', 'size']}.")
    stop = P.weak[P.regime["task"]].budget.stop_acc
    weak = reported[reported.method == "GrokTransfer"].assign(
        stopped=lambda t: t.weak_test_acc >= stop)
    weak_k = weak.groupby(["p", "frac"]).stopped.agg(["sum", "size"])
    starved = [f"p = {p} with {frac:.0%}" for (p, frac), r in weak_k.iterrows() if r["sum"] == 0]
    never = weak[~weak.stopped].weak_test_acc
    lines.append(f"- The weak model reached its {stop:.0%} stop on "
                 f"{int(weak_k['sum'].sum())} of {int(weak_k['size'].sum())} seeds over the map, "
                 f"and on none at {', '.join(starved) or 'no cell'}. The {len(never)} that never "
                 "got there trained their whole budget; most handed over the embedding of a model "
                 f"at chance (median test accuracy {never.median():.1%}; chance is 1/p), "
                 f"{int((never > 0.1).sum())} of them ended above 10%.")
    tuned = table[table.role == "tuning"]
    moved, empty = {}, {}
    for short, method in (("scratch", "scratch"), ("GT", "GrokTransfer")):
        first = candidates(P, method)[0]
        cells_moved = [(p, f) for p, f, lr, wd in
                       zip(by_seconds.p, by_seconds.frac, by_seconds[f"{short}_lr"],
                           by_seconds[f"{short}_wd"]) if (lr, wd) != first]
        moved[method] = len(cells_moved)
        empty[method] = sum(not tuned[(tuned.p == p) & (tuned.frac == f)
                                      & (tuned.method == method)].reached.any()
                            for p, f in cells_moved)
    lines.append(f"- Re-tuning per cell moved scratch away from its setting at the chapter's "
                 f"point in {moved['scratch']} of {n_cells} cells and GrokTransfer in "
                 f"{moved['GrokTransfer']}; in {empty['scratch']} and {empty['GrokTransfer']} "
                 "of these no candidate reached 95% on any tuning seed, so the choice there "
                 "is only a tie-break.")
    return lines
