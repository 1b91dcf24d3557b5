"""A grid of single runs, from command-line ranges or a YAML file, on Dask, into a tidy table.

``grokbook sweep`` is the tool for a question the chapters do not ask: "how does the epoch of
grokking move with the learning rate and the weight decay, on a*b mod 59, over 8 seeds?" It
takes a value or a list for every setting of :data:`AXES` (``--lr 1e-3,1e-2 --wd 0.3,1
--seeds 0-7``, or the same keys in a YAML file), makes one *cell* per combination and seed,
and trains each cell through the experiments layer, so every run lands in the run cache (a
chapter that asks for the same settings later loads it). The cells run on Dask
(:func:`grokbook.sweep.map_cells`): a ``LocalCluster`` with one single-threaded worker per core
by default, or an existing cluster (``--scheduler tcp://HOST:8786``; the README has a recipe
for Slurm with ``dask-jobqueue``).

Cells that differ only in learning rate, weight decay, init scale and seed train together as
stacks (``grokbook.engine``: on a worker's one thread a stack member is its run alone to
float32 rounding, to the bit on some CPUs, so stacking changes the time, not the epochs, but
where rounding tips a run one evaluation sooner or later; the engine measures which stack size
pays for the model at hand). A stacked cell's ``seconds`` is the stack's wall time shared out by
the members' steps, and its ``stack`` column says how many cells trained together; ``--stack
1`` trains every cell alone (through the run cache, where a chapter asking for the same run
later finds it) and measures each run's own time.

The table (CSV, one row per cell: its settings, then what it measured) is written atomically
each time a cell (or stack of cells) finishes, with the command that made it on top. Running
the same command again skips the cells the table already holds: a sweep that was killed
resumes where it stopped, and only the missing cells are trained. A cell that fails is
reported with its settings while the others finish, and is left out of the table (a re-run
retries it).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from grokbook.config import BudgetCfg, FNNCfg, ModularCfg, OptimCfg, RunCfg, TransformerCfg
from grokbook.files import atomic_write_bytes

MODELS = {
    "fnn": FNNCfg(d_embed=32, width=128, depth=2),
    "transformer": TransformerCfg(d_model=64, n_heads=4, d_mlp=256, n_layers=1),
}
"""The two models a sweep can train (chapter 1's FNN and Transformer); ``init_scale`` varies."""

AXES: dict[str, tuple[type, Any]] = {
    "task": (str, "add"), "p": (int, 59), "frac": (float, 0.5), "model": (str, "fnn"),
    "lr": (float, 1e-2), "wd": (float, 1.0), "init_scale": (float, 1.0),
    "epochs": (int, 2000), "eval_every": (int, 10), "stop_acc": (float, 0.95),
}
"""Every setting a sweep can vary: its type and its default (a single value)."""

SETTINGS = (*AXES, "seed")
MEASURED = ("epoch_95_train", "epoch_95_test", "time_gap", "final_train_acc", "final_test_acc",
            "last_epoch", "stopped", "seconds", "stack")
STACKED = ("lr", "wd", "init_scale", "seed")
"""The settings in which the cells of one stack may differ."""
COLUMNS = (*SETTINGS, *MEASURED)


def parse_values(name: str, text: str) -> list:
    """The values of the setting ``name`` from ``"a,b,c"`` (``seeds`` also takes ``"0-7"``),
    each converted to the setting's type; a clear error naming the setting otherwise."""
    if name == "seeds":
        out: list[int] = []
        for part in str(text).split(","):
            part = part.strip()
            low, dash, high = part.partition("-")
            try:
                out += list(range(int(low), int(high) + 1)) if dash else [int(part)]
            except ValueError:
                raise ValueError(f"seeds must be integers or ranges such as 0-7, separated by "
                                 f"commas, got {text!r}") from None
        return out
    if name not in AXES:
        raise ValueError(f"unknown sweep setting {name!r}; known: {', '.join((*AXES, 'seeds'))}")
    kind = AXES[name][0]
    values = []
    for part in str(text).split(","):
        try:
            values.append(kind(part.strip()))
        except ValueError:
            raise ValueError(f"{name} must be {kind.__name__} values separated by commas, "
                             f"got {text!r}") from None
    return values


def grid_of(settings: Mapping[str, Any]) -> dict[str, list]:
    """Every axis with its list of values (defaults for the missing ones) and ``seeds``, from
    ``settings``: a value, a list or a comma-separated string per key (YAML or the flags)."""
    unknown = set(settings) - set(AXES) - {"seeds"}
    if unknown:
        raise ValueError(f"unknown sweep setting(s) {sorted(unknown)}; known: "
                         f"{', '.join((*AXES, 'seeds'))}")
    grid = {}
    for name in (*AXES, "seeds"):
        value = settings.get(name, AXES[name][1] if name in AXES else 0)
        items = value if isinstance(value, (list, tuple)) else [value]
        grid[name] = [v for item in items for v in parse_values(name, item)]
        if not grid[name]:
            raise ValueError(f"{name} has no values")
        if len(set(grid[name])) != len(grid[name]):
            raise ValueError(f"{name} lists a value twice: {grid[name]}")
    return grid


def read_config(path: str | Path) -> dict[str, Any]:
    """A sweep's settings from a YAML file: a mapping of setting to a value or a list."""
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a sweep file must be a mapping of setting: value(s), "
                         f"got {type(loaded).__name__}")
    return loaded


def cells(grid: Mapping[str, list]) -> list[dict[str, Any]]:
    """One cell (a plain dict of settings, ``seed`` last) per combination of the grid's values
    and seed, each checked by building its run settings (a bad value is an error naming it)."""
    out = []
    for combo in itertools.product(*(grid[name] for name in AXES), grid["seeds"]):
        cell = dict(zip(SETTINGS, combo))
        run_settings(cell)
        out.append(cell)
    return out


def run_settings(cell: Mapping[str, Any]) -> RunCfg:
    """The run a cell trains (chapter 1's models; every run stops once test accuracy has held
    ``stop_acc`` for 5 evaluations, or trains its whole budget with ``stop_acc`` 0)."""
    if cell["model"] not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {cell['model']!r}")
    from grokbook.config import replace

    model = replace(MODELS[cell["model"]], init_scale=cell["init_scale"])
    stop = cell["stop_acc"] or None
    return RunCfg(data=ModularCfg(cell["task"], cell["p"], cell["frac"]), model=model,
                  optim=OptimCfg(lr=cell["lr"], weight_decay=cell["wd"]),
                  budget=BudgetCfg(cell["epochs"], eval_every=cell["eval_every"],
                                   stop_acc=stop, stop_patience=5))


def _row(cell: Mapping[str, Any], history, seconds: float, stack: int) -> dict[str, Any]:
    from grokbook import measures

    summary = measures.summary(history)
    return {**cell, "epoch_95_train": summary["epochs_to_train"],
            "epoch_95_test": summary["epochs_to_test"], "time_gap": summary["time_gap"],
            "final_train_acc": summary["final_train_acc"],
            "final_test_acc": summary["final_test_acc"], "last_epoch": history.epoch[-1],
            "stopped": history.stopped or "", "seconds": round(seconds, 3), "stack": stack}


def run_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Train one cell through the run cache and return its table row."""
    from grokbook.experiments import train_run

    history = train_run(run_settings(cell), cell["seed"], progress=False).history
    return _row(cell, history, history.seconds, 1)


def run_stack(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Train ``cells`` (equal but for :data:`STACKED`) as one stack on one thread and return
    their rows; each row's ``seconds`` is the stack's wall time shared out by steps."""
    from grokbook.experiments import train_stack
    from grokbook.train import one_thread

    with one_thread():  # where a member is its run alone to float32 rounding
        runs = train_stack([run_settings(c) for c in cells], [c["seed"] for c in cells],
                           progress=False)
    steps = [max(r.history.config.get("steps", r.history.epoch[-1]), 1) for r in runs]
    return [_row(c, r.history, r.history.seconds * s / sum(steps), len(cells))
            for c, r, s in zip(cells, runs, steps)]


def _run_batch(run: Callable[[Mapping[str, Any]], dict[str, Any]],
               batch: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [run(batch[0])] if len(batch) == 1 else run_stack(batch)


def batches(todo: Sequence[Mapping[str, Any]], stack: int | str = "auto",
            processes: int = 1) -> list[list[Mapping[str, Any]]]:
    """``todo`` in the units a sweep trains: stacks of cells equal but for :data:`STACKED`,
    ``stack`` cells at most (``"auto"``: the size :func:`grokbook.engine.stack_size`
    measures for the model, never leaving one of ``processes`` idle), or one cell each."""
    from grokbook import engine

    if stack != "auto" and (isinstance(stack, bool) or not isinstance(stack, int) or stack < 1):
        raise ValueError(f"stack must be 'auto' or a positive integer, got {stack!r}")
    if stack == 1:
        return [[cell] for cell in todo]
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for cell in todo:
        groups.setdefault(tuple(v for k, v in cell.items() if k not in STACKED), []).append(cell)
    out = []
    for signature, group in groups.items():
        if stack == "auto":
            from grokbook.experiments import build_model, make_data

            cfg = run_settings(group[0])
            size = engine.stack_size(("sweep", signature), lambda i, cfg=cfg: build_model(cfg, i),
                                     make_data(cfg.data, 0), len(group), processes)
        else:
            size = stack
        out += [[group[i] for i in members] for members in engine.plan(len(group), size)]
    return out


def _key(row: Mapping[str, Any]) -> tuple:
    """A cell's settings as typed values: a row read back from the CSV (``1`` for 1.0) and the
    cell it came from compare equal."""
    return tuple(AXES[name][0](row[name]) if name in AXES else int(row[name])
                 for name in SETTINGS)


def read(path: str | Path) -> pd.DataFrame:
    """A sweep table, validated (its columns); an empty table when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    table = pd.read_csv(path, comment="#", keep_default_na=False)
    if "stack" not in table.columns:  # a table from before stacks: every cell trained alone
        table["stack"] = 1
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a sweep table, columns {sorted(missing)} are missing")
    return table[list(COLUMNS)]


def write(rows: list[Mapping[str, Any]], path: str | Path, command: str) -> Path:
    """The rows as a CSV, sorted by settings, ``# made by: command`` on top, atomically."""
    table = pd.DataFrame(rows, columns=COLUMNS).sort_values(list(SETTINGS), kind="stable")
    text = io.StringIO()
    text.write(f"# grokbook sweep table (see grokbook.grids)\n# made by: {command}\n")
    table.to_csv(text, index=False, float_format="%.6g")
    return atomic_write_bytes(path, text.getvalue().encode())


def sweep(grid: Mapping[str, list], path: str | Path, *, command: str = "grokbook sweep",
          workers: int | None = None, scheduler: str | None = None,
          progress: bool | None = None,
          run: Callable[[Mapping[str, Any]], dict[str, Any]] = run_cell,
          stack: int | str = "auto") -> dict[str, Any]:
    """Run every cell of ``grid`` that the table at ``path`` does not hold yet, saving the
    table as each cell (or stack) finishes. Returns ``{"table", "trained", "failed"}``: the
    final table, how many cells were trained now and the failures
    (:class:`grokbook.sweep.CellError`, one per failed cell or stack; ``"failed_cells"``
    counts the cells). ``stack``: see :func:`batches`; ``"auto"`` stacks on this machine's
    Dask workers only (``workers=0`` trains in this process and a ``scheduler``'s cluster
    has workers the engine cannot measure: one cell at a time there, unless ``stack`` is a
    number), and a custom ``run`` trains one cell at a time."""
    from functools import partial

    from grokbook.sweep import CellError, check_options, default_workers, map_cells

    check_options(workers, scheduler)

    todo_all = cells(grid)
    table = read(path)
    rows = [{k: ("" if pd.isna(v) else v) for k, v in r.items()}
            for r in table.to_dict("records")]
    done = {_key(r) for r in rows}
    todo = [c for c in todo_all if _key(c) not in done]
    failed: list[CellError] = []

    def save(batch: Any, result: Any) -> None:
        if isinstance(result, CellError):
            failed.append(result)
            return
        rows.extend(result)
        write(rows, path, command)

    if run is not run_cell or stack == "auto" and (workers == 0 or scheduler is not None):
        stack = 1
    processes = workers or default_workers()
    units = batches(todo, stack, processes)
    map_cells(partial(_run_batch, run), units, workers=workers, scheduler=scheduler,
              progress=progress, desc="sweep stacks", on_result=save)
    if not Path(path).exists():
        write(rows, path, command)
    lost = sum(len(f.cell) for f in failed)
    return {"table": read(path), "trained": len(todo) - lost, "failed": failed,
            "failed_cells": lost}
