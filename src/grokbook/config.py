"""Typed settings: what a run is, validated when it is built.

Every experiment of the book is described by frozen dataclasses: the data (:class:`ModularCfg`,
:class:`ParityCfg`, :class:`DigitsCfg`, :class:`PolygonCfg`), the model (:class:`FNNCfg`,
:class:`TransformerCfg`, :class:`VectorFNNCfg`, :class:`ResNetCfg`), the optimizer
(:class:`OptimCfg`), the epoch budget and stopping rule (:class:`BudgetCfg`), an optional gradient
transform (:class:`GrokFastCfg`; NeuralGrok's ``NeuralGrokCfg`` and ``TensorNormCfg``, defined in
``grokbook.neuralgrok``), and the run that holds them (:class:`RunCfg`). Each field is checked when
the object is built: a bad value is one ``ValueError`` naming the field, the value and what is
allowed; an unknown field is an error listing the known ones. Nothing is silently ignored or
clipped.

Settings are values: change one with :func:`replace` (``replace(cfg, lr=3e-3)`` or a nested
``replace(run, optim__lr=3e-3)``), serialize with :func:`to_dict` / :func:`from_dict`, and
:func:`fingerprint` gives the stable hash the run cache keys on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from grokbook.files import dumps

if TYPE_CHECKING:
    from grokbook.neuralgrok import NeuralGrokCfg, TensorNormCfg

Check = Callable[[Any], Any]  # returns the normalised value or raises ValueError(allowed)


class Invalid(ValueError):
    """A setting outside what is allowed."""


class _NestedInvalid(Invalid):
    """A bad field of nested settings given as a dict; its message already names the field."""


def _int(minimum: int = 1) -> Check:
    allowed = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}")

    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise Invalid(allowed)
        return value
    return check


def _real(low: float | None = None, high: float | None = None, low_open: bool = False,
          high_open: bool = False) -> Check:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"

    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise Invalid(f"a finite number in {span}")
        value = float(value)
        if low is not None and (value < low or (low_open and value == low)):
            raise Invalid(f"a finite number in {span}")
        if high is not None and (value > high or (high_open and value == high)):
            raise Invalid(f"a finite number in {span}")
        return value
    return check


def _choice(*options: str) -> Check:
    def check(value):
        if value not in options:
            raise Invalid(f"one of {', '.join(map(repr, options))}")
        return value
    return check


def _optional(inner: Check) -> Check:
    def check(value):
        return None if value is None else inner(value)
    return check


def _ints(minimum: int = 0) -> Check:
    item = _int(minimum)

    def check(value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise Invalid(f"a sequence of integers >= {minimum}")
        values = tuple(value)
        if not values:
            raise Invalid(f"a non-empty sequence of integers >= {minimum}")
        return tuple(item(v) for v in values)
    return check


def _reals(**bounds) -> Check:
    item = _real(**bounds)

    def check(value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or not len(value):
            raise Invalid("a non-empty sequence of numbers")
        return tuple(item(v) for v in value)
    return check


# The rules shared by the settings classes and the training loop (one validator for a single
# run and a stack): name -> check.
RULES: dict[str, Check] = {}


def validate(name: str, value: Any, rule: str | None = None) -> Any:
    """Check ``value`` against the rule ``rule`` (default: ``name``) of :data:`RULES`; a bad
    value is an :class:`Invalid` naming ``name``, the value and what is allowed."""
    try:
        return RULES[rule or name](value)
    except Invalid as error:
        raise Invalid(f"{name} must be {error}, got {value!r}") from None


def setting(default: Any = dataclasses.MISSING, check: Check | None = None, doc: str = ""):
    """A dataclass field with a validator (and, for docs, a one-line meaning)."""
    return field(default=default, metadata={"check": check, "doc": doc})


def _sub(cls: type) -> Check:
    def check(value):
        if isinstance(value, dict):
            return from_dict(value, cls)
        if not isinstance(value, cls):
            raise Invalid(f"a {cls.__name__}")
        return value
    return check


def _any_of(*classes: type) -> Check:
    def check(value):
        if isinstance(value, dict):
            return from_dict(value)
        if not isinstance(value, classes):
            raise Invalid(f"one of {', '.join(c.__name__ for c in classes)}")
        return value
    return check


RULES.update(lr=_real(0, 1e30, low_open=True), weight_decay=_real(0, None),
             beta=_real(0, 1, high_open=True), warmup_steps=_int(0), epochs=_int(0),
             eval_every=_int(1), stop_patience=_int(1),
             stop_acc=_optional(_real(0, 1, low_open=True)),
             init_scale=_real(0, None, low_open=True), alpha=_real(0, 1, high_open=True))


class Settings:
    """Base of every settings class: validates each field when built (see module doc)."""

    kind: ClassVar[str] = ""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is None:
                continue
            value = getattr(self, f.name)
            try:
                normalised = check(value)
            except _NestedInvalid as error:
                raise Invalid(f"{type(self).__name__}.{f.name}: {error}") from None
            except Invalid as error:
                raise Invalid(f"{type(self).__name__}.{f.name} must be {error}, "
                              f"got {value!r}") from None
            object.__setattr__(self, f.name, normalised)
        self.validate()

    def validate(self) -> None:
        """Checks that involve several fields (override)."""


KINDS: dict[str, type] = {}

# Settings classes defined outside this module (which imports none of them, to stay light):
# kind -> the module that registers it, imported when a dict of that kind is loaded.
ELSEWHERE: dict[str, str] = {"neuralgrok": "grokbook.neuralgrok",
                             "tensornorm": "grokbook.neuralgrok"}


def register(cls: type) -> type:
    """Make a settings class known to :func:`from_dict` under its ``kind``."""
    KINDS[cls.kind] = cls
    return cls


def _kind(kind: Any) -> type | None:
    """The settings class registered under ``kind`` (importing its module if need be)."""
    if isinstance(kind, str) and kind not in KINDS and kind in ELSEWHERE:
        import importlib
        importlib.import_module(ELSEWHERE[kind])
    return KINDS.get(kind) if isinstance(kind, str) else None


# ---- data -------------------------------------------------------------------------------

@register
@dataclass(frozen=True)
class ModularCfg(Settings):
    """The table of ``(a op b) mod p``, a fraction ``frac`` of it for training."""

    kind: ClassVar[str] = "modular"
    op: str = setting("add", None, "the operation (grokbook.tasks.OPERATIONS)")
    p: int = setting(97, _int(2), "the modulus")
    frac: float = setting(0.3, _real(0, 1, True, True), "the training fraction")

    def validate(self):
        from grokbook.tasks import OPERATIONS as known
        from grokbook.tasks import is_prime
        if self.op not in known:
            raise Invalid(f"ModularCfg.op must be one of {', '.join(map(repr, known))}, "
                          f"got {self.op!r}")
        if known[self.op].needs_prime and not is_prime(self.p):
            raise Invalid(f"ModularCfg.p must be prime for op {self.op!r}, got {self.p}")


@register
@dataclass(frozen=True)
class CoverageCfg(ModularCfg):
    """The table of ``(a op b) mod p`` with a region held out of training (Gu et al.'s data
    coverage experiments, ``grokbook.tasks.coverage_split``): ``"square"`` holds out every
    pair with ``a, b <= k``, ``"strip"`` every pair with ``a <= k``, ``"none"`` no pair (the
    control, with ``k`` 0); ``frac`` of the whole table is drawn for training from the rest.
    The operands have separate tokens."""

    kind: ClassVar[str] = "coverage"
    holdout: str = setting("square", _choice("none", "square", "strip"),
                           "the held-out region")
    k: int = setting(20, _int(0), "the held-out region's last operand value")

    def validate(self):
        super().validate()
        from grokbook.tasks import check_coverage
        try:
            check_coverage(self.op, self.p, self.frac, self.holdout, self.k)
        except ValueError as error:
            raise Invalid(f"CoverageCfg: {error}") from None


@register
@dataclass(frozen=True)
class ParityCfg(Settings):
    """(n_bits, k)-sparse parity with ``n_train`` training and ``n_test`` test points."""

    kind: ClassVar[str] = "parity"
    n_bits: int = setting(40, _int(1))
    k: int = setting(3, _int(1))
    n_train: int = setting(1000, _int(1))
    n_test: int = setting(2000, _int(1))

    def validate(self):
        if self.k > self.n_bits:
            raise Invalid(f"ParityCfg.k must be at most n_bits ({self.n_bits}), got {self.k}")


@register
@dataclass(frozen=True)
class DigitsCfg(Settings):
    """Hand-written 8 x 8 digits (``grokbook.tasks.digits``): ``n_train`` training and
    ``n_test`` test pictures, disjoint, drawn from the run's seed."""

    kind: ClassVar[str] = "digits"
    n_train: int = setting(1000, _int(1))
    n_test: int = setting(797, _int(1))

    def validate(self):
        from grokbook.tasks import check_digits
        try:
            check_digits(self.n_train, self.n_test)
        except ValueError as error:
            raise Invalid(f"DigitsCfg.{error}") from None


@register
@dataclass(frozen=True)
class PolygonCfg(Settings):
    """Gu et al.'s polygon counting at a CPU size (``grokbook.images.polygon_counting``): every
    2 x 2 grid of empty cells and polygons with 3..``max_sides`` sides, cells of ``cell``
    pixels, a share ``frac`` of the pictures for training."""

    kind: ClassVar[str] = "polygons"
    max_sides: int = setting(12, _int(1), "the most sides of a polygon (3..12)")
    cell: int = setting(16, _int(1), "a cell's size in pixels (8..64)")
    frac: float = setting(0.25, _real(0, 1, True, True), "the training fraction")

    def validate(self):
        from grokbook.images import check_polygons
        try:
            check_polygons(self.max_sides, self.cell, self.frac)
        except ValueError as error:
            raise Invalid(f"PolygonCfg.{error}") from None


# ---- models -----------------------------------------------------------------------------

EMBEDDINGS = ("learned", "one_hot", "binary", "fourier", "text")


@dataclass(frozen=True)
class _FNNSizes(Settings):
    """The sizes both bias-free FNNs share: embedding width, hidden width, depth, init."""

    d_embed: int = setting(128, _int(1))
    width: int = setting(512, _int(1))
    depth: int = setting(3, _int(1))
    init_scale: float = setting(1.0, RULES["init_scale"])


@register
@dataclass(frozen=True)
class FNNCfg(_FNNSizes):
    """The bias-free FNN on concatenated operand embeddings (``grokbook.models.FNN``);
    ``embedding`` other than ``"learned"`` is a fixed table (``grokbook.embeddings``)."""

    kind: ClassVar[str] = "fnn"
    embedding: str = setting("learned", _choice(*EMBEDDINGS))


@register
@dataclass(frozen=True)
class TransformerCfg(Settings):
    """The Nanda-style decoder-only Transformer (``grokbook.models.Transformer``)."""

    kind: ClassVar[str] = "transformer"
    d_model: int = setting(128, _int(1))
    n_heads: int = setting(4, _int(1))
    d_mlp: int = setting(512, _int(1))
    n_layers: int = setting(1, _int(1))
    init_scale: float = setting(1.0, RULES["init_scale"])

    def validate(self):
        if self.d_model % self.n_heads:
            raise Invalid(f"TransformerCfg.d_model ({self.d_model}) must be a multiple of "
                          f"n_heads ({self.n_heads})")


@register
@dataclass(frozen=True)
class VectorFNNCfg(_FNNSizes):
    """The bias-free FNN on vector inputs (``grokbook.models.VectorFNN``), for sparse parity
    and digits."""

    kind: ClassVar[str] = "vector_fnn"


@register
@dataclass(frozen=True)
class ResNetCfg(Settings):
    """The small ResNet for pictures (``grokbook.models.SmallResNet``), trained from scratch."""

    kind: ClassVar[str] = "resnet"
    width: int = setting(16, _int(1), "the stem's channels (a multiple of 4)")
    init_scale: float = setting(1.0, RULES["init_scale"])

    def validate(self):
        from grokbook.models import RESNET_GROUPS
        if self.width % RESNET_GROUPS:
            raise Invalid(f"ResNetCfg.width must be a multiple of {RESNET_GROUPS} (GroupNorm's "
                          f"groups), got {self.width}")


# ---- optimisation -----------------------------------------------------------------------

@register
@dataclass(frozen=True)
class OptimCfg(Settings):
    """AdamW (decoupled weight decay) or plain SGD (coupled weight decay, the theory's)."""

    kind: ClassVar[str] = "optim"
    lr: float = setting(1e-3, RULES["lr"])
    weight_decay: float = setting(1.0, RULES["weight_decay"])
    betas: tuple[float, float] = setting((0.9, 0.98), _reals(low=0, high=1, high_open=True))
    warmup_steps: int = setting(0, RULES["warmup_steps"], "linear learning-rate warm-up")
    optimizer: str = setting("adamw", _choice("adamw", "sgd"))

    def validate(self):
        if len(self.betas) != 2:
            raise Invalid(f"OptimCfg.betas must be two numbers in [0, 1), got {self.betas!r}")


@register
@dataclass(frozen=True)
class BudgetCfg(Settings):
    """How long to train and when to stop early: ``epochs`` at most, an evaluation every
    ``eval_every``, and a stop once test accuracy holds at least ``stop_acc`` for
    ``stop_patience`` evaluations in a row (``stop_acc`` None: train the whole budget)."""

    kind: ClassVar[str] = "budget"
    epochs: int = setting(1000, _int(0))
    eval_every: int = setting(10, _int(1))
    stop_acc: float | None = setting(None, RULES["stop_acc"])
    stop_patience: int = setting(1, _int(1))


@register
@dataclass(frozen=True)
class GrokFastCfg(Settings):
    """GrokFast's gradient filter (Lee et al. 2024): ``"ema"`` (alpha, lamb) or ``"ma"``
    (window, lamb), at their authors' defaults unless told otherwise."""

    kind: ClassVar[str] = "grokfast"
    filter: str = setting("ema", _choice("ema", "ma"))
    alpha: float = setting(0.98, _real(0, 1, high_open=True))
    lamb: float = setting(2.0, _real(0, None))
    window: int = setting(100, _int(1))

    def build(self):
        from grokbook.accelerators import GrokFastEMA, GrokFastMA
        if self.filter == "ema":
            return GrokFastEMA(self.alpha, self.lamb)
        return GrokFastMA(self.window, self.lamb)


# The gradient transforms a run may name, by kind. A dict without ``kind`` is a GrokFastCfg, as
# before NeuralGrok joined (a GrokFastCfg's serialised form, hence its cache keys, is unchanged).
GRAD_TRANSFORMS = {"grokfast": "GrokFastCfg", "neuralgrok": "NeuralGrokCfg",
                   "tensornorm": "TensorNormCfg"}


def _grad_transform(value: Any) -> Settings:
    allowed = "a " + ", a ".join(GRAD_TRANSFORMS.values()) + " or None"
    if isinstance(value, dict):
        kind = value.get("kind", "grokfast")
        if kind not in GRAD_TRANSFORMS:
            raise Invalid(f"{allowed} (kind one of {', '.join(map(repr, GRAD_TRANSFORMS))}, "
                          f"got kind {kind!r})")
        try:
            return from_dict(value, _kind(kind))
        except Invalid as error:
            raise _NestedInvalid(str(error)) from None
    if not isinstance(value, Settings) or value.kind not in GRAD_TRANSFORMS \
            or _kind(value.kind) is not type(value):
        raise Invalid(allowed)
    return value


# ---- a run --------------------------------------------------------------------------------

@register
@dataclass(frozen=True)
class RunCfg(Settings):
    """One training run: data, model, optimizer, budget, an optional gradient transform, the
    loss, and measures to record (``ntk_probe`` > 0: the relative empirical-NTK change on that
    many test inputs, as ``extras["ntk_change"]``).

    ``grad_transform``: None, a :class:`GrokFastCfg`, a ``NeuralGrokCfg`` (the run trains on
    the inner part of its training set; the outer part, drawn from the run's seed, feeds the
    meta step: ``grokbook.neuralgrok.split_outer``) or a ``TensorNormCfg`` (the whole
    training set). Each holds its own settings, so the run cache keys on them."""

    kind: ClassVar[str] = "run"
    data: ModularCfg | ParityCfg | DigitsCfg | PolygonCfg = setting(
        ModularCfg(), _any_of(ModularCfg, ParityCfg, DigitsCfg, PolygonCfg))
    model: FNNCfg | TransformerCfg | VectorFNNCfg | ResNetCfg = setting(
        FNNCfg(), _any_of(FNNCfg, TransformerCfg, VectorFNNCfg, ResNetCfg))
    optim: OptimCfg = setting(OptimCfg(), _sub(OptimCfg))
    budget: BudgetCfg = setting(BudgetCfg(), _sub(BudgetCfg))
    grad_transform: GrokFastCfg | NeuralGrokCfg | TensorNormCfg | None = setting(
        None, _optional(_grad_transform))
    loss: str = setting("cross_entropy", _choice("cross_entropy", "logistic"))
    ntk_probe: int = setting(0, _int(0))

    def validate(self):
        vector = isinstance(self.model, VectorFNNCfg)
        pictures = isinstance(self.model, ResNetCfg)
        if vector != isinstance(self.data, (ParityCfg, DigitsCfg)) \
                or pictures != isinstance(self.data, PolygonCfg):
            raise Invalid("RunCfg.model must be a VectorFNNCfg for ParityCfg or DigitsCfg data, "
                          "a ResNetCfg for PolygonCfg data and an FNNCfg or TransformerCfg for "
                          f"ModularCfg data, got {type(self.model).__name__} on "
                          f"{type(self.data).__name__}")
        if isinstance(self.model, (TransformerCfg, ResNetCfg)) and self.ntk_probe:
            raise Invalid("RunCfg.ntk_probe is only available for FNNs")
        if isinstance(self.data, (PolygonCfg, DigitsCfg)) and self.loss != "cross_entropy":
            raise Invalid(f"RunCfg.loss must be 'cross_entropy' for {type(self.data).__name__} "
                          f"data (its labels are classes), got {self.loss!r}")
        if isinstance(self.data, ParityCfg) and self.loss != "logistic":
            raise Invalid(f"RunCfg.loss must be 'logistic' for ParityCfg data (its labels are "
                          f"+-1), got {self.loss!r}")


# ---- working with settings ------------------------------------------------------------------

def to_dict(cfg: Settings) -> dict[str, Any]:
    """Plain data (JSON-ready) of ``cfg``, nested settings included, each tagged by ``kind``."""
    out: dict[str, Any] = {"kind": cfg.kind}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, Settings):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = [to_dict(v) if isinstance(v, Settings) else v for v in value]
        out[f.name] = value
    return out


def from_dict(data: dict[str, Any], cls: type | None = None) -> Settings:
    """Build settings from :func:`to_dict`'s output (or a hand-written dict; ``kind`` picks
    the class when ``cls`` is not given). An unknown key is an error listing the known ones."""
    if not isinstance(data, dict):
        raise Invalid(f"settings data must be a dict (as to_dict writes it), got a "
                      f"{type(data).__name__}")
    data = dict(data)
    kind = data.pop("kind", None)
    if cls is None:
        cls = _kind(kind)
        if cls is None:
            raise Invalid(f"kind must be one of {', '.join(sorted(set(KINDS) | set(ELSEWHERE)))}"
                          f", got {kind!r}")
    elif kind not in (None, cls.kind):
        raise Invalid(f"expected kind {cls.kind!r} for {cls.__name__}, got {kind!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise Invalid(f"unknown field(s) {', '.join(unknown)} for {cls.__name__}; "
                      f"known fields: {', '.join(known)}")
    return cls(**data)


def replace(cfg: Settings, **changes: Any) -> Settings:
    """A copy of ``cfg`` with ``changes``, validated; ``a__b=v`` changes field ``b`` of the
    nested settings ``a`` (``replace(run, optim__lr=1e-2, budget__epochs=500)``)."""
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition("__")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    known = [f.name for f in dataclasses.fields(cfg)]
    unknown = sorted(set(flat) | set(nested)) if not known else sorted(
        (set(flat) | set(nested)) - set(known))
    if unknown:
        raise Invalid(f"unknown field(s) {', '.join(unknown)} for {type(cfg).__name__}; "
                      f"known fields: {', '.join(known)}")
    for head, sub in nested.items():
        inner = flat.get(head, getattr(cfg, head))
        if not isinstance(inner, Settings):
            raise Invalid(f"{type(cfg).__name__}.{head} holds no settings to change "
                          f"({', '.join(sub)})")
        flat[head] = replace(inner, **sub)
    return dataclasses.replace(cfg, **flat)


def fingerprint(value: Any) -> str:
    """A stable SHA-256 of settings (or of plain data holding settings)."""
    def plain(v):
        if isinstance(v, Settings):
            return to_dict(v)
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    return hashlib.sha256(dumps(plain(value)).encode()).hexdigest()
