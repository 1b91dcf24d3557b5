"""Gradient transforms that accelerate grokking, applied between backward and the optimizer step.

Each is a callable ``transform(model)`` that changes the gradients of ``model`` in place, passed
to :func:`grokbook.train.train` as ``grad_transform``. Each keeps its own state across steps, so
use a new instance for every run.

GrokFast (Lee et al., 2024) reads the gradient over time as a signal: a fast-varying part that
drives memorization and a slow part that drives generalization, and amplifies the slow part with
a low-pass filter. Two filters, following the authors' reference code (``gradfilter_ema`` and
``gradfilter_ma``):

- EMA: ``mu <- alpha mu + (1 - alpha) g`` (``mu`` starts at the first gradient), then
  ``g <- g + lambda mu``; defaults ``alpha = 0.98``, ``lambda = 2``.
- MA: the mean ``m`` of the last ``window`` gradients, then ``g <- g + lambda m``, applied only
  once the window is full; defaults ``window = 100``, ``lambda = 5``.

Both act on every gradient entry alone, so one filter also serves a stack of models
(``train`` given a list of models calls it with the stacked gradients): ``stackable = True``, and
:meth:`keep_members` drops the state of members that leave the stack. For a stack, ``lamb`` may
be one number per member (a tuning grid over lambda as one run).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch
from torch import nn

from grokbook.checks import check_int
from grokbook.config import validate


def _gradients(model: nn.Module) -> tuple[list[str], list[torch.Tensor]]:
    """The names and gradients of the parameters that have one, in a fixed order."""
    pairs = [(name, parameter.grad) for name, parameter in model.named_parameters()
             if parameter.requires_grad and parameter.grad is not None]
    return [name for name, _ in pairs], [grad for _, grad in pairs]


def _same_model(shapes: dict[str, tuple], names: list[str], grads: list[torch.Tensor]) -> None:
    """A filter keeps per-parameter state: it belongs to the first model it sees."""
    seen = {name: tuple(grad.shape) for name, grad in zip(names, grads)}
    if not shapes:
        shapes.update(seen)
    elif seen != shapes:
        raise ValueError("this GrokFast filter already holds the gradients of another model "
                         "(other parameter names or shapes): make a new filter for each run")


def _lambdas(lamb: float | Sequence[float]) -> float | list[float]:
    """``lamb``: one number, or one per member of a stack; each checked."""
    if isinstance(lamb, (list, tuple)):
        if not lamb:
            raise ValueError("lamb must be a number, or one number per member of a stack, "
                             "got an empty sequence")
        return [validate("lamb", value, "weight_decay") for value in lamb]
    return validate("lamb", lamb, "weight_decay")


def _amplify(grads: list[torch.Tensor], slow: list[torch.Tensor],
             lamb: float | list[float]) -> None:
    """``g <- g + lamb * slow`` for every gradient; with one lambda per member, member by
    member (each member's slice is the tensor its run alone would have: the same operations,
    though on some CPUs a stack rounds otherwise, ``grokbook.engine``)."""
    if not isinstance(lamb, list):
        torch._foreach_add_(grads, slow, alpha=lamb)
        return
    if grads and grads[0].shape[0] != len(lamb):
        raise ValueError(f"lamb holds {len(lamb)} values, one per member, but the stack has "
                         f"{grads[0].shape[0]} members")
    for k, value in enumerate(lamb):
        torch._foreach_add_([g[k] for g in grads], [s[k] for s in slow], alpha=value)


def _check_lambdas(lamb: float | list[float], model: nn.Module) -> None:
    """Before training: one lambda per member is for a stack of exactly that many members."""
    if not isinstance(lamb, list):
        return
    members = len(model) if hasattr(model, "members") else None  # an Ensemble
    if members != len(lamb):
        where = (f"a stack of {members} members" if members is not None
                 else f"a single {type(model).__name__}")
        raise ValueError(f"lamb holds {len(lamb)} values, one per member of a stack, but this "
                         f"filter serves {where}: give one number, or one per member")


def _check_model(shapes: dict[str, tuple], model: nn.Module) -> None:
    """Before training: a filter that already holds another model's gradients is refused."""
    params = {name: tuple(p.shape) for name, p in model.named_parameters()}
    if shapes and any(params.get(name) != shape for name, shape in shapes.items()):
        raise ValueError("grad_transform: this GrokFast filter already holds the gradients of "
                         "another model (other parameter names or shapes): make a new filter "
                         "for each run")


class GrokFastEMA:
    """GrokFast's exponential-moving-average filter (see the module's docstring)."""

    stackable = True  # elementwise: serves a stack of models, each member filtered as alone

    def __init__(self, alpha: float = 0.98, lamb: float | Sequence[float] = 2.0):
        self.alpha = validate("alpha", alpha, "alpha")
        self.lamb = _lambdas(lamb)
        self.averages: dict[str, torch.Tensor] = {}
        self.shapes: dict[str, tuple] = {}

    def check_model(self, model: nn.Module) -> None:
        """Refuse ``model`` if this filter already holds another model's gradients, or if its
        lambdas are one per member of a stack of another size."""
        _check_model(self.shapes, model)
        _check_lambdas(self.lamb, model)

    def keep_members(self, index: torch.Tensor) -> None:
        """Keep the averages of the stack members at ``index`` (the others left the stack)."""
        self.averages = {k: v[index] for k, v in self.averages.items()}
        self.shapes = {k: (len(index), *shape[1:]) for k, shape in self.shapes.items()}
        if isinstance(self.lamb, list):
            self.lamb = [self.lamb[k] for k in index.tolist()]

    def state_dict(self) -> dict:
        return {"averages": dict(self.averages), "shapes": dict(self.shapes)}

    def load_state_dict(self, state: dict) -> None:
        self.averages = {k: v.clone() for k, v in state["averages"].items()}
        self.shapes = {k: tuple(v) for k, v in state["shapes"].items()}

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> None:
        names, grads = _gradients(model)
        _same_model(self.shapes, names, grads)
        if not self.averages:
            self.averages = {name: grad.clone() for name, grad in zip(names, grads)}
        else:
            averages = [self.averages[name] for name in names]
            torch._foreach_mul_(averages, self.alpha)
            torch._foreach_add_(averages, grads, alpha=1 - self.alpha)
        _amplify(grads, [self.averages[name] for name in names], self.lamb)


class GrokFastMA:
    """GrokFast's moving-average filter over a window of past gradients (see the module's
    docstring); with ``warmup`` (the default, as in the reference code) nothing is amplified
    until the window is full."""

    stackable = True  # elementwise: serves a stack of models, each member filtered as alone

    def __init__(self, window: int = 100, lamb: float | Sequence[float] = 5.0,
                 warmup: bool = True):
        check_int("window", window)
        self.window, self.warmup = window, bool(warmup)
        self.lamb = _lambdas(lamb)
        self.history: dict[str, deque[torch.Tensor]] = {}
        self.sums: dict[str, torch.Tensor] = {}
        self.shapes: dict[str, tuple] = {}

    def check_model(self, model: nn.Module) -> None:
        """Refuse ``model`` if this filter already holds another model's gradients, or if its
        lambdas are one per member of a stack of another size."""
        _check_model(self.shapes, model)
        _check_lambdas(self.lamb, model)

    def keep_members(self, index: torch.Tensor) -> None:
        """Keep the window of the stack members at ``index`` (the others left the stack)."""
        self.history = {k: deque(g[index] for g in v) for k, v in self.history.items()}
        self.sums = {k: v[index] for k, v in self.sums.items()}
        self.shapes = {k: (len(index), *shape[1:]) for k, shape in self.shapes.items()}
        if isinstance(self.lamb, list):
            self.lamb = [self.lamb[k] for k in index.tolist()]

    def state_dict(self) -> dict:
        return {"history": {k: list(v) for k, v in self.history.items()},
                "sums": dict(self.sums), "shapes": dict(self.shapes)}

    def load_state_dict(self, state: dict) -> None:
        self.history = {k: deque(t.clone() for t in v) for k, v in state["history"].items()}
        self.sums = {k: v.clone() for k, v in state["sums"].items()}
        self.shapes = {k: tuple(v) for k, v in state["shapes"].items()}

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> None:
        # A running sum over the window: add the newest gradient, subtract the one that
        # leaves, so a step costs the same for any window.
        names, grads = _gradients(model)
        _same_model(self.shapes, names, grads)
        for name, grad in zip(names, grads):
            past = self.history.setdefault(name, deque())
            past.append(grad.clone())
            total = self.sums.get(name)
            if total is None:
                total = self.sums[name] = torch.zeros_like(grad)
            total.add_(grad)
            if len(past) > self.window:
                total.sub_(past.popleft())
            if not self.warmup or len(past) == self.window:
                if isinstance(self.lamb, list):
                    _amplify([grad], [total], [value / len(past) for value in self.lamb])
                else:
                    grad.add_(total, alpha=self.lamb / len(past))
