"""NeuralGrok (Zhou et al., 2025): a learned gradient transformation trained by a bilevel objective.

A small MLP, the *amplifier*, reweights every entry of the gradient before the optimizer sees
it; every ``T`` steps the amplifier itself takes a step so that a model updated with the
reweighted gradient does better on a small held-out *outer* split of the training data.

The amplifier, as the reference code builds it (``NeuralAmplifier`` and ``transform_grads`` in
``src/`` on the ``neuralgrad`` branch of Blackzxy/NeuralOptGrok): ONE MLP ``m: R -> R``
(Linear -> ReLU per hidden width, then Linear to 1), shared by every parameter tensor and
applied to each scalar gradient entry ``g_i``; a softmax over all the entries of that tensor
gives weights ``w_i``; then ``g'_i = c w_i g_i / ||w g||_2``, a rescaling of each tensor's
gradient to norm ``c``. Because of that rescaling the softmax's denominator cancels: ``g'_i``
is proportional to ``exp(m(g_i)) g_i``. The amplifier is a learned positive weight that
depends only on the value of the entry, followed by per-tensor normalisation
(:meth:`Amplifier.weight` returns the weight as a function of the gradient value).

Paper vs code: the paper's text describes an amplifier of width 32 with ``c = 1``, which matches
only older classes in the repository's history (one of which took the softmax over a size-1
axis, so its amplifier learned nothing). The book follows the newest code: it is
definite where the text is not, and it is what the authors' own scripts run for the Table 1
tasks (``script/neuralgrok/task1.sh``: hidden widths (128, 128), ``T = 4``, ``c = 0.2``). Only
the width differs by default here: one hidden layer of 32, because differentiating through the
amplifier stores ``entries x hidden`` activations in every meta step, and at (128, 128) that
costs more than the base model's own step (``step_costs`` measures it).

One step of training with :class:`NeuralGrok` as ``grad_transform`` of :func:`grokbook.train.train`:

- inner step: the loop's forward and backward on the inner data give the raw gradient; every
  ``T`` steps the meta step runs first (below); each tensor's gradient is replaced by the
  amplifier's output, the total norm is clipped to ``max_norm`` (1.0, as in the reference; the
  reference's baselines are not clipped), and the loop's optimizer steps.
- meta step: a *virtual* plain SGD step ``theta' = theta - virtual_lr * G(grad)`` (no momentum,
  no clipping; ``theta`` detached, so only the amplifier receives gradients), the outer loss at
  ``theta'`` (``torch.func.functional_call``), backward into the amplifier, and a step of its
  own Adam (lr 1e-4, L2 weight decay 1e-3, betas (0.9, 0.98), as in the reference).

Schedule: the reference runs the meta step right after real steps ``T, 2T, ...``, recomputing
the raw gradient of the same batch at the new parameters. Here it runs at the start of the next
step and uses that step's raw gradient, already computed by the loop: with full-batch training
(the book's default) the two are the same gradient at the same parameters, and it saves a
forward and backward pass per meta step; with minibatches the next batch stands in for the last.

Smaller differences: a tensor whose gradient is all zero stays zero (the reference divides 0
by 0); the virtual step moves every parameter that has a gradient (the reference walks the
modules' ``weight``, ``bias`` and ``in_proj_*`` attributes); the model's optimizer is the
loop's (AdamW, decoupled weight decay, unless ``train`` is given another; the reference uses
Adam with coupled L2 weight decay 1e-3).

Data: the reference splits the table inner 49% / outer 1% / test 50% and trains its baseline on
inner and outer together (the whole 50%); :func:`split_outer` takes the outer split out of a
task's training set, so the baseline keeps training on the task's data as it is.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from grokbook.accelerators import _gradients
from grokbook.checks import check_memory, check_seed
from grokbook.config import (
    RULES,
    Invalid,
    Settings,
    _int,
    _ints,
    _optional,
    _real,
    _reals,
    register,
    setting,
)
from grokbook.train import LOSSES

__all__ = ["CHECKS", "Amplifier", "NeuralGrok", "NeuralGrokCfg", "OuterSplit",
           "TensorNormCfg", "TensorNormalization", "split_outer", "step_costs"]

def _widths(value: Any) -> tuple[int, ...]:
    try:
        return _ints(1)(value)
    except Invalid:
        raise Invalid("a non-empty sequence of positive integers (the hidden layers' widths)") \
            from None


# The allowed values of every NeuralGrok setting, shared by the settings class and the
# constructors (one message format: "name must be <allowed>, got <value>").
CHECKS: dict[str, Callable[[Any], Any]] = {
    "hidden": _widths,
    "c": _real(0, None, low_open=True),
    "meta_every": _int(1),
    "virtual_lr": RULES["lr"],
    "meta_lr": RULES["lr"],
    "meta_weight_decay": RULES["weight_decay"],
    "meta_betas": _reals(low=0, high=1, high_open=True),
    "max_norm": _optional(_real(0, None, low_open=True)),
    "outer_frac": _real(0, 1, low_open=True, high_open=True),
}


def checked(name: str, value: Any) -> Any:
    """``value`` normalised by ``CHECKS[name]``, or a ``ValueError`` naming the parameter, the
    value and what is allowed."""
    try:
        value = CHECKS[name](value)
    except Invalid as error:
        raise Invalid(f"{name} must be {error}, got {value!r}") from None
    if name == "meta_betas" and len(value) != 2:
        raise Invalid(f"meta_betas must be two numbers in [0, 1), got {value!r}")
    return value


# ---- the amplifier --------------------------------------------------------------------------

class Amplifier(nn.Module):
    """The learned gradient transformation of one tensor: ``g -> c w g / ||w g||`` with
    ``w = softmax(m(g))`` over the tensor's entries (see the module's docstring).

    Args:
        hidden: the widths of the MLP's hidden layers (input and output width are 1).
        c: the norm of every transformed tensor, ``> 0`` (the reference's 0.2).
        seed: seeds the MLP's initialisation (PyTorch's default, as in the reference).
    """

    def __init__(self, hidden: Sequence[int] = (32,), c: float = 0.2, seed: int = 0):
        super().__init__()
        self.hidden, self.c = checked("hidden", hidden), checked("c", c)
        check_seed(seed)
        layers: list[nn.Module] = []
        width = 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for size in self.hidden:
                layers += [nn.Linear(width, size), nn.ReLU()]
                width = size
            layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def scores(self, values: torch.Tensor) -> torch.Tensor:
        """``m(g)`` for every entry of ``values`` (the same shape): the log of the unnormalised
        weight."""
        dtype = self.mlp[0].weight.dtype
        return self.mlp(values.reshape(-1, 1).to(dtype)).reshape(values.shape)

    def forward(self, grad: torch.Tensor) -> torch.Tensor:
        """The transformed gradient of one tensor, of its shape, with norm ``c`` (zero stays
        zero: the reference divides 0 by 0 there)."""
        flat = grad.reshape(-1, 1).to(self.mlp[0].weight.dtype)
        weights = torch.softmax(self.mlp(flat), dim=0)  # over this tensor's entries
        weighted = weights * flat
        norm = weighted.norm().clamp_min(torch.finfo(weighted.dtype).tiny)
        return (self.c * weighted / norm).reshape(grad.shape).to(grad.dtype)

    @torch.no_grad()
    def weight(self, values: torch.Tensor | Sequence[float],
               reference: float = 0.0) -> torch.Tensor:
        """The learned weight ``exp(m(g) - m(reference))`` of a gradient entry of value ``g``,
        for each of ``values``.

        The transformed entry is proportional to ``exp(m(g)) g``; the constant of
        proportionality (the softmax's denominator and the rescaling to norm ``c``) is the same
        for every entry of a tensor, so only ratios of weights mean anything: this one is 1 at
        ``g = reference``.
        """
        values = torch.as_tensor(values, dtype=self.mlp[0].weight.dtype,
                                 device=self.mlp[0].weight.device)
        anchor = self.scores(torch.tensor([reference], dtype=values.dtype, device=values.device))
        return torch.exp(self.scores(values) - anchor)


def _clip(model: nn.Module, max_norm: float | None) -> None:
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                       max_norm)


class _OneModel:
    """A transform that keeps state for one model refuses every other model."""

    def __init__(self):
        self.shapes: dict[str, tuple] = {}
        self._model: weakref.ref | None = None

    def _claim(self, model: nn.Module, names: list[str], grads: list[torch.Tensor]) -> None:
        seen = {name: tuple(grad.shape) for name, grad in zip(names, grads)}
        if not seen:
            raise ValueError(f"{type(self).__name__}: the model has no gradients; call it after "
                             "backward")
        if self._model is not None and self._model() is not model or (
                self.shapes and seen != self.shapes):
            raise ValueError(f"this {type(self).__name__} transform already belongs to another "
                             "model: make a new one for each run")
        self.shapes = self.shapes or seen
        self._model = weakref.ref(model)


# ---- the gradient transforms ------------------------------------------------------------------

class NeuralGrok(_OneModel):
    """NeuralGrok as a gradient transform: ``train(model, inner, grad_transform=NeuralGrok(...))``.

    Each call, after backward: every ``meta_every`` (T) calls, a meta step on the amplifier
    (:meth:`meta_step`); then every gradient tensor replaced by the amplifier's output and the
    total norm clipped (:meth:`amplify`). See the module's docstring for the algorithm and where
    it follows the reference code.

    Args:
        outer_x, outer_y: the outer split (:func:`split_outer`), at least one example; it is
            used only by the meta step.
        loss: ``"cross_entropy"``, ``"logistic"`` (``grokbook.train.LOSSES``) or a function
            ``(output, y) -> scalar`` for the outer loss.
        hidden, c: the amplifier's hidden widths and output norm (:class:`Amplifier`).
        meta_every: T, the number of steps between meta steps, at least 1.
        virtual_lr: the learning rate of the virtual SGD step (the reference uses the model's,
            1e-3).
        meta_lr, meta_weight_decay, meta_betas: the amplifier's Adam (coupled L2 weight decay).
        max_norm: clip the transformed gradient's total norm to this; None: no clipping.
        seed: seeds the amplifier's initialisation.

    ``outer_losses`` lists the outer loss of every meta step. Use a new instance for every run.
    """

    def __init__(self, outer_x: torch.Tensor, outer_y: torch.Tensor,
                 loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                 = "cross_entropy", *, hidden: Sequence[int] = (32,), c: float = 0.2,
                 meta_every: int = 4, virtual_lr: float = 1e-3, meta_lr: float = 1e-4,
                 meta_weight_decay: float = 1e-3,
                 meta_betas: tuple[float, float] = (0.9, 0.98),
                 max_norm: float | None = 1.0, seed: int = 0):
        super().__init__()
        self.outer_x, self.outer_y = _outer_data(outer_x, outer_y)
        self.loss = _loss_function(loss)
        self.meta_every = checked("meta_every", meta_every)
        self.virtual_lr = checked("virtual_lr", virtual_lr)
        self.max_norm = checked("max_norm", max_norm)
        self.amplifier = Amplifier(hidden, c, seed)
        self.meta_optimizer = torch.optim.Adam(
            self.amplifier.parameters(), lr=checked("meta_lr", meta_lr),
            weight_decay=checked("meta_weight_decay", meta_weight_decay),
            betas=checked("meta_betas", meta_betas))
        self.calls = 0
        self.outer_losses: list[float] = []
        self._memory_checked = False

    def state_dict(self) -> dict:
        return {"amplifier": dict(self.amplifier.state_dict()),
                "meta_optimizer": self.meta_optimizer.state_dict(), "calls": self.calls,
                "outer_losses": list(self.outer_losses), "shapes": dict(self.shapes)}

    def load_state_dict(self, state: dict) -> None:
        self.amplifier.load_state_dict(state["amplifier"])
        self.meta_optimizer.load_state_dict(state["meta_optimizer"])
        self.calls = int(state["calls"])
        self.outer_losses = [float(v) for v in state["outer_losses"]]
        self.shapes = {k: tuple(v) for k, v in state["shapes"].items()}

    def __call__(self, model: nn.Module) -> None:
        names, grads = _gradients(model)
        self._claim(model, names, grads)
        self.calls += 1
        # After real steps T, 2T, ... (the reference's schedule; see the module's docstring).
        if self.calls > 1 and (self.calls - 1) % self.meta_every == 0:
            self.meta_step(model)
        self.amplify(model)

    def _prepare(self, grads: list[torch.Tensor]) -> None:
        """Move the amplifier and the outer data to the model's device; on the first call,
        refuse a meta step that would not fit in memory (it stores every entry's activations)."""
        device = grads[0].device
        if self.outer_x.device != device:
            self.outer_x, self.outer_y = self.outer_x.to(device), self.outer_y.to(device)
        if self.amplifier.mlp[0].weight.device != device:
            self.amplifier.to(device)  # the same Parameters: the meta optimizer still holds them
        if not self._memory_checked:
            entries = sum(g.numel() for g in grads)
            check_memory(3 * 4 * entries * (sum(self.amplifier.hidden) + 2),
                         f"NeuralGrok's meta step ({entries:,} gradient entries through an "
                         f"amplifier of widths {self.amplifier.hidden})")
            self._memory_checked = True

    @torch.no_grad()
    def amplify(self, model: nn.Module) -> None:
        """The inner transform: each gradient tensor of ``model`` replaced by the amplifier's
        output, then the total norm clipped to ``max_norm``. No meta step."""
        _, grads = _gradients(model)
        self._prepare(grads)
        for grad in grads:
            grad.copy_(self.amplifier(grad))
        _clip(model, self.max_norm)

    def meta_step(self, model: nn.Module) -> float:
        """One step of the amplifier from ``model``'s current (raw) gradients; returns the outer
        loss at the virtual parameters. ``model``'s parameters and gradients are left as
        they are."""
        names, grads = _gradients(model)
        self._prepare(grads)
        virtual = {name: p.detach() for name, p in model.named_parameters()}
        with torch.enable_grad():
            for name, grad in zip(names, grads):
                virtual[name] = virtual[name] - self.virtual_lr * self.amplifier(grad.detach())
            outer = self.loss(functional_call(model, virtual, (self.outer_x,)), self.outer_y)
            self.meta_optimizer.zero_grad(set_to_none=True)
            outer.backward()
        self.meta_optimizer.step()
        value = outer.item()
        self.outer_losses.append(value)
        return value

    def weight(self, values: torch.Tensor | Sequence[float],
               reference: float = 0.0) -> torch.Tensor:
        """The amplifier's learned weight of a gradient entry by its value
        (:meth:`Amplifier.weight`)."""
        return self.amplifier.weight(values, reference)


class TensorNormalization(_OneModel):
    """The paper's ablation: each gradient tensor rescaled to norm ``c`` (``g -> c g / ||g||``,
    zero stays zero), then the total norm clipped to ``max_norm``; NeuralGrok with a constant
    amplifier, and no meta step. Stateless apart from the model it serves."""

    def __init__(self, c: float = 0.2, max_norm: float | None = 1.0):
        super().__init__()
        self.c, self.max_norm = checked("c", c), checked("max_norm", max_norm)

    def state_dict(self) -> dict:
        return {"shapes": dict(self.shapes)}

    def load_state_dict(self, state: dict) -> None:
        self.shapes = {k: tuple(v) for k, v in state["shapes"].items()}

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> None:
        names, grads = _gradients(model)
        self._claim(model, names, grads)
        for grad in grads:
            grad.mul_(self.c / grad.norm().clamp_min(torch.finfo(grad.dtype).tiny))
        _clip(model, self.max_norm)


def _loss_function(loss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))} or a function "
                         f"(output, y) -> loss, got {loss!r}")
    return LOSSES[loss][0]


def _outer_data(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, value in (("outer_x", x), ("outer_y", y)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(value).__name__}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"{name} must hold finite values only, got a non-finite one")
    if len(x) == 0 or len(y) == 0:
        raise ValueError(f"the outer split must hold at least one example, got {len(y)} "
                         "(outer_x and outer_y are empty): a larger outer_frac or data set")
    if len(x) != len(y):
        raise ValueError(f"outer_x and outer_y must hold the same number of examples, got "
                         f"{len(x)} and {len(y)}")
    return x, y


# ---- the data: inner / outer / test -----------------------------------------------------------

@dataclass(frozen=True)
class OuterSplit:
    """A task's data with its training set split in two: ``inner`` (the task's data with
    ``x_train``/``y_train`` cut to the inner part; the same test set) and the outer split."""

    inner: Any
    outer_x: torch.Tensor
    outer_y: torch.Tensor

    def __repr__(self) -> str:
        return (f"OuterSplit({len(self.inner.y_train)} inner, {len(self.outer_y)} outer, "
                f"{len(self.inner.y_test)} test)")


def split_outer(data, outer_frac: float = 0.01, seed: int = 0) -> OuterSplit:
    """Take NeuralGrok's outer split out of a task's training set, at random from ``seed``.

    ``outer_frac`` is a fraction of the *whole* data set (train and test together), as in the
    reference: a task with half of the table for training and ``outer_frac = 0.01`` gives the
    reference's inner 49% / outer 1% / test 50%. ``data`` is a frozen dataclass with
    ``x_train, y_train, x_test, y_test`` (``grokbook.tasks``). The baseline to compare with
    trains on ``data`` itself, inner and outer together, as in the reference.

    Raises:
        ValueError: when the outer split would be empty, or take the whole training set.
    """
    outer_frac = checked("outer_frac", outer_frac)
    check_seed(seed)
    n_train, n_test = len(data.y_train), len(data.y_test)
    n_outer = round(outer_frac * (n_train + n_test))
    if n_outer < 1:
        raise ValueError(f"outer_frac={outer_frac} leaves an empty outer split for "
                         f"{n_train + n_test} examples in all: it must be at least "
                         f"{0.5 / (n_train + n_test):.3g}")
    if n_outer >= n_train:
        raise ValueError(f"outer_frac={outer_frac} asks for {n_outer} outer examples, but the "
                         f"training set holds only {n_train}: nothing would be left to train on")
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    outer, inner = order[:n_outer], order[n_outer:]
    return OuterSplit(dataclasses.replace(data, x_train=data.x_train[inner],
                                          y_train=data.y_train[inner]),
                      data.x_train[outer], data.y_train[outer])


# ---- settings -----------------------------------------------------------------------------------

@register
@dataclass(frozen=True)
class NeuralGrokCfg(Settings):
    """NeuralGrok's settings (defaults: the reference's, but one hidden layer of 32, a CPU
    choice; the reference runs (128, 128) for the mod-97 tasks)."""

    kind: ClassVar[str] = "neuralgrok"
    hidden: tuple[int, ...] = setting((32,), CHECKS["hidden"], "the amplifier's hidden widths")
    c: float = setting(0.2, CHECKS["c"], "the norm of each transformed gradient tensor")
    meta_every: int = setting(4, CHECKS["meta_every"], "T: steps between meta steps")
    virtual_lr: float = setting(1e-3, CHECKS["virtual_lr"], "the virtual SGD step's lr")
    meta_lr: float = setting(1e-4, CHECKS["meta_lr"], "the amplifier's Adam lr")
    meta_weight_decay: float = setting(1e-3, CHECKS["meta_weight_decay"])
    meta_betas: tuple[float, float] = setting((0.9, 0.98), CHECKS["meta_betas"])
    max_norm: float | None = setting(1.0, CHECKS["max_norm"], "clip of the inner gradient")
    outer_frac: float = setting(0.01, CHECKS["outer_frac"], "outer split, of the whole data")

    def validate(self):
        if len(self.meta_betas) != 2:
            raise Invalid(f"NeuralGrokCfg.meta_betas must be two numbers in [0, 1), got "
                          f"{self.meta_betas!r}")

    def build(self, data, seed: int = 0,
              loss: str | Callable = "cross_entropy") -> tuple[Any, NeuralGrok]:
        """``(inner data, transform)`` for a run on ``data`` from ``seed`` (the outer split and
        the amplifier's initialisation): ``train(model, inner, grad_transform=transform)``."""
        split = split_outer(data, self.outer_frac, seed)
        return split.inner, NeuralGrok(
            split.outer_x, split.outer_y, loss, hidden=self.hidden, c=self.c,
            meta_every=self.meta_every, virtual_lr=self.virtual_lr, meta_lr=self.meta_lr,
            meta_weight_decay=self.meta_weight_decay, meta_betas=tuple(self.meta_betas),
            max_norm=self.max_norm, seed=seed)


@register
@dataclass(frozen=True)
class TensorNormCfg(Settings):
    """The per-tensor normalisation ablation's settings (:class:`TensorNormalization`): no
    amplifier, no meta step, so no outer split: a run trains on its whole training set."""

    kind: ClassVar[str] = "tensornorm"
    c: float = setting(0.2, CHECKS["c"], "the norm of each gradient tensor")
    max_norm: float | None = setting(1.0, CHECKS["max_norm"], "clip of the total norm")

    def build(self) -> TensorNormalization:
        """A fresh transform for one run."""
        return TensorNormalization(self.c, self.max_norm)


# ---- cost ------------------------------------------------------------------------------------

def step_costs(model: nn.Module, data, cfg: NeuralGrokCfg | None = None, *, seed: int = 0,
               repeats: int = 5) -> dict[str, dict[str, float]]:
    """What NeuralGrok's pieces cost next to a plain training step, on a copy of ``model``.

    Rows: ``"plain step"`` (full-batch forward and backward on the inner data, AdamW step),
    ``"amplify"`` (the amplifier on every gradient entry, clipping) and ``"meta step"`` (virtual
    step, outer forward, backward through the amplifier, Adam). Each row holds ``seconds`` (the
    best of ``repeats`` calls on this machine) and ``flops`` (PyTorch's ``FlopCounterMode``:
    matrix products only, so the amplifier's ReLUs and softmax are not counted). A NeuralGrok
    step costs ``plain + amplify + meta / T`` on average.
    """
    cfg = cfg if cfg is not None else NeuralGrokCfg()
    model = copy.deepcopy(model)
    inner, transform = cfg.build(data, seed)
    x, y = inner.x_train, inner.y_train
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = LOSSES["cross_entropy"][0]

    def plain():
        optimizer.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        optimizer.step()

    plain()
    raw = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    def restored(step: Callable[[nn.Module], Any]) -> Callable[[], None]:
        def run():
            for name, p in model.named_parameters():
                if name in raw:
                    p.grad.copy_(raw[name])
            step(model)
        return run

    parts = {"plain step": plain, "amplify": restored(transform.amplify),
             "meta step": restored(transform.meta_step)}
    costs = {}
    for name, fn in parts.items():
        fn()  # warm up
        with FlopCounterMode(display=False) as counter:
            fn()
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        costs[name] = {"seconds": best, "flops": float(counter.get_total_flops())}
    return costs
