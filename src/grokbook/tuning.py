"""Fair tuning: every method of a comparison on the same grid, budget and tuning seeds.

A comparison is only fair when each side runs at its own best setting. For each comparison of
chapters 4, 5, 6 and 8 (scratch against GrokTransfer; plain training against GrokFast's two
filters and GrokTransfer; plain training, GrokFast, per-tensor normalisation and NeuralGrok on
four tasks; chapter 8's small initialization and GrokTransfer, and every method on sparse
parity), every method is trained on the same grid of learning rate x weight decay
(:func:`grid_lrs` x :data:`WEIGHT_DECAYS`), with the same epoch budget, from the same tuning seeds
(:data:`TUNING_SEEDS`), which no chapter reports (``grokbook.profiles`` refuses a seed offset
that would reach them). A cell's score is the median over its seeds of the epochs to 95% test
accuracy, a seed that never got there censored at the budget (``grokbook.stats``); the best cell
is the one with the lowest median, ties broken by the mean of the censored epochs, then by the
higher median final test accuracy (a method that never reached 95% in any cell races where it
came closest), then by the smaller weight decay and learning rate. For GrokTransfer only the
target's (lr, wd) is tuned; its weak model is the chapter's.

The table is committed data (``src/grokbook/data/tuning.csv``), made by ``grokbook tune``
(:func:`tune`; on Dask, resumable: cells already in the table are skipped), and the chapters'
profiles read their settings from it (:func:`best`). Nothing is hand-picked.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from grokbook.config import RunCfg, replace
from grokbook.files import atomic_write_bytes

LRS = (1e-3, 3e-3, 1e-2, 3e-2)
"""The learning rates of every chapter's grid."""
EXTRA_LRS = {"transfer": (0.1, 0.3, 1.0), "cross": (3e-4, 0.1),
             "neuralgrok": (0.1, 0.3, 1.0), "shootout": (0.1, 0.3, 1.0)}
"""Learning rates added to a chapter's grid because its best cells sat on an edge of
:data:`LRS`: a best cell on the grid's edge says only that the optimum lies at or beyond it,
so a baseline tuned there may not be at its best. With 0.1 and 0.3 some best cells sat on 0.3;
with 1 none sits on an edge (a test checks it). Chapter 4 (four of whose six cells sat on
0.03) goes as far, and no best cell moved. Chapter 5's sat on both edges (GrokTransfer on
1e-3, plain training and GrokFast-MA on 0.03), so its grid goes one step further each way:
at 0.1 no run of any method reaches 95% test within the budget (final test accuracies near
chance; a claim of the chapter checks it), so the grid stops there. The tables mark a tuned
cell on the grid's edge (``grokbook.tables.tuned_cells``)."""
WEIGHT_DECAYS = (0.1, 0.3, 1.0, 2.0, 3.0, 5.0)
TUNING_SEEDS = (1000, 1001, 1002)
THRESHOLD = 0.95
TIE_BREAKS = ("the lowest mean epochs over the tuning seeds, a seed that never got there "
              "counted at the budget, then the highest median final test accuracy: where it "
              "came closest")
"""How :func:`ranked` orders cells of equal censored median, in words for the chapters."""
TABLE = Path(str(resources.files("grokbook") / "data" / "tuning.csv"))
COLUMNS = ("profile", "chapter", "task", "method", "lr", "weight_decay", "seed", "budget",
           "epoch_95", "seconds_95", "seconds", "weak_epochs", "weak_seconds", "final_train_acc",
           "final_test_acc", "stopped", "torch", "device", "cpu_capability")
KEY = ("profile", "chapter", "task", "method", "lr", "weight_decay", "seed")
TUNED_CHAPTERS = ("transfer", "cross", "neuralgrok", "shootout")
PROFILES = ("ci", "book")  # the paper profile keeps the paper's settings (tuning it needs a GPU)
BUDGETS = {("transfer", "ci"): 1500, ("transfer", "book"): 2000, ("cross", "book"): 1500,
           ("neuralgrok", "book"): 1000, ("shootout", "book"): 1000}
"""Tuning epochs per (chapter, profile). Chapters 5 and 6's ci profiles train the book's
models on the book's data (fewer seeds, shorter budgets), so they use the book's rows
(:data:`TUNED_AS`). Chapter 6 tunes 5 methods on 4 tasks (2,520 runs) at 1000 epochs; its
race then runs for 1500 (a^2-b: 2000 and 3000, :data:`TASK_BUDGETS`)."""
TRANSFORMER_TASKS = ("transformer", "transformer_sub", "transformer_mul", "transformer_sq_sub")
"""Chapter 8's Transformer tasks (``profiles.shootout.TRANSFORMER_OPS``; a test keeps the two
equal): tuned on chapter 5's grid and budget."""
TASK_BUDGETS = {("neuralgrok", "book", "sq_sub"): 2000, ("shootout", "book", "sq_sub"): 2000,
                **{("shootout", "book", task): BUDGETS[("cross", "book")]
                   for task in TRANSFORMER_TASKS}}
"""Tuning epochs of a task whose budget differs from its chapter's (:data:`BUDGETS`), the same
for every method on it (chapter 8's own methods included). At chapter 6's 1000 epochs, some
methods had no cell of the grid on a^2-b in which the median tuning seed reached 95% test, so
it is tuned for twice as long (chapter 6 counts the cells at both budgets, :func:`censor_at`).
Chapter 8's Transformer tasks (:data:`TRANSFORMER_TASKS`, a^2-b among them) are tuned at
chapter 5's budget (:data:`TASK_GRIDS`), which is also their race's."""
TASK_GRIDS = {("shootout", task): "cross" for task in TRANSFORMER_TASKS}
"""A task tuned on another chapter's learning rates (and budget, :data:`TASK_BUDGETS`): chapter
8 races chapter 5's Transformer, on a+b with plain training, GrokFast and GrokTransfer reading
chapter 5's rows, so the methods it tunes itself there, and every method on the other
operations, share chapter 5's grid and budget."""
TUNED_AS = {("cross", "ci"): "book", ("neuralgrok", "ci"): "book", ("shootout", "ci"): "book"}


@dataclass(frozen=True)
class Cell:
    """One tuning run: a method of a comparison at (lr, weight_decay) from one tuning seed."""

    profile: str
    chapter: str
    task: str
    method: str
    lr: float
    weight_decay: float
    seed: int

    def key(self) -> tuple:
        return tuple(asdict(self)[k] for k in KEY)


def grid_lrs(chapter: str, task: str | None = None) -> tuple[float, ...]:
    """The learning rates ``chapter``'s methods are tuned on (on ``task``, where
    :data:`TASK_GRIDS` gives it another chapter's), smallest first: :data:`LRS` and the
    chapter's :data:`EXTRA_LRS` (larger ones, and for chapter 5 a smaller one too)."""
    if chapter not in TUNED_CHAPTERS:
        raise ValueError(f"chapter must be one of {', '.join(TUNED_CHAPTERS)}, got {chapter!r}")
    chapter = TASK_GRIDS.get((chapter, task), chapter)
    return tuple(sorted(LRS + EXTRA_LRS.get(chapter, ())))


def tuning_budget(chapter: str, profile: str, task: str) -> int:
    """The tuning epochs of ``task`` in ``chapter`` at ``profile`` (the profile whose rows it
    reads, :func:`table_profile`): :data:`TASK_BUDGETS`, else the chapter's :data:`BUDGETS`."""
    profile = table_profile(chapter, profile)
    if (chapter, profile) not in BUDGETS:
        raise ValueError(f"(chapter, profile) must be one of {sorted(BUDGETS)}, got "
                         f"{(chapter, profile)!r}")
    return TASK_BUDGETS.get((chapter, profile, task), BUDGETS[(chapter, profile)])


def table_profile(chapter: str, profile: str) -> str:
    """The profile whose rows of the table ``profile`` uses for ``chapter``."""
    return TUNED_AS.get((chapter, profile), profile)


def methods(chapter: str, profile: str) -> dict[tuple[str, str], Any]:
    """``{(task, method): Method}`` of a tuned comparison, from the chapter's untuned profile
    (the settings before tuning; their (lr, wd) is what the grid replaces)."""
    from grokbook import profiles

    P = profiles.load(chapter, profile, seed_offset=0, tuned=False)
    if chapter == "transfer":
        from grokbook.profiles.transfer import DIGITS

        return {**{(t, "scratch"): P.scratch[t] for t in P.tasks},
                **{(t, "GrokTransfer"): P.grok_transfer(t) for t in P.tasks},
                (DIGITS, "scratch"): P.digits_scratch,
                (DIGITS, "GrokTransfer"): P.digits_transfer()}
    if chapter == "cross":
        return {("add", name): method for name, method in P.methods().items()}
    if chapter == "neuralgrok":
        from grokbook.profiles.neuralgrok import TASKS

        return {(task, name): method for task in TASKS
                for name, method in P.methods(task).items()}
    if chapter == "shootout":  # the other methods are chapter 6's, tuned there
        from grokbook.profiles.shootout import LATER, tuned_here

        return {(task, name): P.method(task, name) for task in (*P.tasks, *LATER)
                for name in tuned_here(task)}
    raise ValueError(f"chapter must be one of {', '.join(TUNED_CHAPTERS)}, got {chapter!r}")


def at(method: Any, lr: float, weight_decay: float, **budget: Any) -> Any:
    """``method`` with its optimizer's (lr, wd) set (a GrokTransfer's target's) and its budget
    changed (``epochs=..``, ``stop_acc=..``)."""
    changes = {"optim__lr": lr, "optim__weight_decay": weight_decay,
               **{f"budget__{k}": v for k, v in budget.items()}}
    if isinstance(method, RunCfg):
        return replace(method, **changes)
    return type(method)(method.weak, replace(method.target, **changes), method.control,
                        method.freeze_a)


def cells(profiles: tuple[str, ...] = PROFILES, chapters: tuple[str, ...] = TUNED_CHAPTERS,
          tasks: tuple[str, ...] | None = None) -> list[Cell]:
    """Every tuning cell of ``profiles`` x ``chapters`` (only of ``tasks`` where given),
    slowest first (small learning rates take longest), so that a pool of workers ends
    together."""
    if isinstance(tasks, str) or not (tasks is None or isinstance(tasks, tuple)):
        raise ValueError(f"tasks must be None or a tuple of task names, got {tasks!r}")
    out = []
    for chapter in chapters:
        for profile in profiles:
            if table_profile(chapter, profile) != profile:
                continue
            for task, method in methods(chapter, profile):
                if tasks is not None and task not in tasks:
                    continue
                out += [Cell(profile, chapter, task, method, lr, wd, seed)
                        for lr in grid_lrs(chapter, task) for wd in WEIGHT_DECAYS
                        for seed in TUNING_SEEDS]
    return sorted(out, key=lambda c: (c.lr, -c.weight_decay))


def missing(table: pd.DataFrame, profiles: tuple[str, ...] = PROFILES,
            chapters: tuple[str, ...] = TUNED_CHAPTERS, tasks: tuple[str, ...] | None = None
            ) -> list[Cell]:
    """The cells of ``profiles`` x ``chapters`` (of ``tasks`` where given) that ``table`` does
    not hold yet."""
    done = set(map(tuple, table[list(KEY)].itertuples(index=False)))
    return [c for c in cells(profiles, chapters, tasks) if c.key() not in done]


def run_cell(cell: Cell) -> dict[str, Any]:
    """Train one cell (through the run cache) and return its table row."""
    import torch

    from grokbook.experiments import run_method

    method = methods(cell.chapter, cell.profile)[(cell.task, cell.method)]
    budget = tuning_budget(cell.chapter, cell.profile, cell.task)
    method = at(method, cell.lr, cell.weight_decay, epochs=budget, stop_acc=THRESHOLD,
                stop_patience=1)
    run = run_method(method, cell.seed, progress=False)
    h = run.history
    epoch = h.first_epoch("test_acc", THRESHOLD)
    weak = run.weak.history if run.weak is not None else None
    return {**asdict(cell), "budget": budget, "epoch_95": epoch,
            "seconds_95": h.seconds * epoch / max(h.epoch[-1], 1) if epoch is not None else None,
            "seconds": h.seconds, "weak_epochs": weak.epoch[-1] if weak else None,
            "weak_seconds": weak.seconds if weak else None,
            "final_train_acc": h.train_acc[-1], "final_test_acc": h.test_acc[-1],
            "stopped": h.stopped, "torch": torch.__version__,
            "device": str(next(run.model.parameters()).device.type),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


# ---- the table ------------------------------------------------------------------------------

def read(path: str | Path = TABLE) -> pd.DataFrame:
    """The tuning table, validated: the expected columns, one row per cell, grid values only,
    each task's rows at its tuning budget (:func:`tuning_budget`)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    table = pd.read_csv(path, comment="#")
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a tuning table, columns {sorted(missing)} are missing")
    if table.duplicated(list(KEY)).any():
        raise ValueError(f"{path}: a cell appears twice: "
                         f"{table[table.duplicated(list(KEY))][list(KEY)].iloc[0].to_dict()}")
    unknown = ~table["chapter"].isin(TUNED_CHAPTERS)
    if unknown.any():
        raise ValueError(f"{path}: chapter {table['chapter'][unknown].iloc[0]!r} is not one of "
                         f"{', '.join(TUNED_CHAPTERS)}")
    for (chapter, task), rows in table.groupby(["chapter", "task"]):
        allowed_lrs = grid_lrs(chapter, task)
        for column, allowed in (("lr", allowed_lrs), ("weight_decay", WEIGHT_DECAYS)):
            bad = ~rows[column].isin(allowed)
            if bad.any():
                value = float(rows[column][bad].iloc[0])
                raise ValueError(f"{path}: {column} {value!r} is not on chapter {chapter}'s "
                                 f"grid of {task} {allowed}")
    for (profile, chapter, task), rows in table.groupby(["profile", "chapter", "task"]):
        expected = tuning_budget(chapter, profile, task)
        if (rows.budget != expected).any():
            raise ValueError(f"{path}: {chapter}'s rows of {task} at profile {profile} have "
                             f"budget {int(rows.budget[rows.budget != expected].iloc[0])}, "
                             f"not the tuning budget {expected}: delete those rows, then run "
                             f"`grokbook tune` to train them again")
    return table[list(COLUMNS)]


def write(table: pd.DataFrame, path: str | Path = TABLE, command: str = "") -> Path:
    """Write the table atomically, sorted by cell, with the command that made it on top."""
    table = table.sort_values(list(KEY)).reset_index(drop=True)
    made_by = []
    if Path(path).exists():
        made_by = [line for line in Path(path).read_text().splitlines()
                   if line.startswith("# made by: ")]
    if command and f"# made by: {command}" not in made_by:
        made_by.append(f"# made by: {command}")
    text = io.StringIO()
    text.write("# Fair tuning table of grokbook (see grokbook.tuning).\n")
    text.write("".join(line + "\n" for line in made_by))
    table.to_csv(text, index=False, float_format="%.6g")
    return atomic_write_bytes(path, text.getvalue().encode())


def chapter_rows(chapter: str, profile: str, table: pd.DataFrame | None = None
                 ) -> pd.DataFrame:
    """The rows of the table (default: the committed one) that ``chapter`` at ``profile`` is
    tuned from (:func:`table_profile`); none for the paper profile."""
    table = read() if table is None else table
    return table[(table.profile == table_profile(chapter, profile))
                 & (table.chapter == chapter)]


def lrs_by_device(chapter: str, profile: str) -> dict[str, tuple[float, ...]]:
    """``{device: learning rates}`` of the runs ``chapter`` at ``profile`` is tuned from (the
    table's ``device`` column: ``"cpu"``, ``"cuda"``), each list smallest first. A learning
    rate listed under two devices mixes machines within its cells."""
    rows = chapter_rows(chapter, profile)
    return {device: tuple(sorted(set(r.lr))) for device, r in rows.groupby("device")}


def censor_at(table: pd.DataFrame, epochs: int) -> pd.DataFrame:
    """``table``'s rows scored as if tuned with a budget of ``epochs`` (at most their own): a
    run that reached 95% test later counts as never (``epoch_95``, ``budget`` and ``stopped``
    change; the final accuracies and times are left as they are). Exact for the medians, means
    and counts of :func:`scores` (a tuning run stops at 95%, and a shorter run is the same run
    cut short), not for ``final``, the last tie-break of :func:`ranked`."""
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if (table.budget < epochs).any():
        raise ValueError(f"epochs must be at most every row's budget "
                         f"({int(table.budget.min())}), got {epochs}")
    later = table.epoch_95 > epochs
    return table.assign(budget=epochs, epoch_95=table.epoch_95.mask(later),
                        stopped=table.stopped.mask(later, "budget"))


def scores(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (profile, chapter, task, method, lr, wd): seeds, how many reached 95% test, the
    censored median epochs (``median``, with ``censored`` when it lands on a run that never got
    there) and the mean with never-runs at the budget (``mean``)."""
    if table is None and Path(TABLE).exists():
        return _scores_of_file(str(TABLE), Path(TABLE).stat().st_mtime_ns).copy()
    return _scores(read() if table is None else table)


@functools.cache
def _scores_of_file(path: str, modified_ns: int) -> pd.DataFrame:
    """The committed table's scores, computed once per version of the file."""
    return _scores(read(path))


def _scores(table: pd.DataFrame) -> pd.DataFrame:
    return score_cells(table, by=("profile", "chapter", "task", "method", "lr", "weight_decay"))


def score_cells(table: pd.DataFrame, by: tuple[str, ...]) -> pd.DataFrame:
    """:func:`scores` of any table of runs with ``epoch_95`` (NaN: never) and ``budget``
    columns, grouped ``by`` those columns (chapter 4's regime map scores its cells so)."""
    from grokbook.stats import Censored

    rows = []
    group = list(by)
    for key, cell in table.groupby(group, sort=True):
        values = tuple(None if pd.isna(v) else float(v) for v in cell["epoch_95"])
        data = Censored(values, tuple(float(b) for b in cell["budget"]))
        median = data.median()
        rows.append({**dict(zip(group, key)), "seeds": data.n, "reached": data.k,
                     "median": median.value, "censored": median.censored,
                     "mean": sum(b if v is None else v
                                 for v, b in zip(data.values, data.budgets)) / data.n,
                     "final": (cell["final_test_acc"].median()
                               if "final_test_acc" in cell else math.nan)})
    return pd.DataFrame(rows)


def ranked(scores_: pd.DataFrame) -> pd.DataFrame:
    """:func:`scores` rows best first: the lowest censored median epochs (a median on a
    never-run ranks last), ties broken by the mean, then by the higher median final test
    accuracy (``final``: among cells whose every seed never got there, the one that came
    closest), then the smaller weight decay and learning rate."""
    final = scores_["final"] if "final" in scores_ else pd.Series(math.nan, scores_.index)
    scores_ = scores_.assign(rank=scores_["median"].where(~scores_["censored"], math.inf),
                             closer=-final.fillna(-math.inf))
    return scores_.sort_values(["rank", "mean", "closer", "weight_decay", "lr"]).drop(
        columns="closer")


def best_cell(chapter: str, profile: str, task: str, method: str,
              table: pd.DataFrame | None = None,
              lrs: tuple[float, ...] | None = None) -> pd.Series | None:
    """The :func:`scores` row of the tuned cell of ``method`` on ``task``, the first of
    :func:`ranked_cells`. ``lrs`` restricts the choice to those learning rates
    of the grid (chapter 8's "wd-only": plain training's best weight decay at its default
    learning rate). None for the paper profile, which keeps the paper's settings; an error
    when the table lacks part of the grid (run ``grokbook tune``)."""
    cells = ranked_cells(chapter, profile, task, method, table, lrs)
    return None if cells is None else cells.iloc[0]


def ranked_cells(chapter: str, profile: str, task: str, method: str,
                 table: pd.DataFrame | None = None,
                 lrs: tuple[float, ...] | None = None) -> pd.DataFrame | None:
    """Every :func:`scores` row of ``method`` on ``task``, best first (:func:`ranked`); see
    :func:`best_cell`."""
    if profile not in PROFILES:
        return None
    s = scores(table)
    s = s[(s.profile == table_profile(chapter, profile)) & (s.chapter == chapter)
          & (s.task == task) & (s.method == method)]
    grid = grid_lrs(chapter, task)
    if len(s) < len(grid) * len(WEIGHT_DECAYS) or (s.seeds < len(TUNING_SEEDS)).any():
        raise ValueError(f"the tuning table lacks cells of {method} on {task} ({chapter}, "
                         f"profile {profile}): run `grokbook tune --profile "
                         f"{table_profile(chapter, profile)} --chapter {chapter}`")
    if lrs is not None:
        if not lrs or any(lr not in grid for lr in lrs):
            raise ValueError(f"lrs must be learning rates of chapter {chapter}'s grid {grid}, "
                             f"got {lrs!r}")
        s = s[s.lr.isin(lrs)]
    return ranked(s)


def best(chapter: str, profile: str, task: str, method: str,
         table: pd.DataFrame | None = None,
         lrs: tuple[float, ...] | None = None) -> tuple[float, float] | None:
    """The tuned (lr, weight_decay) of ``method`` on ``task`` (see :func:`best_cell`)."""
    row = best_cell(chapter, profile, task, method, table, lrs)
    return None if row is None else (float(row.lr), float(row.weight_decay))


def edge_counts(chapter: str, profile: str, tasks: tuple[str, ...] | None = None,
                lrs: tuple[float, ...] | None = None) -> tuple[int, int]:
    """How many of ``chapter``'s tuned cells (on ``tasks``, default all) sit on the smallest or
    the largest of ``lrs`` (default: the chapter's grid, :func:`grid_lrs`; given, the choice is
    restricted to them), and of how many. A best cell on an edge says only that the optimum
    lies there or beyond. (0, 0) for the paper profile, which is not tuned."""
    if profile not in PROFILES:
        return 0, 0
    chosen = [(task, best(chapter, profile, task, method, lrs=lrs))
              for task, method in methods(chapter, profile) if tasks is None or task in tasks]
    return (sum(bool(grid_edge(lr, lrs or grid_lrs(chapter, task)))
                for task, (lr, _wd) in chosen), len(chosen))


def grid_edge(lr: float, grid: tuple[float, ...]) -> str:
    """``"largest"`` or ``"smallest"`` when ``lr`` is that end of ``grid``, else ``""``."""
    return "largest" if lr == max(grid) else "smallest" if lr == min(grid) else ""


def edge_note(chapter: str, profile: str, tasks: tuple[str, ...], why: str = "") -> str:
    """Chapters 4 and 5's paragraph on their grid's edge, then ``why``: how many of the
    chapter's tuned cells sat on an edge of :data:`LRS`, how far its grid goes beyond them
    (:data:`EXTRA_LRS`), how many sit on an edge of it now, and which best cells the
    extension moved."""
    if profile not in PROFILES:
        return "(The `paper` profile keeps the paper's settings: nothing is tuned.)"
    from grokbook.stats import Estimate

    on_edge, tuned = edge_counts(chapter, profile, tasks)
    before, _ = edge_counts(chapter, profile, tasks, LRS)
    grid = grid_lrs(chapter)
    moved = []
    for task, method in (key for key in methods(chapter, profile) if key[0] in tasks):
        old, new = (best_cell(chapter, profile, task, method, lrs=lrs) for lrs in (LRS, None))
        if (old.lr, old.weight_decay) != (new.lr, new.weight_decay):
            medians = [Estimate(c["median"], bool(c.censored)) for c in (old, new)]
            moved.append(f"{method} on {task} from ({old.lr:g}, {old.weight_decay:g}) to "
                         f"({new.lr:g}, {new.weight_decay:g}), median epochs "
                         f"{medians[0]} to {medians[1]}")
    down = f" and down to {min(grid)}" if min(grid) < min(LRS) else ""
    return (f"On the learning rates {', '.join(map(str, LRS))} alone, {before} of the "
            f"{tuned} tuned cells above sat on the smallest or the largest, and a best cell "
            "on an edge says only that the optimum lies there *or beyond it*. So this "
            f"chapter's grid goes on to {max(grid)}{down}: now {on_edge} of the {tuned} sit "
            "on an edge of it (the table's last column). "
            + (f"The extension moved {len(moved)} of the {tuned} best cells: "
               + "; ".join(moved) + "." if moved else "The extension moved no best cell.")
            + (f" {why}" if why else ""))


def parity_note() -> str:
    """Chapter 4's sentence on its parity baseline: scratch there trains at the paper's
    setting, not at its best; chapter 8 tunes the same network (plain training) on the same
    task, and this says where its best cell is and how fast it gets there."""
    cell = best_cell("shootout", "book", "parity", "plain")
    budget = tuning_budget("shootout", "book", "parity")
    speed = (f"does not reach 95% test within {budget} epochs on its median tuning seed"
             if cell.censored else
             f"reaches 95% test in a median of {cell['median']:.0f} epochs over the "
             f"{cell.seeds} tuning seeds ({cell.reached} of {cell.seeds} got there)")
    return ("Tuned on the grid (chapter 8 tunes every method on this task, with the race's "
            "optimizer and budget), the same network trained from scratch at its best cell, "
            f"learning rate {cell.lr:g} and weight decay {cell.weight_decay:g}, {speed}.")


def tune(profiles: tuple[str, ...] = PROFILES, chapters: tuple[str, ...] = TUNED_CHAPTERS,
         tasks: tuple[str, ...] | None = None, *, path: str | Path = TABLE,
         workers: int | None = None, scheduler: str | None = None,
         progress: bool | None = None, command: str = "") -> pd.DataFrame:
    """Run every missing cell (see :func:`cells`) on Dask (``grokbook.sweep``) and save each
    finished row to ``path`` as it arrives: a killed tuning run resumes where it stopped.
    Returns the table; failed cells are reported and left out (a re-run retries them)."""
    from grokbook.sweep import CellError, map_cells

    table = read(path)
    todo = missing(table, profiles, chapters, tasks)
    rows = table.to_dict("records")
    failures: list[CellError] = []

    def save(cell: Cell, row: Any) -> None:
        if isinstance(row, CellError):
            failures.append(row)
            return
        rows.append(row)
        write(pd.DataFrame(rows, columns=COLUMNS), path, command)

    map_cells(run_cell, todo, workers=workers, scheduler=scheduler, progress=progress,
              desc="tuning cells", on_result=save)
    for failure in failures:
        print(failure)
    return read(path)


def soonest_weight_decay(cfg: RunCfg, weight_decays: tuple[float, ...], epochs: int,
                         seeds: tuple[int, ...] = TUNING_SEEDS
                         ) -> tuple[float, dict[float, Any]]:
    """The weight decay among ``weight_decays`` at which ``cfg`` reaches its own stop
    (``cfg.budget.stop_acc`` test accuracy) soonest, trained at most ``epochs`` from the tuning
    ``seeds``; the rule of :func:`ranked` (censored median, then mean, then the smaller weight
    decay). Chapter 4's wide weak model: at the weak model's weight decay it memorizes and
    never reaches its stop. The runs train side by side (``experiments.race``). Returns the
    choice and ``{weight decay: stats.Censored}``."""
    from grokbook.experiments import race
    from grokbook.stats import censored

    if cfg.budget.stop_acc is None:
        raise ValueError("cfg must stop at a test accuracy (budget.stop_acc), got None")
    if not weight_decays:
        raise ValueError("weight_decays must hold at least one weight decay")
    raced = race({wd: replace(cfg, optim__weight_decay=wd, budget__epochs=epochs)
                  for wd in weight_decays}, seeds)
    found, rows = {}, []
    for wd in weight_decays:
        found[wd] = censored([run.history for run in raced[wd]],
                             threshold=cfg.budget.stop_acc)
        rows += [{"lr": cfg.optim.lr, "weight_decay": wd, "budget": budget,
                  "epoch_95": math.nan if value is None else value}
                 for value, budget in zip(found[wd].values, found[wd].budgets)]
    best = ranked(score_cells(pd.DataFrame(rows), by=("lr", "weight_decay"))).iloc[0]
    return float(best.weight_decay), found
