"""The ``grokbook`` command: train one model, execute a chapter of the book, benchmark.

    grokbook train --task add --p 97 --frac 0.3 --model fnn --epochs 3000
    grokbook train --task add --model transformer --wd 0.1 --grokfast ma
    grokbook train --task add --neuralgrok --ng-c 0.2 --ng-every 4
    grokbook transfer --task add --p 97 --frac 0.3
    grokbook run 1 --profile ci
    grokbook bench --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from grokbook import bench, cache, chapters, experiments, files, measures, profiles
from grokbook.accelerators import GrokFastEMA, GrokFastMA
from grokbook.checks import check_seed
from grokbook.config import (
    BudgetCfg,
    FNNCfg,
    ModularCfg,
    OptimCfg,
    RunCfg,
    replace,
    to_dict,
    validate,
)
from grokbook.models import MODELS, make_model
from grokbook.neuralgrok import NeuralGrokCfg
from grokbook.tasks import OPERATIONS, check_modular, modular_arithmetic
from grokbook.train import TrainingInterrupted, resolve_device, train

MODEL_DEFAULTS = {
    "fnn": {"d_embed": 32, "width": 128, "depth": 2},
    "transformer": {"d_model": 128, "n_heads": 4, "d_mlp": 512, "n_layers": 1},
}


DIVERGED = 3
INTERRUPTED = 130


def writable_folder(path: str | None) -> None:
    """Check, before any training, that ``--out`` can take the results: a folder (or one that
    can be made), not a file, writable."""
    if path is not None:
        files.writable_folder(path, "--out")


def _flag(flag: str, check, *args, **kwargs) -> None:
    """Run one check; its error names the command-line flag the user typed."""
    try:
        check(*args, **kwargs)
    except ValueError as error:
        raise ValueError(f"{flag}: {error}") from None


def _positive_or_none(name: str, value: int | None) -> None:
    if value is not None:
        validate(name, value, "eval_every")


def _check_train_args(args: argparse.Namespace) -> None:
    """Every setting checked before a table or a model is built, each error naming its flag."""
    _flag("--p", ModularCfg, p=args.p)
    _flag("--frac", ModularCfg, frac=args.frac)
    _flag("--task/--p", check_modular, args.task, args.p, args.frac, args.seed)
    _flag("--lr", OptimCfg, lr=args.lr)
    _flag("--wd", OptimCfg, weight_decay=args.wd)
    _flag("--epochs", BudgetCfg, epochs=args.epochs)
    _flag("--eval-every", BudgetCfg, eval_every=args.eval_every)
    _flag("--stop-acc", BudgetCfg, stop_acc=args.stop_acc)
    _flag("--init-scale", validate, "init_scale", args.init_scale)
    _flag("--batch-size", _positive_or_none, "batch_size", args.batch_size)
    _flag("--checkpoint-every", _positive_or_none, "checkpoint_every", args.checkpoint_every)
    _flag("--seed", check_seed, args.seed)
    _flag("--device", resolve_device, args.device)
    if args.neuralgrok and args.grokfast != "none":
        raise ValueError("--neuralgrok and --grokfast are two gradient transforms: give one")
    if not args.neuralgrok and (args.ng_c is not None or args.ng_every is not None):
        raise ValueError("--ng-c and --ng-every set NeuralGrok: give --neuralgrok with them")
    if args.neuralgrok:
        _flag("--ng-c", NeuralGrokCfg, c=0.2 if args.ng_c is None else args.ng_c)
        _flag("--ng-every", NeuralGrokCfg,
              meta_every=4 if args.ng_every is None else args.ng_every)
    writable_folder(args.out)
    state = Path(args.out) / "checkpoint.npz" if args.out else None
    if args.resume and (state is None or not state.exists()):
        raise ValueError("--resume needs --out naming the folder of an interrupted run "
                         f"(no checkpoint.npz in {args.out!r})")


def _train(args: argparse.Namespace) -> int:
    _check_train_args(args)
    data = modular_arithmetic(args.task, args.p, args.frac, seed=args.seed)
    options = dict(MODEL_DEFAULTS[args.model], init_scale=args.init_scale)
    model = make_model(args.model, data.vocab_size, data.n_classes, seed=args.seed, **options)
    filters = {"none": lambda: None, "ema": GrokFastEMA, "ma": GrokFastMA}
    transform = filters[args.grokfast]()
    described = "" if args.grokfast == "none" else f"; GrokFast-{args.grokfast.upper()}"
    if args.neuralgrok:  # trains on the inner split; the outer split feeds the meta step
        settings = _neuralgrok(args)
        full = len(data.y_train)
        try:
            data, transform = settings.build(data, args.seed)
        except ValueError as error:
            raise ValueError(f"--neuralgrok: {error}") from None
        described = (f"; NeuralGrok (c {settings.c}, T {settings.meta_every}): "
                     f"{len(data.y_train)} inner + {full - len(data.y_train)} outer examples")
    print(f"{data}; {args.model} {options}{described}")
    state = Path(args.out) / "checkpoint.npz" if args.out else None
    try:
        history = train(model, data, epochs=args.epochs, lr=args.lr, weight_decay=args.wd,
                        batch_size=args.batch_size, eval_every=args.eval_every,
                        stop_acc=args.stop_acc, seed=args.seed, device=args.device,
                        grad_transform=transform,
                        progress=not args.quiet, desc=f"{args.model} {args.task} mod {args.p}",
                        checkpoint=state, checkpoint_every=args.checkpoint_every,
                        checkpoint_seconds=None if args.checkpoint_every else 60.0,
                        resume=args.resume)
    except TrainingInterrupted as interrupted:
        epochs = interrupted.history.epoch
        print(f"grokbook: interrupted at epoch {epochs[-1] if epochs else 0}"
              + (f"; run the same command with --resume to continue from {state}"
                 if state is not None else "; give --out to keep a checkpoint"),
              file=sys.stderr)
        return INTERRUPTED
    if state is not None:
        state.unlink(missing_ok=True)
    history.config.update(task=args.task, p=args.p, frac=args.frac, model_options=options)
    if args.neuralgrok:
        history.config.update(neuralgrok=to_dict(_neuralgrok(args)))
    if history.stopped == "diverged":
        saved = _save(history, args)
        print(f"grokbook: error: training diverged at epoch {history.epoch[-1]} (a loss or "
              "weight stopped being finite, or the weights grew 1000-fold): lower --lr "
              f"(now {args.lr}) or --init-scale (now {args.init_scale})"
              + (f"; the history is saved in {saved}" if saved else ""), file=sys.stderr)
        return DIVERGED
    stats = measures.summary(history)
    rate = history.config["steps"] / history.seconds if history.seconds else float("nan")

    def epochs(value: int | None) -> str:
        return "not reached" if value is None else f"epoch {value}"

    print(f"95% train accuracy: {epochs(stats['epochs_to_train'])}")
    print(f"95% test accuracy:  {epochs(stats['epochs_to_test'])}")
    gap = stats["time_gap"]
    print(f"time gap:           {'unbounded (test never reached 95%)' if gap is None else gap}")
    print(f"final accuracy:     train {stats['final_train_acc']:.3f}, "
          f"test {stats['final_test_acc']:.3f}")
    print(f"wall time:          {history.seconds:.1f} s ({rate:.0f} steps/s)")
    saved = _save(history, args)
    if saved:
        print(f"history saved to {saved}")
    return 0


def _neuralgrok(args: argparse.Namespace) -> NeuralGrokCfg:
    """NeuralGrok's settings from the flags (the rest at NeuralGrokCfg's defaults)."""
    return NeuralGrokCfg(c=0.2 if args.ng_c is None else args.ng_c,
                         meta_every=4 if args.ng_every is None else args.ng_every)


def _save(history, args: argparse.Namespace):
    return history.save(Path(args.out) / "history.json") if args.out else None


def _transfer(args: argparse.Namespace) -> int:
    data = ModularCfg(args.task, args.p, args.frac)
    budget = BudgetCfg(args.epochs, eval_every=args.eval_every, stop_acc=0.99, stop_patience=5)
    target = RunCfg(data=data, model=FNNCfg(args.d_embed, args.width, args.depth),
                    optim=OptimCfg(lr=args.lr, weight_decay=args.wd), budget=budget)
    weak = RunCfg(data=data, model=FNNCfg(args.weak_d_embed, args.weak_width, depth=2),
                  optim=OptimCfg(lr=args.lr, weight_decay=args.weak_wd),
                  budget=BudgetCfg(args.weak_epochs, eval_every=args.eval_every,
                                   stop_acc=args.weak_stop_acc, stop_patience=1))
    scratch = replace(target, optim__weight_decay=args.scratch_wd)
    runs = experiments.race({"GrokTransfer": experiments.GrokTransfer(weak, target),
                             "scratch": scratch}, [args.seed], progress=not args.quiet)
    transferred, from_scratch = runs["GrokTransfer"][0], runs["scratch"][0]
    weak_run = transferred.weak.history
    print(f"{experiments.make_data(data, args.seed)}; target {target.model}")
    print(f"weak model (d_embed {args.weak_d_embed}, width {args.weak_width}): "
          f"{weak_run.epoch[-1]} epochs, test accuracy {weak_run.test_acc[-1]:.3f}, "
          f"{weak_run.seconds:.1f} s")
    for label, run in (("GrokTransfer", transferred), ("scratch", from_scratch)):
        print(f"{label:12s} {measures.describe(run.history)} | {run.history.seconds:.1f} s")
    total = weak_run.seconds + transferred.history.seconds
    print(f"wall time: weak + GrokTransfer {total:.1f} s, scratch "
          f"{from_scratch.history.seconds:.1f} s (same budget: {args.epochs} epochs each)")
    return 0


def _cache(args: argparse.Namespace) -> int:
    if args.action == "clear":
        print(f"removed {cache.clear()} cached runs")
        return 0
    status = cache.info()
    if status["location"] is None:
        print("the run cache is off (GROKBOOK_CACHE=off)")
    else:
        print(f"{status['location']}: {status['entries']} runs, "
              f"{status['bytes'] / 1e6:.1f} MB (code version {cache.code_version()})")
    return 0


def _run(args: argparse.Namespace) -> int:
    targets = chapters.list_chapters() if args.chapter == "all" else [args.chapter]
    for target in targets:
        output = None
        if not args.inplace:
            stem = chapters.find_chapter(str(target)).stem
            output = f"{args.output_dir}/{stem}.{profiles.resolve(args.profile)}.ipynb"
        path = chapters.execute(target, profile=args.profile, output=output,
                                progress=not args.quiet, cell_times=args.cell_times)
        print(f"executed {target} at profile {profiles.resolve(args.profile)} -> {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    bench.run(args.quick)
    return 0


def _tune(args: argparse.Namespace) -> int:
    from grokbook import tuning

    chosen = (tuple(args.profile or tuning.PROFILES), tuple(args.chapter or tuning.TUNED_CHAPTERS),
              tuple(args.task) if args.task else None)
    known = {cell.task for cell in tuning.cells(*chosen[:2])}
    unknown = sorted(set(chosen[2] or ()) - known)
    if unknown:
        raise SystemExit(f"--task: no tuning cells of {', '.join(unknown)} in the chosen "
                         f"chapters; tasks there: {', '.join(sorted(known))}")
    table = args.table or tuning.TABLE
    command = "grokbook tune " + " ".join(
        [f"--profile {p}" for p in chosen[0]] + [f"--chapter {c}" for c in chosen[1]]
        + [f"--task {t}" for t in chosen[2] or ()])
    done = tuning.tune(*chosen, path=table, workers=args.workers, scheduler=args.scheduler,
                       progress=not args.quiet, command=command)
    left = tuning.missing(done, *chosen)
    print(f"{table}: {len(tuning.cells(*chosen)) - len(left)} of {len(tuning.cells(*chosen))} "
          f"cells done")
    return 0 if not left else 1


def _made_by(command: str, profile: str, seed_offset: int) -> str:
    """The command line that re-makes a table: ``grokbook COMMAND --profile P`` and the seed
    offset where there is one."""
    return f"grokbook {command} --profile {profile}" + (
        f" --seed-offset {seed_offset}" if seed_offset else "")


def _shootout(args: argparse.Namespace) -> int:
    from grokbook import leaderboard
    from grokbook.profiles import shootout

    P = profiles.load("shootout", args.profile, args.seed_offset, tuned=not args.task)
    command = _made_by("shootout", P.name, args.seed_offset)
    if args.task:  # only these tasks, each method at its tuned setting there
        allowed = P.tasks if P.name == "paper" else shootout.ALL_TASKS
        unknown = sorted(set(args.task) - set(allowed))
        if unknown:
            raise SystemExit(f"--task: unknown tasks {', '.join(unknown)} at profile {P.name}; "
                             f"tasks: {', '.join(allowed)}")
        try:
            P = shootout.tuned(dataclasses.replace(P, tasks=tuple(dict.fromkeys(args.task))))
        except ValueError as error:  # a task whose tuning is not finished
            raise SystemExit(f"--task: {error}; finish it first with grokbook tune --profile "
                             f"book --chapter shootout " + " ".join(
                                 f"--task {t}" for t in args.task)) from error
        command += "".join(f" --task {t}" for t in P.tasks)
    table = leaderboard.shootout_table(P, workers=args.workers, scheduler=args.scheduler,
                                       progress=not args.quiet)
    machine = (f"the Dask cluster at {args.scheduler}" if args.scheduler
               else leaderboard.this_machine())
    out = leaderboard.write(table, args.out, command, machine)
    print(f"{out}: {len(table)} runs ({len(P.tasks)} tasks x "
          f"{table.method.nunique()} methods x {len(P.seeds)} seeds)")
    return 0


def _regime(args: argparse.Namespace) -> int:
    from grokbook import regime

    P = profiles.load("transfer", args.profile, args.seed_offset)
    reuse = regime.check_reusable(args.reuse, P.name) if args.reuse else None
    table = regime.regime_table(P, workers=args.workers, scheduler=args.scheduler,
                                progress=not args.quiet, reuse=reuse)
    command = _made_by("regime", P.name, args.seed_offset) + (
        f" --reuse {shlex.quote(args.reuse)}" if args.reuse else "")
    out = regime.write(table, args.out, command)
    cells = len(P.regime["ps"]) * len(P.regime["fracs"])
    print(f"{out}: {len(table)} runs ({cells} cells of p x train fraction, "
          f"{(table.role == 'reported').sum()} reported)")
    return 0


def _stack_option(text: str) -> int | str:
    """``--stack``: ``auto`` or a positive integer."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, got {text!r}")
    return value


def _sweep(args: argparse.Namespace) -> int:
    from grokbook import grids

    settings = grids.read_config(args.config) if args.config else {}
    for name in (*grids.AXES, "seeds"):
        value = getattr(args, name)
        if value is not None:  # a flag overrides the file
            settings[name] = value
    grid = grids.grid_of(settings)
    command = "grokbook sweep " + " ".join(
        f"--{name.replace('_', '-')} {','.join(map(str, values))}"
        for name, values in grid.items()) + (f" --stack {args.stack}" if args.stack != "auto"
                                             else "")
    writable_folder(str(Path(args.out).parent))
    result = grids.sweep(grid, args.out, command=command, workers=args.workers,
                         scheduler=args.scheduler, progress=not args.quiet, stack=args.stack)
    total = len(grids.cells(grid))
    kept = total - result["failed_cells"] - result["trained"]
    print(f"{args.out}: {total - result['failed_cells']} of {total} cells done "
          f"({result['trained']} trained now, {kept} already in the table)")
    for failure in result["failed"]:
        print(f"grokbook: failed: {failure}", file=sys.stderr)
    return 1 if result["failed"] else 0


def _add_table_options(parser: argparse.ArgumentParser, out: str) -> None:
    """A command that trains a profile's runs on Dask into one CSV table (``shootout``,
    ``regime``): ``--profile``, ``--seed-offset``, ``--out`` and the Dask options."""
    parser.add_argument("--profile", choices=["ci", "book", "paper"], default="book",
                        help="ci, book (default) or paper (for a GPU or a cluster)")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="shift every seed (default 0)")
    parser.add_argument("--out", default=out, help=f"the table (default: {out})")
    _add_dask_options(parser)


def _add_dask_options(command: argparse.ArgumentParser) -> None:
    """The options of a command whose cells run on Dask (``grokbook tune``, ``sweep``)."""
    command.add_argument("--workers", type=int, default=None,
                         help="Dask worker processes of one thread each (default: one per "
                              "core; 0: in this process)")
    command.add_argument("--scheduler", default=None,
                         help="address of an existing Dask scheduler, e.g. tcp://HOST:8786")
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grokbook", description="Grokking, reproduced: train models, run the book.")
    commands = parser.add_subparsers(dest="command", required=True)

    t = commands.add_parser("train", help="train one model on modular arithmetic",
                            description="Train one model on (a op b) mod p and print when it "
                                        "fits, when it generalizes, and the time gap.")
    t.add_argument("--task", default="add", choices=list(OPERATIONS),
                   help="the operation (default: add)")
    t.add_argument("--p", type=int, default=59, help="the modulus (default: 59)")
    t.add_argument("--frac", type=float, default=0.5,
                   help="fraction of the table used for training, in (0, 1) (default: 0.5)")
    t.add_argument("--model", default="fnn", choices=list(MODELS), help="default: fnn")
    t.add_argument("--lr", type=float, default=1e-2, help="AdamW learning rate (default: 1e-2)")
    t.add_argument("--wd", type=float, default=1.0, help="AdamW weight decay (default: 1.0)")
    t.add_argument("--init-scale", type=float, default=1.0,
                   help="multiplies PyTorch's default init (default: 1.0)")
    t.add_argument("--epochs", type=int, default=2000, help="full-batch epochs (default: 2000)")
    t.add_argument("--batch-size", type=int, default=None, help="default: full batch")
    t.add_argument("--grokfast", default="none", choices=["none", "ema", "ma"],
                   help="GrokFast gradient filter at its authors' defaults: ema (alpha 0.98, "
                        "lambda 2) or ma (window 100, lambda 5) (default: none)")
    t.add_argument("--neuralgrok", action="store_true",
                   help="NeuralGrok's learned gradient amplifier (grokbook.neuralgrok): trains "
                        "on the training set less an outer split of 1%% of the table, which "
                        "the amplifier's meta step uses")
    t.add_argument("--ng-c", type=float, default=None,
                   help="with --neuralgrok: the norm of each transformed gradient tensor "
                        "(default: 0.2)")
    t.add_argument("--ng-every", type=int, default=None,
                   help="with --neuralgrok: T, steps between meta steps (default: 4)")
    t.add_argument("--eval-every", type=int, default=10, help="default: 10")
    t.add_argument("--stop-acc", type=float, default=None,
                   help="stop once test accuracy reaches this (default: train all epochs)")
    t.add_argument("--seed", type=int, default=0, help="seeds the split and the init")
    t.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    t.add_argument("--out", default=None, help="folder to save the history to (JSON)")
    t.add_argument("--checkpoint-every", type=int, default=None,
                   help="with --out: save a checkpoint there every this many epochs (and on "
                        "Ctrl-C); default: every 60 s")
    t.add_argument("--resume", action="store_true",
                   help="continue from --out's checkpoint (the same settings as before)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(handler=_train)

    g = commands.add_parser(
        "transfer", help="GrokTransfer against scratch on modular arithmetic",
        description="Train a weak FNN, transfer its embedding A into a target FNN as A @ B, "
                    "and compare with the same target from scratch: weak accuracy, epochs "
                    "to 95%, time gap and wall time.")
    g.add_argument("--task", default="add", choices=list(OPERATIONS), help="default: add")
    g.add_argument("--p", type=int, default=59, help="the modulus (default: 59)")
    g.add_argument("--frac", type=float, default=0.5, help="train fraction (default: 0.5)")
    g.add_argument("--weak-d-embed", type=int, default=6,
                   help="default: 6 (with 4, weak models often learn one Fourier frequency, "
                        "which transfers badly: see chapter 4)")
    g.add_argument("--weak-width", type=int, default=16, help="default: 16")
    g.add_argument("--weak-epochs", type=int, default=5000,
                   help="most epochs for the weak model (default: 5000)")
    g.add_argument("--weak-stop-acc", type=float, default=0.5,
                   help="stop the weak model when its test accuracy first reaches this "
                        "(default: 0.5)")
    g.add_argument("--weak-wd", type=float, default=0.1, help="default: 0.1")
    g.add_argument("--d-embed", type=int, default=32, help="target d_T (default: 32)")
    g.add_argument("--width", type=int, default=128, help="target width (default: 128)")
    g.add_argument("--depth", type=int, default=3, help="target depth (default: 3)")
    g.add_argument("--lr", type=float, default=1e-2, help="AdamW lr, all runs (default: 1e-2)")
    g.add_argument("--wd", type=float, default=0.1,
                   help="weight decay of the GrokTransfer target (default: 0.1)")
    g.add_argument("--scratch-wd", type=float, default=1.0,
                   help="weight decay of the scratch target (default: 1.0)")
    g.add_argument("--epochs", type=int, default=2000, help="target budget (default: 2000)")
    g.add_argument("--eval-every", type=int, default=10, help="default: 10")
    g.add_argument("--seed", type=int, default=0, help="seeds split, inits and B")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.set_defaults(handler=_transfer)

    r = commands.add_parser("run", help="execute a chapter of the book with papermill",
                            description="Execute a chapter (or 'all') at a profile.")
    r.add_argument("chapter", help="number (1), name (grokking), path, or 'all'")
    r.add_argument("--profile", default=None, choices=profiles.PROFILE_NAMES,
                   help="ci, book or paper (default: $GROKBOOK_PROFILE, else book)")
    r.add_argument("--inplace", action="store_true",
                   help="write the executed chapter over the committed one (make book)")
    r.add_argument("--output-dir", default="_build/executed",
                   help="where executed copies go unless --inplace (default: _build/executed)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--cell-times", default=None, metavar="FILE",
                   help="append each code cell's seconds to this CSV file, for a chapter "
                        "that runs to its end (where does a chapter spend its time?)")
    r.set_defaults(handler=_run)

    c = commands.add_parser("cache", help="the run cache: where it is, how big; clear it")
    c.add_argument("action", choices=("info", "clear"), help="info: location and size; "
                   "clear: delete every cached run")
    c.set_defaults(handler=_cache)

    b = commands.add_parser("bench", help="benchmark the training engine on this machine",
                            description="Epochs/s, GFLOP/s and ensemble speed-ups "
                                        "(see grokbook.bench).")
    b.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    b.set_defaults(handler=_bench)

    u = commands.add_parser(
        "tune", help="tune every compared method on the same (lr, wd) grid (on Dask)",
        description="Train each method of chapters 4, 5, 6 and 8 on the grid lr x weight decay "
                    "from the tuning seeds and write the table the chapters read their "
                    "settings from (see grokbook.tuning). Cells already in the table are "
                    "skipped, so a killed run resumes.")
    u.add_argument("--profile", action="append", choices=["ci", "book"],
                   help="ci or book; repeat for both (default: both)")
    u.add_argument("--chapter", action="append",
                   choices=["transfer", "cross", "neuralgrok", "shootout"],
                   help="transfer (ch. 4), cross (ch. 5), neuralgrok (ch. 6) or shootout "
                        "(ch. 8); repeat (default: all)")
    u.add_argument("--task", action="append",
                   help="only this task of the chosen chapters (e.g. transformer_sub); "
                        "repeat (default: all)")
    u.add_argument("--table", default=None, help="the table to fill (default: the committed "
                   "src/grokbook/data/tuning.csv)")
    _add_dask_options(u)
    u.set_defaults(handler=_tune)

    o = commands.add_parser(
        "shootout", help="chapter 8's race: every method on every task and seed, into a CSV",
        description="Train every method of chapter 8 at its tuned setting on every task and "
                    "seed of a profile, through the run cache, on Dask, and write one row per "
                    "run (epochs, time gap, seconds and GFLOP to 95% test) to --out "
                    "(see grokbook.leaderboard).")
    _add_table_options(o, "shootout.csv")
    o.add_argument("--task", action="append",
                   help="race only this task (e.g. transformer_sub, once tuned); repeat "
                        "(default: the profile's tasks)")
    o.set_defaults(handler=_shootout)

    r = commands.add_parser(
        "regime", help="chapter 4's regime map: GrokTransfer against scratch over p and the "
                       "train fraction, into a CSV",
        description="In every cell of the profile's grid of primes x training fractions, "
                    "re-tune scratch training and GrokTransfer among their best settings of "
                    "chapter 4's tuning table (tuning seeds), then train each at its best "
                    "from the reported seeds, through the run cache, on Dask, and write one "
                    "row per run to --out (see grokbook.regime).")
    _add_table_options(r, "regime.csv")
    r.add_argument("--reuse", default=None,
                   help="an earlier map of the same profile: the tuning runs it holds are "
                        "taken from it, not trained again (e.g. after the tuning table "
                        "changed); the reported runs train again")
    r.set_defaults(handler=_regime)

    from grokbook.grids import AXES

    w = commands.add_parser(
        "sweep", help="a grid of runs (ranges or a YAML file) on Dask, into a CSV table",
        description="Train one run per combination of the settings' values and seed (chapter "
                    "1's FNN or Transformer), through the run cache, on Dask, and write one "
                    "row per run to --out. Cells already in the table are skipped, so a "
                    "killed sweep resumes. Each setting takes a value or comma-separated "
                    "values; see grokbook.grids.")
    for name, (kind, default) in AXES.items():
        w.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                       help=f"{kind.__name__} value(s) (default: {default})")
    w.add_argument("--seeds", default=None, help="e.g. 0-7 or 0,3,5 (default: 0)")
    w.add_argument("--config", default=None,
                   help="a YAML file of setting: value or [values]; flags override it")
    w.add_argument("--out", default="sweep.csv", help="the table (default: sweep.csv)")
    w.add_argument("--stack", type=_stack_option, default="auto",
                   help="cells trained together as one stack: auto (default: the size the "
                        "engine measures pays, on Dask workers) or a number; 1 trains and "
                        "times every cell alone")
    _add_dask_options(w)
    w.set_defaults(handler=_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"grokbook: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a folder gone: what failed, in one line
        print(f"grokbook: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupted:  # Ctrl-C outside `train` (which saves its own)
        kept = isinstance(interrupted, TrainingInterrupted) and cache.location() is not None
        print("grokbook: interrupted" + ("; the run cache keeps a checkpoint: the same command "
                                         "resumes from it" if kept else ""), file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
