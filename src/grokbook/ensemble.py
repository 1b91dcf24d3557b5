"""Many small models trained as one: stacked parameters, a vectorized forward, a vectorized AdamW.

Grokking is a statement about distributions over seeds and hyperparameters, and the models are
tiny: one at a time, a CPU spends most of its time on Python and on matrices too small to keep it
busy. Stacking K models of one architecture along a leading *member* axis turns K small matrix
products into one batched product. Members may differ in seed, init scale, data split, learning
rate and weight decay; each member's result matches the same configuration trained alone to
float tolerance (the tests check it).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class Ensemble:
    """K models of one architecture, their parameters stacked along a leading member axis.

    Calling it maps inputs of shape ``(K, n, ...)`` to logits of shape ``(K, n, classes)``.
    :meth:`write_back` copies the trained parameters into the original models.
    """

    def __init__(self, models: Sequence[nn.Module]):
        models = list(models)
        if not models:
            raise ValueError("models must hold at least one model")
        shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in models]
        if any(type(m) is not type(models[0]) or s != shapes[0]
               for m, s in zip(models, shapes)):
            raise ValueError("an ensemble's models must share one architecture "
                             "(same class, same parameter names and shapes)")
        self.models = models
        self.params, self.buffers = stack_module_state(models)
        self._base = copy.deepcopy(models[0]).to("meta")
        self._forward = vmap(self._forward_one)

    def __len__(self) -> int:
        return len(self.models)

    def _forward_one(self, params, buffers, x):
        return functional_call(self._base, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(self.params, self.buffers, x)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def to(self, device: torch.device) -> Ensemble:
        for group in (self.params, self.buffers):
            for name, value in group.items():
                moved = value.detach().to(device)
                group[name] = moved.requires_grad_(value.requires_grad)
        return self

    def weight_norms(self) -> torch.Tensor:
        """The L2 norm of each member's parameters, shape ``(K,)``."""
        with torch.no_grad():
            return torch.sqrt(sum(p.pow(2).flatten(1).sum(1) for p in self.parameters()))

    def write_back(self) -> None:
        """Copy each member's trained parameters into its original model."""
        with torch.no_grad():
            for k, model in enumerate(self.models):
                for name, parameter in model.named_parameters():
                    parameter.copy_(self.params[name][k])


class StackedAdamW:
    """AdamW (PyTorch's update, decoupled weight decay) over stacked parameters, with a learning
    rate and a weight decay per member."""

    def __init__(self, params: list[torch.Tensor], lr: torch.Tensor, weight_decay: torch.Tensor,
                 betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8):
        self.params = params
        self.lr, self.weight_decay = lr, weight_decay
        self.betas, self.eps = betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = 0

    def _per_member(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def step(self, lr_factor: float = 1.0) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        correction1 = 1 - beta1**self.steps
        correction2_sqrt = math.sqrt(1 - beta2**self.steps)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            lr = self._per_member(self.lr * lr_factor, p)
            p.mul_(1 - lr * self._per_member(self.weight_decay, p))
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (v.sqrt() / correction2_sqrt).add_(self.eps)
            p.sub_(m / denom * (lr / correction1))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def per_member(value: float | Sequence[float], k: int, name: str) -> torch.Tensor:
    """A hyperparameter given once or once per member, as a tensor of length ``k``."""
    values = [value] * k if isinstance(value, (int, float)) else list(value)
    if len(values) != k:
        raise ValueError(f"{name} must be one number or one per member ({k}), "
                         f"got {len(values)} values")
    return torch.tensor(values, dtype=torch.float32)


def stack_data(data, k: int) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)`` with a leading member axis: one data set shared by
    all members (expanded, no copy), or one per member (all of the same sizes)."""
    if isinstance(data, (list, tuple)):
        if len(data) != k:
            raise ValueError(f"data must be one data set or one per member ({k}), "
                             f"got {len(data)}")
        sizes = {(len(d.y_train), len(d.y_test)) for d in data}
        if len(sizes) > 1:
            raise ValueError(f"per-member data sets must have equal train and test sizes, "
                             f"got {sorted(sizes)}")
        return tuple(torch.stack([getattr(d, name) for d in data])
                     for name in ("x_train", "y_train", "x_test", "y_test"))
    return tuple(getattr(data, name).expand(k, *getattr(data, name).shape)
                 for name in ("x_train", "y_train", "x_test", "y_test"))


def member_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy, shape ``(K,)``; their sum has each member's own
    gradient in that member's parameters."""
    k, n, classes = logits.shape
    return F.cross_entropy(logits.reshape(k * n, classes), targets.reshape(k * n),
                           reduction="none").view(k, n).mean(1)


def member_accuracies(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == targets).float().mean(1)
