"""Many small models trained as one: stacked parameters, a vectorized forward, a vectorized AdamW.

Grokking is a statement about distributions over seeds and hyperparameters, and the models are
tiny: one at a time, a CPU spends most of its time on Python and on matrices too small to keep it
busy. Stacking K models of one architecture along a leading *member* axis turns K small matrix
products into one batched product. Members may differ in seed, init scale, data split, learning
rate, weight decay and minibatch order; each member's result matches the same configuration
trained alone to float tolerance (the tests check it). Members that finish leave the stack
(:meth:`Ensemble.keep`), so that the rest run as a smaller, cheaper stack.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
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
        self.members = list(range(len(models)))  # the model behind each stack position
        self.params, self.buffers = stack_module_state(models)
        self._base = copy.deepcopy(models[0]).to("meta")
        self._forward = vmap(self._forward_one)

    def __len__(self) -> int:
        return len(self.members)

    def _forward_one(self, params, buffers, x):
        return functional_call(self._base, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(self.params, self.buffers, x)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def named_parameters(self):
        """``(name, stacked parameter)`` pairs: what a gradient transform reads (a leading
        member axis on every tensor)."""
        return iter(self.params.items())

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

    def member_model(self, position: int) -> nn.Module:
        """The model of the member at stack ``position``, holding that member's parameters
        now (to measure it as a model)."""
        self.write_back([position])
        return self.models[self.members[position]]

    def write_back(self, positions: Sequence[int] | None = None) -> None:
        """Copy the trained parameters of the members at ``positions`` (default: all in the
        stack) into their original models."""
        with torch.no_grad():
            for k in range(len(self)) if positions is None else positions:
                model = self.models[self.members[k]]
                for name, parameter in model.named_parameters():
                    parameter.copy_(self.params[name][k])

    def keep(self, positions: Sequence[int]) -> None:
        """Keep only the members at ``positions`` in the stack; the others' models get their
        parameters first. Parameters become new leaf tensors (optimizers must be told)."""
        dropped = [k for k in range(len(self)) if k not in positions]
        self.write_back(dropped)
        index = torch.tensor(list(positions), device=next(iter(self.params.values())).device)
        for group in (self.params, self.buffers):
            for name, value in group.items():
                group[name] = value.detach()[index].requires_grad_(value.requires_grad)
        self.members = [self.members[k] for k in positions]


class PerMember:
    """Single-model gradient transforms serving a stack, one per member: ``transforms[k]`` is
    called with member ``k``'s own model, holding that member's parameters and, as its
    gradients, views of the member's slice of the stack's gradients (so that what it changes in
    place lands in the stack). Any transform of one model (NeuralGrok, per-tensor
    normalisation) then serves a stack, each member's exactly as in its run alone, at the cost
    of one call per member and step.

    Pass it as ``train(models, ..., grad_transform=PerMember([...]))``.
    """

    stackable = True

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)
        if not self.transforms or not all(callable(t) for t in self.transforms):
            raise ValueError("transforms must be one callable transform per member")

    def check_model(self, ensemble: Ensemble) -> None:
        """One transform per member, and each accepts its member's model."""
        if len(self.transforms) != len(ensemble):
            raise ValueError(f"grad_transform: PerMember holds {len(self.transforms)} "
                             f"transforms, but the stack has {len(ensemble)} members")
        for k, transform in enumerate(self.transforms):
            if hasattr(transform, "check_model"):
                transform.check_model(ensemble.models[ensemble.members[k]])

    def keep_members(self, index: torch.Tensor) -> None:
        self.transforms = [self.transforms[k] for k in index.tolist()]

    def __call__(self, ensemble: Ensemble) -> None:
        for k, transform in enumerate(self.transforms):
            model = ensemble.member_model(k)
            views = {}
            for name, parameter in model.named_parameters():
                stacked = ensemble.params[name]
                views[name] = stacked.grad[k] if stacked.grad is not None else None
                parameter.grad = views[name]
            transform(model)
            for name, parameter in model.named_parameters():
                if parameter.grad is not views[name] and views[name] is not None:
                    views[name].copy_(parameter.grad)  # a transform that set a new gradient
                parameter.grad = None  # the stack's gradients stay the only copy


class StackedAdamW:
    """AdamW (PyTorch's update, decoupled weight decay) over stacked parameters, with a learning
    rate and a weight decay per member.

    Each member's update is PyTorch's ``torch.optim.AdamW`` (its single-tensor CPU path) to the
    bit: the per-member factors are formed in double precision as PyTorch forms its Python
    scalars, rounded to the parameters' precision, and applied in the same order (``addcdiv``
    computes ``p + (value * m) / denom``). Since a stack's forward and backward give each member
    the gradients it would get alone (to float32 rounding: batched products may round
    differently from single ones, ``grokbook.engine``), a member follows its run alone step
    for step."""

    def __init__(self, params: list[torch.Tensor], lr: torch.Tensor, weight_decay: torch.Tensor,
                 betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8):
        self.params = params
        self.lr = lr.to(torch.float64)
        self.weight_decay = weight_decay.to(torch.float64)
        self.betas, self.eps = betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = 0

    def _per_member(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def step(self, lr_factor: float = 1.0) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        correction1 = 1 - beta1 ** float(self.steps)
        correction2_sqrt = (1 - beta2 ** float(self.steps)) ** 0.5
        lr = self.lr * lr_factor
        decay = 1 - lr * self.weight_decay  # where it is 1, the product leaves p as it is
        step_size = -(lr / correction1)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:  # a frozen parameter: PyTorch's AdamW leaves it as it is
                continue
            p.mul_(self._per_member(decay, p))
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (v.sqrt() / correction2_sqrt).add_(self.eps)
            p.add_(self._per_member(step_size, p) * m / denom)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def keep(self, index: torch.Tensor, params: list[torch.Tensor]) -> None:
        """Keep the state of the members at ``index``, for the stack's new ``params``."""
        self.params = params
        self.exp_avg = [m[index] for m in self.exp_avg]
        self.exp_avg_sq = [v[index] for v in self.exp_avg_sq]
        self.lr, self.weight_decay = self.lr[index], self.weight_decay[index]


def per_member(value: float | Sequence[float], k: int, name: str,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A hyperparameter given once or once per member, as a tensor of length ``k``."""
    values = [value] * k if isinstance(value, (int, float)) else list(value)
    if len(values) != k:
        raise ValueError(f"{name} must be one number or one per member ({k}), "
                         f"got {len(values)} values")
    return torch.tensor(values, dtype=dtype)


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
