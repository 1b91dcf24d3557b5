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
"""

from __future__ import annotations

from collections import deque

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


def _check_model(shapes: dict[str, tuple], model: nn.Module) -> None:
    """Before training: a filter that already holds another model's gradients is refused."""
    params = {name: tuple(p.shape) for name, p in model.named_parameters()}
    if shapes and any(params.get(name) != shape for name, shape in shapes.items()):
        raise ValueError("grad_transform: this GrokFast filter already holds the gradients of "
                         "another model (other parameter names or shapes): make a new filter "
                         "for each run")


class GrokFastEMA:
    """GrokFast's exponential-moving-average filter (see the module's docstring)."""

    def __init__(self, alpha: float = 0.98, lamb: float = 2.0):
        self.alpha = validate("alpha", alpha, "alpha")
        self.lamb = validate("lamb", lamb, "weight_decay")
        self.averages: dict[str, torch.Tensor] = {}
        self.shapes: dict[str, tuple] = {}

    def check_model(self, model: nn.Module) -> None:
        """Refuse ``model`` if this filter already holds another model's gradients."""
        _check_model(self.shapes, model)

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
        torch._foreach_add_(grads, [self.averages[name] for name in names], alpha=self.lamb)


class GrokFastMA:
    """GrokFast's moving-average filter over a window of past gradients (see the module's
    docstring); with ``warmup`` (the default, as in the reference code) nothing is amplified
    until the window is full."""

    def __init__(self, window: int = 100, lamb: float = 5.0, warmup: bool = True):
        check_int("window", window)
        self.window, self.warmup = window, bool(warmup)
        self.lamb = validate("lamb", lamb, "weight_decay")
        self.history: dict[str, deque[torch.Tensor]] = {}
        self.sums: dict[str, torch.Tensor] = {}
        self.shapes: dict[str, tuple] = {}

    def check_model(self, model: nn.Module) -> None:
        """Refuse ``model`` if this filter already holds another model's gradients."""
        _check_model(self.shapes, model)

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
                grad.add_(total, alpha=self.lamb / len(past))
