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


def _gradients(model: nn.Module):
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and parameter.grad is not None:
            yield name, parameter.grad


class GrokFastEMA:
    """GrokFast's exponential-moving-average filter (see the module's docstring)."""

    def __init__(self, alpha: float = 0.98, lamb: float = 2.0):
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must lie in [0, 1), got {alpha!r}")
        self.alpha, self.lamb = alpha, lamb
        self.averages: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> None:
        for name, grad in _gradients(model):
            average = self.averages.get(name)
            if average is None:
                average = self.averages[name] = grad.detach().clone()
            else:
                average.mul_(self.alpha).add_(grad, alpha=1 - self.alpha)
            grad.add_(average, alpha=self.lamb)


class GrokFastMA:
    """GrokFast's moving-average filter over a window of past gradients (see the module's
    docstring); with ``warmup`` (the default, as in the reference code) nothing is amplified
    until the window is full."""

    def __init__(self, window: int = 100, lamb: float = 5.0, warmup: bool = True):
        check_int("window", window)
        self.window, self.lamb, self.warmup = window, lamb, warmup
        self.history: dict[str, deque[torch.Tensor]] = {}

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> None:
        for name, grad in _gradients(model):
            past = self.history.setdefault(name, deque(maxlen=self.window))
            past.append(grad.detach().clone())
            if not self.warmup or len(past) == self.window:
                grad.add_(torch.stack(tuple(past)).mean(0), alpha=self.lamb)
