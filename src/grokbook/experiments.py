"""The recipes the chapters share, written once, every run through the run cache.

Settings in, runs out: each recipe takes typed settings (``grokbook.config``) and seeds and
returns :class:`Run` objects (a History, the trained model, the settings, the seed, the cache
key). Chapters, widgets, the command line and the tests call these; nothing re-implements them.

- :func:`train_run`: one run of a :class:`~grokbook.config.RunCfg` from one seed (load or train);
- :func:`train_stack`: several runs of one architecture as one vectorized ensemble;
- :func:`grid`: a run per cell of a grid of settings, the runs side by side;
- :class:`GrokTransfer` and :func:`race`: methods side by side on the same seeds (plain
  training, GrokFast, GrokTransfer with its weak model), the heart of chapters 4 and 5, their
  runs trained side by side on the cores (:func:`run_all`);
- :func:`merged_transfer`: GrokTransfer whose ``A @ B`` becomes one matrix mid-training;
- :func:`progress_run`: a run with every progress measure on its time axis (chapter 7);
  :class:`Traced` and :class:`Merged` make these two methods that :func:`race` runs side by
  side.

Every single run trains on one thread (``grokbook.train.one_thread``), so that its numbers do not
depend on the machine's core count; independent runs share the cores as processes of their own
(``grokbook.engine``). A stack trains on the caller's threads.

Seeds: a run's seed draws its data split and its initialisation (the same seed, the same
split), as everywhere in the book; for a NeuralGrok run (``RunCfg.grad_transform`` a
``NeuralGrokCfg``) also the outer split taken out of the training set and the amplifier's
initialisation (:func:`make_transform`).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from grokbook import cache, transfer
from grokbook.checks import check_seed
from grokbook.config import (
    CoverageCfg,
    DigitsCfg,
    FNNCfg,
    GrokFastCfg,
    ModularCfg,
    ParityCfg,
    PolygonCfg,
    ResNetCfg,
    RunCfg,
    TransformerCfg,
    VectorFNNCfg,
    fingerprint,
    replace,
    to_dict,
)
from grokbook.embeddings import make_table
from grokbook.history import History
from grokbook.images import polygon_counting
from grokbook.measures import (
    NTKChange,
    ProgressMeasures,
    embedding_rows,
    fourier_spectrum,
    frequency_plane,
    key_frequencies,
    noise_to_signal,
    seconds_to,
)
from grokbook.models import (
    FixedEmbedding,
    SmallResNet,
    TransferredNet,
    TwoLayerReLU,
    VectorFNN,
    make_model,
)
from grokbook.neuralgrok import NeuralGrokCfg
from grokbook.stats import Censored
from grokbook.tasks import (
    DIGIT_CLASSES,
    DIGIT_PIXELS,
    coverage_split,
    digits,
    modular_arithmetic,
    sparse_parity,
    xor_cluster,
)
from grokbook.train import on_one_thread, one_thread, train


@dataclass
class Run:
    """One finished run: its settings, seed, History and trained model; ``key`` is its run-cache
    key, ``cached`` says whether it was loaded rather than trained; ``weak`` is the weak run a
    GrokTransfer target started from (None otherwise)."""

    cfg: RunCfg
    seed: int
    history: History
    model: nn.Module
    key: str
    cached: bool = False
    weak: Run | None = None

    @property
    def cost_seconds(self) -> float | None:
        """Wall time to 95% test accuracy, the weak model's whole run included (GrokTransfer
        pays for it); None if the run never got there."""
        seconds = seconds_to(self.history)
        if seconds is None:
            return None
        return seconds + (self.weak.history.seconds if self.weak is not None else 0.0)


def cost(runs: Sequence[Run]) -> Censored:
    """Seconds to 95% test accuracy per run, the weak model included (:attr:`Run.cost_seconds`),
    censored at the run's whole wall time when it never got there."""
    return Censored(tuple(r.cost_seconds for r in runs),
                    tuple(r.history.seconds + (r.weak.history.seconds if r.weak else 0.0)
                          for r in runs))


CHECKPOINT_SECONDS = 30.0  # a cached run also checkpoints this often while it trains


# ---- data and models from settings ----------------------------------------------------------

def make_data(cfg: ModularCfg | CoverageCfg | ParityCfg | DigitsCfg | PolygonCfg, seed: int):
    """The data set of ``cfg``, split (or sampled) from ``seed``."""
    if isinstance(cfg, DigitsCfg):
        return digits(cfg.n_train, cfg.n_test, seed=seed)
    if isinstance(cfg, PolygonCfg):
        return polygon_counting(cfg.max_sides, cfg.cell, cfg.frac, seed=seed)
    if isinstance(cfg, CoverageCfg):
        return coverage_split(cfg.op, cfg.p, cfg.frac, cfg.holdout, cfg.k, seed=seed)
    if isinstance(cfg, ModularCfg):
        return modular_arithmetic(cfg.op, cfg.p, cfg.frac, seed=seed)
    return sparse_parity(cfg.n_bits, cfg.k, cfg.n_train, cfg.n_test, seed=seed)


def build_model(cfg: RunCfg, seed: int, a: torch.Tensor | None = None,
                freeze_a: bool = False) -> nn.Module:
    """The model of ``cfg`` initialised from ``seed``; given a weak embedding ``a``, the
    GrokTransfer target whose embedding is ``A @ B`` (``grokbook.transfer``)."""
    m, data = cfg.model, cfg.data
    if isinstance(m, ResNetCfg):
        if a is not None:
            raise ValueError("GrokTransfer has no target for pictures: a ResNetCfg run starts "
                             "from its own initialisation (a must be None)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return SmallResNet(4 * data.max_sides + 1, width=m.width, init_scale=m.init_scale)
    if isinstance(m, VectorFNNCfg):
        options = {"d_embed": m.d_embed, "width": m.width, "depth": m.depth,
                   "init_scale": m.init_scale}
        d_in, n_outputs = ((DIGIT_PIXELS, DIGIT_CLASSES) if isinstance(data, DigitsCfg)
                           else (data.n_bits, 1))
        if a is not None:
            return transfer.vector_target(a, n_outputs, seed=seed, d_in=d_in, freeze_a=freeze_a,
                                          **options)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return VectorFNN(d_in, n_outputs, **options)
    vocab, classes = data.p, data.p
    if isinstance(data, CoverageCfg):
        if a is not None:
            raise ValueError("a GrokTransfer target cannot start on a coverage split")
        vocab = 2 * data.p  # the operands have separate tokens
    if isinstance(m, TransformerCfg):
        options = {"d_model": m.d_model, "n_heads": m.n_heads, "d_mlp": m.d_mlp,
                   "n_layers": m.n_layers, "init_scale": m.init_scale}
        if a is not None:
            return transfer.transformer_target(a, vocab, seed=seed, vocab_size=vocab,
                                               freeze_a=freeze_a, **options)
        return make_model("transformer", vocab, classes, seed=seed, **options)
    options = {"width": m.width, "depth": m.depth, "init_scale": m.init_scale}
    if a is not None:
        return transfer.fnn_target(a, vocab, seed=seed, vocab_size=vocab, freeze_a=freeze_a,
                                   d_embed=m.d_embed, **options)
    if m.embedding != "learned":
        return make_model("fnn", vocab, classes, seed=seed,
                          embedding=FixedEmbedding(make_table(m.embedding, vocab)), **options)
    return make_model("fnn", vocab, classes, seed=seed, d_embed=m.d_embed, **options)


def train_options(cfg: RunCfg) -> dict[str, Any]:
    """The keyword arguments of :func:`grokbook.train.train` that ``cfg`` sets."""
    o, b = cfg.optim, cfg.budget
    return {"epochs": b.epochs, "eval_every": b.eval_every, "stop_acc": b.stop_acc,
            "stop_patience": b.stop_patience, "lr": o.lr, "weight_decay": o.weight_decay,
            "betas": tuple(o.betas), "warmup_steps": o.warmup_steps, "loss": cfg.loss}


def make_transform(cfg: RunCfg, data, seed: int) -> tuple[Any, Any]:
    """``(training data, transform)`` of a run of ``cfg`` on ``data`` from ``seed``: the data
    as they are and the transform of ``cfg.grad_transform`` (None: no transform); for NeuralGrok
    the inner part of the training set and a transform holding the outer part, both drawn from
    ``seed`` (``NeuralGrokCfg.build``; the test set is the task's)."""
    settings = cfg.grad_transform
    if settings is None:
        return data, None
    if isinstance(settings, NeuralGrokCfg):
        return settings.build(data, seed, cfg.loss)
    return data, settings.build()


def _fit(cfg: RunCfg, model: nn.Module, data, desc: str, progress: bool | None,
         callback: Callable[[History], Any] | None, run_key: str | None = None,
         seed: int = 0) -> History:
    data, transform = make_transform(cfg, data, seed)  # before anything else: a bad split fails
    options = train_options(cfg)
    state = cache.checkpoint_path(run_key) if run_key is not None else None
    if state is not None:  # an interrupted run resumes from here next time, bit for bit
        options.update(checkpoint=state, checkpoint_seconds=CHECKPOINT_SECONDS, resume=True)
    if cfg.optim.optimizer == "sgd":  # coupled weight decay, no momentum: the theory's
        options["optimizer"] = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr,
                                               weight_decay=cfg.optim.weight_decay)
    measures = {}
    if cfg.ntk_probe:
        measures["ntk_change"] = NTKChange(data.x_test[:cfg.ntk_probe], data.n_classes,
                                           relative=True)
    return train(model, data, grad_transform=transform, measures=measures or None,
                 callback=callback, progress=progress, desc=desc, **options)


# ---- one run, many runs ---------------------------------------------------------------------

@dataclass(frozen=True)
class Start:
    """How a GrokTransfer target starts: from the weak run ``source``'s embedding A (or, as the
    control, a random matrix of A's shape and norm), ``A`` trained or frozen."""

    source: Run
    control: str = "weak"
    freeze_a: bool = False

    def __post_init__(self):
        if self.control not in ("weak", "random"):
            raise ValueError(f"control must be 'weak' or 'random', got {self.control!r}")

    def embedding(self, seed: int) -> torch.Tensor:
        a = transfer.weak_embedding(self.source.model)
        return transfer.random_like(a, seed=seed) if self.control == "random" else a

    def spec(self) -> dict[str, Any]:
        return {"from": self.source.key, "control": self.control, "freeze_a": self.freeze_a}


def _spec(cfg: RunCfg, seed: int, start: Start | None, engine: str, **more) -> dict[str, Any]:
    return {"run": to_dict(cfg), "seed": seed, "start": start.spec() if start else None,
            "engine": engine, **more}


def _restore(model: nn.Module, state: dict[str, torch.Tensor] | None) -> nn.Module:
    if state is None:
        raise ValueError("the cached run has no model tensors")
    model.load_state_dict(state)
    return model


@on_one_thread
def train_run(cfg: RunCfg, seed: int, *, start: Start | None = None, desc: str | None = None,
              progress: bool | None = None,
              callback: Callable[[History], Any] | None = None) -> Run:
    """One run of ``cfg`` from ``seed``, on one thread (``train.one_thread``): loaded from the run
    cache when it is there, else trained (and stored). ``start``: a GrokTransfer target's weak
    source (see :class:`Start`). ``callback`` is called after each evaluation (live widgets);
    on a cache hit, once."""
    if not isinstance(cfg, RunCfg):
        raise ValueError(f"cfg must be a RunCfg, got {type(cfg).__name__}")
    spec = _spec(cfg, seed, start, "single")
    run_key = cache.key(spec)
    found = _load_run(cfg, seed, start, run_key)
    if found is not None:
        if callback is not None:
            callback(found.history)
        return found
    a = start.embedding(seed) if start is not None else None
    freeze = start.freeze_a if start is not None else False
    weak = start.source if start is not None else None
    model = build_model(cfg, seed, a, freeze)
    history = _fit(cfg, model, make_data(cfg.data, seed), desc or f"seed {seed}", progress,
                   callback, run_key, seed)
    cache.store(run_key, history, model.state_dict(), spec)
    return Run(cfg, seed, history, model, run_key, weak=weak)


def _load_run(cfg: RunCfg, seed: int, start: Start | None,
              run_key: str | None = None) -> Run | None:
    """:func:`train_run`'s run if the run cache holds it, else None (nothing trained);
    ``run_key``: its key, if the caller has it already."""
    if run_key is None:
        run_key = cache.key(_spec(cfg, seed, start, "single"))
    entry = cache.load(run_key)
    if entry is None:
        return None
    a = start.embedding(seed) if start is not None else None
    freeze = start.freeze_a if start is not None else False
    model = _restore(build_model(cfg, seed, a, freeze), entry.state)
    return Run(cfg, seed, entry.history, model, run_key, cached=True,
               weak=start.source if start is not None else None)


KEY_SHARE = 0.8  # key frequencies: the fewest holding this share of the final embedding's power


def key_frequencies_of(model: nn.Module, p: int, share: float = KEY_SHARE) -> list[int]:
    """The key frequencies of a trained model: the fewest that hold ``share`` of its token
    embedding's Fourier power (``grokbook.measures.key_frequencies``), strongest first."""
    return key_frequencies(fourier_spectrum(embedding_rows(model, p)), share)


@on_one_thread
def progress_run(cfg: RunCfg, seed: int, *, share: float = KEY_SHARE, desc: str | None = None,
                 progress: bool | None = None) -> Run:
    """One run of ``cfg`` from ``seed`` with every progress measure on its time axis: the
    History's extras hold :data:`~grokbook.measures.PROGRESS_MEASURES` at each evaluation, and
    ``circle_x_a``, ``circle_y_a``: token ``a``'s embedding in the plane of the strongest key
    frequency (``grokbook.measures.frequency_plane``), for pictures of the circle forming.

    Nanda et al.'s restricted and excluded losses need the key frequencies, which only the
    trained model shows: the run keeps a copy of the model at each evaluation and measures them
    all once it has finished, with the key frequencies of its final embedding
    (:func:`key_frequencies_of`). Cached like every run; not resumable mid-way (the copies
    live in memory)."""
    spec = _progress_spec(cfg, seed, share)

    def fit(model: nn.Module) -> History:
        data = make_data(cfg.data, seed)
        copies: list[dict[str, torch.Tensor]] = []

        def keep(m: nn.Module) -> float:
            copies.append({k: v.detach().clone() for k, v in m.state_dict().items()})
            return float(len(copies) - 1)

        history = train(model, data, measures={"copy": keep}, progress=progress,
                        desc=desc or f"seed {seed}", **train_options(cfg))
        history.extras.pop("copy")
        p = cfg.data.p
        freqs = key_frequencies_of(model, p, share)
        measure = ProgressMeasures(data, freqs)
        scratch = build_model(cfg, seed)
        columns: dict[str, list[float]] = {}
        for state in copies:
            scratch.load_state_dict(state)
            values = measure(scratch)
            plane = frequency_plane(embedding_rows(scratch, p), freqs[0])
            values.update({f"circle_x_{a}": float(plane[a, 0]) for a in range(p)})
            values.update({f"circle_y_{a}": float(plane[a, 1]) for a in range(p)})
            for name, value in values.items():
                columns.setdefault(name, []).append(value)
        history.extras.update(columns)
        return history

    hit: list[bool] = []
    model, history = _cached(spec, lambda: build_model(cfg, seed), fit,
                             on_hit=lambda _history: hit.append(True))
    return Run(cfg, seed, history, model, cache.key(spec), cached=bool(hit))


def _progress_spec(cfg: RunCfg, seed: int, share: float) -> dict[str, Any]:
    if not isinstance(cfg, RunCfg) or not isinstance(cfg.data, ModularCfg) \
            or isinstance(cfg.model, FNNCfg) and cfg.model.embedding != "learned":
        raise ValueError("cfg must be a RunCfg of a modular task with a learned embedding")
    return _spec(cfg, seed, None, "progress", share=share)


def _stackable(cfgs: Sequence[RunCfg]) -> bool:
    """Whether ``cfgs`` can train as one stack: FNNs (learned embedding) or Transformers of one
    shape on one modular task and training-set size, with AdamW, one budget and loss, and either
    no gradient transform or GrokFast filters that differ at most in lambda."""
    first = cfgs[0]
    same = ("budget", "loss")

    def shape(c: RunCfg) -> tuple:
        m = c.model
        if isinstance(m, FNNCfg):
            return ("fnn", m.embedding, m.d_embed, m.width, m.depth)
        return ("transformer", m.d_model, m.n_heads, m.d_mlp, m.n_layers)

    def transform(c: RunCfg) -> tuple | None:
        t = c.grad_transform
        return None if t is None else (type(t).__name__, getattr(t, "filter", None),
                                       getattr(t, "alpha", None), getattr(t, "window", None))

    return all(
        (isinstance(c.model, TransformerCfg)
         or isinstance(c.model, FNNCfg) and c.model.embedding == "learned")
        and shape(c) == shape(first)
        and type(c.data) is ModularCfg and not c.ntk_probe
        and (c.grad_transform is None or isinstance(c.grad_transform, GrokFastCfg))
        and transform(c) == transform(first)
        and c.loss == "cross_entropy" and c.optim.optimizer == "adamw"
        and c.optim.betas == first.optim.betas and c.optim.warmup_steps == first.optim.warmup_steps
        and all(getattr(c, s) == getattr(first, s) for s in same)
        and c.data.p == first.data.p
        and round(c.data.frac * c.data.p ** 2) == round(first.data.frac * first.data.p ** 2)
        for c in cfgs)


def _stack_transform(cfgs: Sequence[RunCfg]):
    """One GrokFast filter for a whole stack (lambda per member), or None."""
    from grokbook.accelerators import GrokFastEMA, GrokFastMA

    settings = cfgs[0].grad_transform
    if settings is None:
        return None
    lambdas = [c.grad_transform.lamb for c in cfgs]
    if settings.filter == "ema":
        return GrokFastEMA(settings.alpha, lambdas)
    return GrokFastMA(settings.window, lambdas)


def train_stack(cfgs: Sequence[RunCfg], seeds: Sequence[int], *, desc: str = "stack",
                progress: bool | None = None) -> list[Run]:
    """Runs ``cfgs[i]`` from ``seeds[i]`` as one vectorized stack (members may differ in seed,
    data split, learning rate, weight decay, init scale and GrokFast lambda; see
    ``grokbook.ensemble``). Settings a stack cannot share fall back to :func:`train_run` one by
    one. Cached as a whole: when every member is in the cache they are loaded, else all are
    trained together, so a stack's numbers never depend on what happened to be cached. A stack
    trains on the caller's threads (its batched products gain from every one), and the thread
    count and the whole stack are in each member's key; on one thread a member's numbers are
    its run alone's to float32 rounding (to the bit on some CPUs, ``grokbook.engine``), on
    more threads they can differ in the last bits on any CPU."""
    cfgs, seeds = list(cfgs), list(seeds)
    if len(cfgs) != len(seeds) or not cfgs:
        raise ValueError(f"cfgs and seeds must be non-empty and of equal length, got "
                         f"{len(cfgs)} and {len(seeds)}")
    if not _stackable(cfgs):
        return [train_run(c, s, desc=f"{desc} seed {s}", progress=progress)
                for c, s in zip(cfgs, seeds)]
    # A member is keyed by its whole stack: on some CPUs a stack rounds otherwise than its
    # runs alone (grokbook.engine), so a member is served only to the stack that made it.
    together = fingerprint([{"run": to_dict(c), "seed": s} for c, s in zip(cfgs, seeds)])
    specs = [_spec(c, s, None, "stack", stack=together) for c, s in zip(cfgs, seeds)]
    keys = [cache.key(spec) for spec in specs]
    entries = [cache.load(k) for k in keys]
    models = [build_model(c, s) for c, s in zip(cfgs, seeds)]
    if all(e is not None for e in entries):
        return [Run(c, s, e.history, _restore(m, e.state), k, cached=True)
                for c, s, e, m, k in zip(cfgs, seeds, entries, models, keys)]
    options = train_options(cfgs[0])
    options["lr"] = [c.optim.lr for c in cfgs]
    options["weight_decay"] = [c.optim.weight_decay for c in cfgs]
    datas = [make_data(c.data, s) for c, s in zip(cfgs, seeds)]
    histories = train(models, datas, grad_transform=_stack_transform(cfgs), progress=progress,
                      desc=desc, **options)
    runs = []
    for c, s, h, m, k, spec in zip(cfgs, seeds, histories, models, keys, specs):
        cache.store(k, h, m.state_dict(), spec)
        runs.append(Run(c, s, h, m, k))
    return runs


def grid(base: RunCfg, axes: dict[str, Sequence[Any]], seeds: Sequence[int] = (0,), *,
         desc: str = "grid", progress: bool | None = None,
         workers: int | None = None) -> dict[tuple, list[Run]]:
    """A run per cell of the grid ``axes`` (``{"optim__weight_decay": [...], "data__frac":
    [...]}``, fields as in :func:`grokbook.config.replace`) and per seed: ``{cell: [Run per
    seed]}``, cells as tuples of the axes' values in order.

    Each run is :func:`train_run`'s, alone on one thread, the runs side by side on the cores
    (:func:`run_all`; ``workers`` as there). Not stacks: a grid's cells stop at different
    epochs (a weight decay of 0 may never generalize, 3 soon), the members that stop leave a
    stack, and it ends as one long member on the caller's threads, while side by side both
    cores stay busy (chapter 1's weight decay x fraction grid: 130 s as stacks on two
    threads, 25 s side by side, the same epochs, measured 2026-12-06); and a run on one
    thread is the same whatever the machine's core count."""
    if not axes:
        raise ValueError("axes must name at least one field to vary")
    names = list(axes)
    cells: list[tuple] = [()]
    for name in names:
        values = list(axes[name])
        if not values:
            raise ValueError(f"axis {name!r} has no values")
        cells = [cell + (v,) for cell in cells for v in values]
    cfgs = {cell: replace(base, **dict(zip(names, cell))) for cell in cells}
    return race(cfgs, seeds, workers=workers, progress=progress, desc=desc)


# ---- GrokTransfer and the race ----------------------------------------------------------------

@dataclass(frozen=True)
class GrokTransfer:
    """GrokTransfer as a method: train ``weak`` (its budget's ``stop_acc`` is where the weak
    model stops), take its embedding A, train ``target`` from ``A @ B``. ``control="random"``
    replaces A by a random matrix of its shape and norm (the no-transfer control)."""

    weak: RunCfg
    target: RunCfg
    control: str = "weak"
    freeze_a: bool = False

    def run(self, seed: int, *, desc: str = "GrokTransfer", progress: bool | None = None,
            callback: Callable[[History], Any] | None = None) -> Run:
        weak = train_run(self.weak, seed, desc=f"weak model seed {seed}", progress=progress)
        start = Start(weak, self.control, self.freeze_a)
        return train_run(self.target, seed, start=start, desc=f"{desc} seed {seed}",
                         progress=progress, callback=callback)


@dataclass(frozen=True)
class Traced:
    """A run of ``cfg`` with every progress measure on its time axis (:func:`progress_run`), as
    a method: :func:`race` and :func:`run_all` train traced runs side by side."""

    cfg: RunCfg
    share: float = KEY_SHARE

    def __post_init__(self):
        _progress_spec(self.cfg, 0, self.share)  # a bad cfg is refused here, not in a worker
        if isinstance(self.share, bool) or not isinstance(self.share, (int, float)) \
                or not 0 < self.share <= 1:
            raise ValueError(f"share must be a number in (0, 1], got {self.share!r}")


@dataclass(frozen=True)
class Merged:
    """GrokTransfer whose ``A @ B`` is merged into one matrix after ``merge_at`` epochs
    (:func:`merged_transfer`), as a method: :func:`race` and :func:`run_all` train merged runs
    side by side."""

    method: GrokTransfer
    merge_at: int

    def __post_init__(self):
        if not isinstance(self.method, GrokTransfer):
            raise ValueError(f"method must be a GrokTransfer, got a {type(self.method).__name__}")
        _check_merge_at(self.merge_at, self.method.target)


def _check_merge_at(merge_at: int, target: RunCfg) -> None:
    if isinstance(merge_at, bool) or not isinstance(merge_at, int) \
            or not 0 < merge_at < target.budget.epochs:
        raise ValueError(f"merge_at must be an integer strictly between 0 and the target's "
                         f"epochs ({target.budget.epochs}), got {merge_at!r}")


Recipe = RunCfg | GrokTransfer
"""What the tuning grid, the regime map and the FLOP count take: a run or a GrokTransfer."""
Method = RunCfg | GrokTransfer | Traced | Merged
"""What :func:`race` and :func:`run_all` take."""
METHOD_KINDS = (RunCfg, GrokTransfer, Traced, Merged)


def run_method(method: Method, seed: int, *, desc: str = "", progress: bool | None = None,
               callback: Callable[[History], Any] | None = None) -> Run:
    """One run of a method: a :class:`~grokbook.config.RunCfg`, a :class:`GrokTransfer`, a
    :class:`Traced` or a :class:`Merged` run (these two without ``callback``; a merged run's
    progress bars name their part, not ``desc``)."""
    if isinstance(method, (Traced, Merged)) and callback is not None:
        raise ValueError(f"callback is not supported for a {type(method).__name__} run "
                         "(only for a RunCfg or a GrokTransfer)")
    if isinstance(method, GrokTransfer):
        return method.run(seed, desc=desc or "GrokTransfer", progress=progress,
                          callback=callback)
    if isinstance(method, Traced):
        return progress_run(method.cfg, seed, share=method.share,
                            desc=f"{desc or 'traced'} seed {seed}", progress=progress)
    if isinstance(method, Merged):
        return merged_transfer(method.method, seed, method.merge_at, progress=progress)
    return train_run(method, seed, desc=f"{desc} seed {seed}", progress=progress,
                     callback=callback)


def cached_run(method: Method, seed: int) -> Run | None:
    """:func:`run_method`'s run if the run cache holds all of it (for a GrokTransfer or a
    Merged run, the weak run and the target), else None; nothing is trained."""
    with one_thread():
        if isinstance(method, Traced):
            spec = _progress_spec(method.cfg, seed, method.share)
            found = _load(spec, lambda: build_model(method.cfg, seed))
            return None if found is None else Run(method.cfg, seed, found[1], found[0],
                                                  cache.key(spec), cached=True)
        recipe = _transfer_of(method)
        if recipe is not None:
            weak = _load_run(recipe.weak, seed, None)
            if weak is None:
                return None
            start = Start(weak, recipe.control, recipe.freeze_a)
            if isinstance(method, Merged):
                return _load_merged(recipe.target, seed, start, method.merge_at)
            return _load_run(recipe.target, seed, start)
        return _load_run(method, seed, None)


def _transfer_of(method: Method) -> GrokTransfer | None:
    """The GrokTransfer recipe of a GrokTransfer or Merged job, else None."""
    if isinstance(method, Merged):
        return method.method
    return method if isinstance(method, GrokTransfer) else None


def _budget(method: Method) -> int:
    """A job's epoch budget, the weak model's included: how long it may take."""
    recipe = _transfer_of(method)
    if recipe is not None:
        return recipe.weak.budget.epochs + recipe.target.budget.epochs
    return (method.cfg if isinstance(method, Traced) else method).budget.epochs


def _train_job(job: tuple[Method, int, str, tuple]) -> Run:
    method, seed, desc, held = job
    for run_key, history, state in held:  # finished in the parent: found here without disk
        cache.remember(run_key, history, state)
    return run_method(method, seed, desc=desc, progress=False)


def run_all(jobs: Sequence[tuple[Method, int, str]], *, workers: int | None = None,
            scheduler: str | None = None, progress: bool | None = None,
            desc: str = "runs") -> list[Run]:
    """``[run_method(method, seed) for method, seed, desc in jobs]``, each run alone on one
    thread as everywhere, the ones not in the run cache trained side by side: on ``workers``
    one-thread processes (default ``grokbook.engine.workers()``: one per core; 0 trains them
    one after another here) or on the Dask cluster at ``scheduler``
    (``grokbook.sweep.map_cells``). The result is the same run for run whichever way, only
    the time differs; a run's ``seconds`` are its own on its thread, with the other runs on the
    other cores. A run that fails is an error naming it. A GrokTransfer or Merged job whose
    weak run is found here (in memory or in the run cache) takes it to its worker, so that a
    worker does not train it again with the disk cache off."""
    from grokbook.engine import workers as default_workers
    from grokbook.sweep import CellError, check_options, map_cells

    check_options(workers, scheduler)
    jobs = list(jobs)
    runs: list[Run | None] = [cached_run(method, seed) for method, seed, _ in jobs]
    todo = [i for i, run in enumerate(runs) if run is None]
    processes = default_workers() if workers is None else workers
    if scheduler is None and (processes <= 1 or len(todo) <= 1):
        for i in todo:  # one at a time here: no process to start for it
            method, seed, name = jobs[i]
            try:
                runs[i] = run_method(method, seed, desc=name, progress=progress)
            except Exception as error:
                if hasattr(error, "add_note"):  # Python 3.11 and later
                    error.add_note(f"while training {name} seed {seed}")
                raise
        return runs
    todo.sort(key=lambda i: -_budget(jobs[i][0]))  # the longest first: the cores end together
    cells = []
    for i in todo:
        method, seed, name = jobs[i]
        recipe = _transfer_of(method)
        weak = None if recipe is None else cached_run(recipe.weak, seed)
        held = () if weak is None else ((weak.key, weak.history, weak.model.state_dict()),)
        cells.append((method, seed, name, held))
    trained = map_cells(_train_job, cells, workers=min(processes, len(todo)),
                        scheduler=scheduler, progress=progress, desc=desc)
    failed = []
    for i, run in zip(todo, trained):
        if isinstance(run, CellError):
            failed.append(f"{jobs[i][2]} seed {jobs[i][1]}: {run.error}")
            continue
        for part in (run, run.weak):
            if part is not None:  # kept even if another run failed: a re-run trains only that
                cache.remember(part.key, part.history, part.model.state_dict())
        runs[i] = run
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(todo)} runs failed; the first: {failed[0]}")
    return runs


def race(methods: dict[Any, Method], seeds: Sequence[int] | dict[Any, Sequence[int]], *,
         workers: int | None = None, progress: bool | None = None,
         desc: str | None = None) -> dict[Any, list[Run]]:
    """Every method on the same seeds: ``{name: [Run per seed]}``, the runs trained side by
    side (:func:`run_all`; ``workers`` as there). ``seeds``: one list for every method, or
    ``{name: seeds}``, a list per method (a control on seeds of its own), so that one race
    keeps the cores busy to its end. A GrokTransfer or Merged run keeps its weak run
    (``Run.weak``) so that costs include it. ``desc`` names the progress bar (default: the
    methods)."""
    if not isinstance(methods, dict) or not methods:
        raise ValueError("methods must map at least one name to a method")
    for name, method in methods.items():
        if not isinstance(method, METHOD_KINDS):
            raise ValueError(f"method {name!r} must be a RunCfg, a GrokTransfer, a Traced or a "
                             f"Merged run, got a {type(method).__name__}")
    if isinstance(seeds, dict):
        if set(seeds) != set(methods):
            raise ValueError(f"seeds, a dict, must have one entry per method: "
                             f"{sorted(map(str, methods))}, got {sorted(map(str, seeds))}")
        lists = {name: _seed_list(seeds[name]) for name in methods}
    else:
        lists = dict.fromkeys(methods, _seed_list(seeds))
    jobs = [(method, seed, str(name)) for name, method in methods.items()
            for seed in lists[name]]
    runs = iter(run_all(jobs, workers=workers, progress=progress,
                        desc=f"{len(jobs)} runs of {desc or ', '.join(map(str, methods))}"))
    return {name: [next(runs) for _ in lists[name]] for name in methods}


def _seed_list(seeds: Sequence[int]) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds must be a sequence of integers, got {seeds!r}")
    seeds = list(seeds)
    for seed in seeds:
        check_seed(seed)
    return seeds


@on_one_thread
def merged_transfer(method: GrokTransfer, seed: int, merge_at: int, *,
                    progress: bool | None = None) -> Run:
    """GrokTransfer whose ``A @ B`` is merged into one trainable matrix after ``merge_at``
    epochs (the paper's Fig. 15b ablation); AdamW restarts at the merge. The History covers
    both parts (``History.followed_by``); the target's budget is the whole run's. A gradient
    transform restarts at the merge too (a NeuralGrok target keeps its inner split, drawn from
    ``seed``, and starts a new amplifier)."""
    target = method.target
    _check_merge_at(merge_at, target)
    weak = train_run(method.weak, seed, desc=f"weak model seed {seed}", progress=progress)
    start = Start(weak, method.control, method.freeze_a)
    found = _load_merged(target, seed, start, merge_at)
    if found is not None:
        return found
    spec = _spec(target, seed, start, "single", merge_at=merge_at)
    model = build_model(target, seed, start.embedding(seed), start.freeze_a)
    data = make_data(target.data, seed)
    before = replace(target, budget__epochs=merge_at, budget__stop_acc=None)
    first = _fit(before, model, data, f"before merging, seed {seed}", progress, None,
                 seed=seed)
    after = replace(target, budget__epochs=target.budget.epochs - merge_at)
    rest = _fit(after, transfer.merge(model), data, f"merged, seed {seed}", progress, None,
                seed=seed)
    history = first.followed_by(rest)
    run_key = cache.key(spec)
    cache.store(run_key, history, model.state_dict(), spec)
    return Run(target, seed, history, model, run_key, weak=weak)


def _load_merged(target: RunCfg, seed: int, start: Start, merge_at: int) -> Run | None:
    """:func:`merged_transfer`'s target run from ``start`` if the run cache holds it."""
    spec = _spec(target, seed, start, "single", merge_at=merge_at)
    found = _load(spec, lambda: transfer.merge(
        build_model(target, seed, start.embedding(seed), start.freeze_a)))
    if found is None:
        return None
    return Run(target, seed, found[1], found[0], cache.key(spec), cached=True,
               weak=start.source)


# ---- the XOR theory (chapter 3) ---------------------------------------------------------------

@on_one_thread
def sgd_fit(model: nn.Module, data, epochs: int, lr: float, weight_decay: float = 0.0,
            eval_every: int = 10, **options) -> History:
    """Full-batch gradient descent on the logistic loss, as in the theory: plain SGD with
    PyTorch's (coupled) weight decay, ``theta <- (1 - lr * weight_decay) theta - lr * grad``.
    ``options`` go to :func:`grokbook.train.train` (``measures``, ``callback``, ``desc``...)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    return train(model, data, epochs=epochs, loss="logistic", optimizer=optimizer,
                 eval_every=eval_every, **options)


def one_step(target: nn.Module, data, step: float) -> History:
    """Theorem 3.2's experiment: ONE gradient step of size ``step`` on the target, no weight
    decay. The History holds the accuracies before (epoch 0) and after (epoch 1) the step."""
    return sgd_fit(target, data, epochs=1, lr=step, eval_every=1, progress=False)


@on_one_thread
def _cached(spec: dict[str, Any], build: Callable[[], nn.Module],
            fit: Callable[[nn.Module], History],
            on_hit: Callable[[History], Any] | None = None) -> tuple[nn.Module, History]:
    """Load-or-train for runs outside :func:`train_run`'s path (the XOR theory's networks, a
    :func:`progress_run`): ``spec`` (plain data) must decide the result; ``on_hit`` is called
    with a loaded History (a live widget's callback)."""
    found = _load(spec, build)
    if found is not None:
        if on_hit is not None:
            on_hit(found[1])
        return found
    model = build()
    history = fit(model)
    cache.store(cache.key(spec), history, model.state_dict(), spec)
    return model, history


def _load(spec: dict[str, Any], build: Callable[[], nn.Module]
          ) -> tuple[nn.Module, History] | None:
    """The model (``build()`` with the stored tensors) and History stored under ``spec``'s
    key, or None."""
    entry = cache.load(cache.key(spec))
    return None if entry is None else (_restore(build(), entry.state), entry.history)


def _xor_spec(kind: str, P, data, seed: int, **more) -> dict[str, Any]:
    return {"xor": kind, "data": {"n": len(data.y_train), "n_test": len(data.y_test),
                                  "p": data.p, "eps": data.eps, "seed": data.seed},
            "lr": P.lr, "weight_decay": P.weight_decay, "seed": seed, **more}


def xor_normal_run(P, data, *, seed: int = 0, callback: Callable[[History], Any] | None = None,
                   progress: bool | None = None) -> tuple[nn.Module, History]:
    """The wide two-layer ReLU network of profile ``P`` (``grokbook.profiles.xor``) trained
    normally on ``data``, recording the noise-to-signal ratio ``r_W``: the delayed run."""
    def fit(model):
        return sgd_fit(model, data, P.wide_epochs, P.lr, P.weight_decay, P.eval_every,
                       measures={"r_W": lambda m: noise_to_signal(m.hidden.weight)},
                       callback=callback, progress=progress, desc="wide network")
    spec = _xor_spec("wide", P, data, seed, net=P.wide, epochs=P.wide_epochs,
                     eval_every=P.eval_every)
    return _cached(spec, lambda: TwoLayerReLU(data.p, **P.wide, seed=seed), fit, callback)


def xor_weak_run(P, data, seed: int, epochs: int | None = None,
                 eval_every: int = 50) -> tuple[nn.Module, History]:
    """A weak three-neuron network of profile ``P`` trained on ``data`` from ``seed``."""
    epochs = epochs or P.weak_epochs
    spec = _xor_spec("weak", P, data, seed, net=P.weak, epochs=epochs, eval_every=eval_every)
    return _cached(spec, lambda: TwoLayerReLU(data.p, 3, **P.weak, seed=seed),
                   lambda model: sgd_fit(model, data, epochs, P.lr, P.weight_decay,
                                         eval_every=eval_every, progress=False))


def xor_transfer_step(P, weak_model: nn.Module, data, seed: int, step: float | None = None,
                      embedding: torch.Tensor | None = None) -> History:
    """Theorem 3.2's experiment: the wide target built on the weak model's first layer (or on
    ``embedding``) takes ONE gradient step of size ``step`` (default ``P.step``)."""
    weight = weak_model.hidden.weight.detach().T if embedding is None else embedding
    target = TransferredNet(weight, P.m, P.v_init, seed=seed)
    return one_step(target, data, P.step if step is None else step)


def xor_pick_step(P, weak_models: dict[int, nn.Module], data) -> tuple[float, dict[float, float]]:
    """Theorem 3.2's step size, chosen without the test set: one step of every weak model's
    target for each of ``P.step_sizes``, scored by the median accuracy over ``weak_models`` on a
    fresh validation sample of the same distribution (``P.n_val`` points, data seed
    ``P.data_seeds[2]``). Returns the best step (the smaller one on a tie) and every score."""
    if not weak_models:
        raise ValueError("weak_models is empty: pass at least one weak model to pick a step")
    sample = xor_cluster(1, P.n_val, P.p, P.eps, seed=P.data_seeds[2])
    validation = dataclasses.replace(data, x_test=sample.x_test, y_test=sample.y_test)
    scores = {step: statistics.median(
                  xor_transfer_step(P, model, validation, seed, step).test_acc[-1]
                  for seed, model in weak_models.items())
              for step in P.step_sizes}
    return max(P.step_sizes, key=lambda step: (scores[step], -step)), scores
