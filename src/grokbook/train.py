"""The one training loop of the book, and the ``History`` it returns.

Every chapter trains through :func:`train`: full batch (the papers' default, one step per epoch)
or minibatches, AdamW unless told otherwise, an optional gradient transform between backward
and the optimizer step (where GrokFast and friends plug in), evaluation every ``eval_every``
epochs, an early stop once test accuracy holds above a target, and a progress bar.

One loop (:class:`_Loop`) serves one model and a stack of many (``grokbook.ensemble``): a
*learner* gives it the forward pass, the per-member losses and the optimizer step of either,
and the loop does the rest (evaluation, measures, early stops, callbacks, checkpoints) member by
member, a single run being the stack of one.

Training on one thread flushes denormal floats to zero (:func:`flushing_denormals`; restored
when training ends). Denormals, numbers below float32's smallest normal 1.2e-38, appear where
weight decay shrinks a weight that no gradient holds up (a dead unit, a collapsed network),
and x86 CPUs compute with them many times slower: chapter 4's weak model for a*b took 13.5 s
and 5.6 s flushed, a collapsed run of its target 34 s and 9.5 s for 1000 epochs. Flushed or
not, the 17 runs compared (chapters 4 and 5's, tuning cells) ended with the same losses and
accuracies to the bit, and the one History compared in full was the same at every evaluation:
the sums they enter are dominated by normal numbers. Only weights that were denormal read 0.
One thread is what the tests, the tuning, the sweeps and the engine's processes use; on more
threads the CPU flag, which is per thread, cannot be set and restored for torch's whole pool,
and training leaves it alone.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import threading
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from grokbook.checkpoint import load as load_checkpoint
from grokbook.checkpoint import save as save_checkpoint
from grokbook.checks import check_memory, check_seed
from grokbook.config import validate
from grokbook.ensemble import (
    Ensemble,
    StackedAdamW,
    per_member,
    stack_data,
)
from grokbook.files import dumps, loads, writable_folder
from grokbook.history import METRICS, History
from grokbook.measures import weight_norm

__all__ = ["METRICS", "History", "train"]

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
GROWTH_LIMIT = 1000.0  # weights this many times their starting norm: the run has diverged


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: ``history`` holds what the run measured until then (for a
    stack, a list: one History per member)."""

    def __init__(self, history: History):
        super().__init__("training interrupted")
        self.history = history


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"``
    and ``"mps"`` are checked against what this machine has, with a readable error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asks for a CUDA GPU, but this machine has "
                         "none (or this torch is the CPU build); use 'cpu' or 'auto'")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r}: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available on this machine; use 'cpu' or 'auto'")
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    return resolved


DATA_FIELDS = ("x_train", "y_train", "x_test", "y_test")


def check_data(data, name: str = "data") -> None:
    """``data`` must hold the four tensors a run reads (``grokbook.tasks``' data sets do)."""
    if isinstance(data, (list, tuple)):
        raise ValueError(f"{name} must be one data set for one model (a list of data sets is "
                         f"for an ensemble, a list of models), got a {type(data).__name__}")
    missing = [f for f in DATA_FIELDS if not isinstance(getattr(data, f, None), torch.Tensor)]
    if missing:
        raise ValueError(f"{name} must have tensors {', '.join(DATA_FIELDS)} (a data set of "
                         f"grokbook.tasks), got a {type(data).__name__} without "
                         f"{', '.join(missing)}")
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if len(x) != len(y) or not len(x):
            raise ValueError(f"{name}.x_{split} and {name}.y_{split} must hold the same, "
                             f"non-zero number of rows, got {len(x)} and {len(y)}")


def check_inputs(model: nn.Module, data, loss: str = "cross_entropy") -> None:
    """Say before training when ``model`` cannot read ``data`` or ``loss`` cannot score it:
    integer tokens for a token model (and no token beyond its vocabulary), real vectors for
    a vector model, pictures ``(n, channels, height, width)`` for a picture model, integer
    labels for cross-entropy and real ones (+-1) for the logistic loss."""
    reads = getattr(model, "inputs", None)
    floats = data.x_train.is_floating_point()
    if reads == "tokens" and floats:
        raise ValueError(f"data: {type(model).__name__} reads integer tokens, but "
                         f"data.x_train holds {data.x_train.dtype} vectors; use a model on "
                         "vectors (VectorFNN) for this data")
    if reads == "vectors" and not floats:
        raise ValueError(f"data: {type(model).__name__} reads real vectors, but data.x_train "
                         f"holds {data.x_train.dtype} tokens; use a token model (FNN, "
                         "Transformer) for this data")
    if loss == "cross_entropy" and data.y_train.is_floating_point():
        raise ValueError("loss 'cross_entropy' needs integer class labels, but data.y_train "
                         "holds real numbers; use loss='logistic' for labels +-1")
    if loss == "logistic" and not data.y_train.is_floating_point():
        raise ValueError("loss 'logistic' needs real labels +-1, but data.y_train holds "
                         "integer classes; use loss='cross_entropy'")
    if (reads == "images") != (data.x_train.dim() == 4):
        if reads == "images":
            raise ValueError(f"data: {type(model).__name__} reads pictures of shape (n, "
                             f"channels, height, width), but data.x_train has shape "
                             f"{tuple(data.x_train.shape)}")
        raise ValueError(f"data: data.x_train holds pictures (shape "
                         f"{tuple(data.x_train.shape)}), but {type(model).__name__} reads "
                         f"{reads or 'other inputs'}; use a model on pictures (SmallResNet)")
    check_tokens(model, data)


def check_tokens(model: nn.Module, data) -> None:
    """A model built for ``v`` tokens cannot read a table of more: say so before training."""
    if data.x_train.is_floating_point():
        return
    rows = getattr(model, "vocab_size", None)
    if rows is None:
        rows = getattr(getattr(model, "embed", None), "num_embeddings", None)
    largest = int(max(data.x_train.max(), data.x_test.max()))
    if rows is not None and largest >= rows:
        raise ValueError(f"the data holds token {largest}, but the model reads only tokens "
                         f"0..{rows - 1}: build it for the data's vocabulary "
                         f"(data.vocab_size = {getattr(data, 'vocab_size', largest + 1)})")


def check_run_memory(model: nn.Module, data, batch_rows: int | None = None, copies: int = 1,
                     device: torch.device | None = None) -> None:
    """Refuse a run whose activations and AdamW state would not fit the device's memory (see
    ``grokbook.checks.check_memory``; ``GROKBOOK_MEMORY_CHECK=off`` lifts the bound).

    The activations are measured by forward passes on one and on two examples (no gradients,
    no randomness): their difference is what each example adds, the rest a cost paid once per
    pass (a one-layer Transformer's table of keys per token, ``models.Block.last_from_table``).
    Then scaled: ``batch_rows`` examples (default: the whole training set) kept for backward,
    the largest layer's output for a whole split at evaluation, times ``copies`` (the members
    of an ensemble)."""
    where = next((p.device for p in model.parameters()), data.x_train.device)
    leaves = [m for m in model.modules() if not any(m.children())] or [model]

    def layer_outputs(n: int) -> list[int]:
        outputs: list[int] = []

        def count(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                outputs.append(output.numel() * output.element_size())

        hooks = [m.register_forward_hook(count) for m in leaves]
        try:
            with torch.no_grad():
                model(data.x_train[:n].to(where))
        finally:
            for hook in hooks:
                hook.remove()
        return outputs

    one = layer_outputs(1)
    two = layer_outputs(2) if len(data.x_train) >= 2 else []
    if len(two) == len(one):
        each = [max(b - a, 0) for a, b in zip(one, two)]
        once = sum(a - e for a, e in zip(one, each))
    else:
        each, once = one, 0
    rows = max(len(data.y_train), len(data.y_test))
    batch = len(data.y_train) if batch_rows is None else min(batch_rows, len(data.y_train))
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    needed = copies * (3 * (batch * sum(each) + once) + 2 * (rows * max(each, default=0) + once)
                       + 4 * parameters)
    check_memory(needed, f"training {copies} x {type(model).__name__} on {batch:,} examples "
                 "at once", device)


def _check_callables(**parts) -> None:
    for name, part in parts.items():
        if part is not None and not callable(part):
            raise ValueError(f"{name} must be callable (or None), got a {type(part).__name__}")


def progress_enabled(progress: bool | None) -> bool:
    """Show progress bars unless told not to, or ``GROKBOOK_PROGRESS=0`` is set (tests, builds)."""
    if progress is not None:
        return progress
    return os.environ.get("GROKBOOK_PROGRESS", "1") != "0"


def _class_accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == y).float().mean()


def _logistic_loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.softplus(-y * output.reshape(y.shape)).mean()


def _sign_accuracy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.sign(output.reshape(y.shape)) == y).float().mean()  # f = 0 counts as wrong


# name -> (loss, accuracy): cross-entropy over class logits with integer labels, or the logistic
# loss log(1 + exp(-y f(x))) of one real output with labels +-1 (the XOR chapter's).
LOSSES = {"cross_entropy": (F.cross_entropy, _class_accuracy),
          "logistic": (_logistic_loss, _sign_accuracy)}


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              loss: str = "cross_entropy") -> tuple[float, float]:
    loss_fn, accuracy_fn = LOSSES[loss]
    with torch.no_grad():
        output = model(x)
        return loss_fn(output, y).item(), accuracy_fn(output, y).item()


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The learning-rate multiplier of a linear warmup over ``warmup_steps`` steps."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def _streak(streak: int, test_acc: float, stop_acc: float | None) -> int:
    """Evaluations in a row with test accuracy at least ``stop_acc`` (0 without a target)."""
    return streak + 1 if stop_acc is not None and test_acc >= stop_acc else 0


def train(
    model: nn.Module | Sequence[nn.Module],
    data,
    *,
    epochs: int = 1000,
    lr: float | Sequence[float] = 1e-3,
    weight_decay: float | Sequence[float] = 1.0,
    betas: tuple[float, float] = (0.9, 0.98),
    batch_size: int | None = None,
    loss: str = "cross_entropy",
    warmup_steps: int = 0,
    eval_every: int = 10,
    stop_acc: float | None = None,
    stop_patience: int = 1,
    seed: int | Sequence[int] = 0,
    device: str | torch.device = "auto",
    optimizer: torch.optim.Optimizer | None = None,
    grad_transform: Callable[[nn.Module], None] | None = None,
    measures: dict[str, Callable[[nn.Module], float]] | None = None,
    callback: Callable[[History], bool | None] | None = None,
    progress: bool | None = None,
    desc: str = "train",
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    checkpoint_seconds: float | None = None,
    resume: bool = False,
) -> History | list[History]:
    """Train ``model`` on ``data`` (cross-entropy unless ``loss`` says otherwise) and return its
    :class:`History`.

    Given a list of models of one architecture, train them as one *stack* (``grokbook.ensemble``:
    parameters stacked along a member axis, one batched forward, a per-member AdamW) through the
    same loop, and return one History per member. A single model is the stack of one: every
    option below means the same for each member of a stack. ``data``, ``lr``, ``weight_decay``
    and ``seed`` may then be given once or once per member. A member stops once its test accuracy
    holds above ``stop_acc`` (or it diverges, or ``callback`` says so) and is then dropped from
    the stack, so that it stops costing; the run ends when every member has stopped. Each
    History's ``seconds`` is the whole stack's. A stack trains with its own AdamW and without
    checkpoints: ``optimizer`` and ``checkpoint`` are for single runs. On one thread, a member's
    History is the one its run alone gives to float32 rounding (the same gradients, and
    PyTorch's AdamW arithmetic): to the bit on some CPUs, in the last digits on others, whose
    batched products round differently from single ones (``grokbook.engine``); on more threads
    the batched kernels may also split sums differently.

    Args:
        model: maps a batch of inputs to logits; trained in place. Or a list of such models.
        data: anything with ``x_train, y_train, x_test, y_test`` tensors (see ``grokbook.tasks``),
            or, for a stack, a list of those, one per member, of equal sizes.
        epochs: passes over the training set; full batch makes it the number of steps.
        lr, weight_decay, betas: AdamW's (decoupled weight decay, as in PyTorch).
        batch_size: None for full batch, else minibatches reshuffled every epoch from ``seed``.
        loss: ``"cross_entropy"`` (class logits, integer labels) or ``"logistic"`` (one real
            output, labels +-1, accuracy of its sign).
        warmup_steps: linear learning-rate warmup over this many steps (Nanda et al. use 10).
        eval_every: measure every this many epochs (and at the first and the last).
        stop_acc: stop once test accuracy is at least this for ``stop_patience`` evaluations
            in a row; None trains for all ``epochs``.
        seed: seeds the minibatch order (the model's init is seeded where it is built).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        optimizer: an optimizer over ``model``'s parameters to use instead of AdamW.
        grad_transform: called as ``grad_transform(model)`` after backward, before the step,
            to change the gradients in place (GrokFast, NeuralGrok). A stack calls it with the
            :class:`~grokbook.ensemble.Ensemble`, whose gradients carry the member axis; only
            transforms that say they act on each member alone (``stackable = True``: GrokFast's
            filters, or :class:`~grokbook.ensemble.PerMember` holding one single-model
            transform per member, such as NeuralGrok) are accepted there.
        measures: extra measures, ``name -> fn(model) -> float``, recorded at each evaluation
            (for a stack, called with each member's model).
        callback: called with the history after each evaluation; returning True stops training
            (for a stack, with each member's history, and it stops that member).
        progress: show a progress bar; None shows one unless ``GROKBOOK_PROGRESS=0``.
        desc: the progress bar's label.
        checkpoint: a file (``.npz``) to save the whole run's state to (``grokbook.checkpoint``)
            every ``checkpoint_every`` epochs and/or ``checkpoint_seconds`` seconds, and when
            Ctrl-C stops the run; with ``resume``, a run whose checkpoint exists continues
            from it and ends with the History an uninterrupted run would have had (bit for
            bit on the same machine). Single runs only.
    """
    for name, value in (("epochs", epochs), ("eval_every", eval_every),
                        ("stop_acc", stop_acc), ("stop_patience", stop_patience),
                        ("warmup_steps", warmup_steps)):
        validate(name, value)
    if optimizer is None:  # a caller's own optimizer carries its own settings
        for name, values in (("lr", lr), ("weight_decay", weight_decay)):
            for value in (values if isinstance(values, (list, tuple)) else [values]):
                validate(name, value)
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        for value in betas:
            validate("betas", value, "beta")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be None (full batch) or a positive integer, "
                         f"got {batch_size!r}")
    stacked = isinstance(model, (list, tuple))
    for value in (seed if stacked and isinstance(seed, (list, tuple)) else [seed]):
        check_seed(value)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known losses: {', '.join(LOSSES)}")

    if checkpoint_every is not None:
        validate("checkpoint_every", checkpoint_every, "eval_every")
    if checkpoint_seconds is not None and not (isinstance(checkpoint_seconds, (int, float))
                                               and checkpoint_seconds > 0):
        raise ValueError(f"checkpoint_seconds must be a positive number, "
                         f"got {checkpoint_seconds!r}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer (or None for AdamW), got "
                         f"a {type(optimizer).__name__}")
    if measures is not None and not isinstance(measures, dict):
        raise ValueError(f"measures must be a dict name -> fn(model), got a "
                         f"{type(measures).__name__}")
    _check_callables(grad_transform=grad_transform, callback=callback,
                     **{f"measures[{k!r}]": v for k, v in (measures or {}).items()})
    if checkpoint is not None:
        checkpoint_file(checkpoint)
    device = resolve_device(device)
    def config(one: nn.Module, lr: float, weight_decay: float, seed: int) -> dict[str, Any]:
        """What a History records of its run's settings."""
        return {"epochs": epochs, "loss": loss, "lr": lr, "weight_decay": weight_decay,
                "betas": list(betas), "batch_size": batch_size, "warmup_steps": warmup_steps,
                "seed": seed, "model": type(one).__name__, "n_train": learner.n_train,
                "n_test": learner.n_test}

    if stacked:
        learner = _stack_learner(model, data, lr=lr, weight_decay=weight_decay, betas=betas,
                                 batch_size=batch_size, loss=loss, warmup_steps=warmup_steps,
                                 seed=seed, device=device, optimizer=optimizer,
                                 grad_transform=grad_transform, checkpoint=checkpoint)
        histories = [History(extras={name: [] for name in (measures or {})},
                             config={**config(model[i], learner.optimizer.lr[i].item(),
                                              learner.optimizer.weight_decay[i].item(),
                                              learner.seeds[i]),
                                     "member": i, "ensemble_size": learner.size})
                     for i in range(learner.size)]
        loop = _Loop(learner, histories, measures=measures or {}, callback=callback,
                     stop_acc=stop_acc, stop_patience=stop_patience)
        loop.run(epochs, eval_every, desc=f"{desc} (x{learner.size})",
                 progress=progress_enabled(progress))
        return histories

    check_data(data)
    check_inputs(model, data, loss)
    check_run_memory(model, data, batch_size, device=device)
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                                      betas=betas)
    learner = _OneModelLearner(model, data, optimizer, loss=loss, batch_size=batch_size,
                               warmup_steps=warmup_steps, seed=seed, device=device,
                               grad_transform=grad_transform)
    history = History(extras={name: [] for name in (measures or {})},
                      config=config(model, lr, weight_decay, seed))
    loop = _Loop(learner, [history], measures=measures or {}, callback=callback,
                 stop_acc=stop_acc, stop_patience=stop_patience)
    stateful = {"grad_transform": grad_transform, **(measures or {})}
    if checkpoint is not None:
        for name, part in stateful.items():
            if part is not None and not hasattr(part, "state_dict") and not _stateless(part):
                raise ValueError(f"{name} keeps state but has no state_dict(): it cannot be "
                                 "checkpointed; train without checkpoint= or give it one")
        loop.saver = _Checkpointer(checkpoint, learner, loop, stateful, checkpoint_every,
                                   checkpoint_seconds)
        if resume and Path(checkpoint).exists():
            loop.saver.restore()
    if hasattr(grad_transform, "check_model"):  # a filter's state belongs to one model
        grad_transform.check_model(model)
    loop.run(epochs, eval_every, desc=desc, progress=progress_enabled(progress))
    return loop.histories[0]


class _OneModelLearner:
    """One model and a torch optimizer: the ordinary run, a stack of one for :class:`_Loop`.

    Each method works on the members still training and returns one value per member."""

    size = 1
    stack = False

    def __init__(self, model: nn.Module, data, optimizer: torch.optim.Optimizer, *, loss: str,
                 batch_size: int | None, warmup_steps: int, seed: int, device: torch.device,
                 grad_transform: Callable[[nn.Module], None] | None):
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.loss_fn, self.accuracy_fn = LOSSES[loss]
        self.x_train, self.y_train = data.x_train.to(device), data.y_train.to(device)
        self.x_test, self.y_test = data.x_test.to(device), data.y_test.to(device)
        self.n_train, self.n_test = len(self.y_train), len(self.y_test)
        self.batch_size, self.warmup_steps = batch_size, warmup_steps
        self.full_batch = batch_size is None or batch_size >= self.n_train
        self.generator = torch.Generator().manual_seed(seed)
        self.device, self.grad_transform = device, grad_transform
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def losses(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(output, y)

    def values(self, losses: torch.Tensor) -> list[float]:
        return [losses.item()]

    def accuracies(self, output: torch.Tensor, y: torch.Tensor) -> list[float]:
        return [self.accuracy_fn(output, y).item()]

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[float]]:
        loss, accuracy = _evaluate(self.model, x, y, self.loss)
        return [loss], [accuracy]

    def weight_norms(self) -> list[float]:
        return [weight_norm(self.model)]

    def member(self, position: int) -> nn.Module:
        return self.model

    def batches(self):
        """This epoch's minibatches ``(x, y)``, reshuffled from the run's generator."""
        order = torch.randperm(self.n_train, generator=self.generator).to(self.device)
        for i in range(math.ceil(self.n_train / self.batch_size)):
            batch = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x_train[batch], self.y_train[batch]

    def step(self, losses: torch.Tensor, step: int) -> None:
        if self.warmup_steps:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * warmup_factor(step, self.warmup_steps)
        self.optimizer.zero_grad(set_to_none=True)
        losses.backward()
        if self.grad_transform is not None:
            self.grad_transform(self.model)
        self.optimizer.step()

    def keep(self, positions: list[int]) -> None:
        """A single run ends when its one member stops: nothing to drop."""

    def finish(self) -> None:
        """The model was trained in place."""


class _StackLearner:
    """K models as one :class:`~grokbook.ensemble.Ensemble` with a per-member AdamW: the same
    methods as a single run's, one value per member still training."""

    stack = True

    def __init__(self, ensemble: Ensemble, datas: tuple[torch.Tensor, ...],
                 optimizer: StackedAdamW, *, loss: str, batch_size: int | None,
                 warmup_steps: int, seeds: list[int], device: torch.device,
                 grad_transform: Callable[[nn.Module], None] | None):
        self.ensemble, self.optimizer = ensemble, optimizer
        self.loss_fn, self.accuracy_fn = LOSSES[loss]
        self.x_train, self.y_train, self.x_test, self.y_test = datas
        self.n_train, self.n_test = self.y_train.shape[1], self.y_test.shape[1]
        self.batch_size, self.warmup_steps = batch_size, warmup_steps
        self.full_batch = batch_size is None or batch_size >= self.n_train
        self.seeds = list(seeds)
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.device, self.grad_transform = device, grad_transform

    @property
    def size(self) -> int:
        return len(self.ensemble)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ensemble(x)

    def losses(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's loss, shape ``(K,)``: the very reduction its run alone makes (one call
        per member; a mean over the reshaped stack would sum in another order). Their sum has
        each member's gradient in that member's parameters."""
        return torch.stack([self.loss_fn(out, target) for out, target in zip(output, y)])

    def values(self, losses: torch.Tensor) -> list[float]:
        return losses.tolist()

    def accuracies(self, output: torch.Tensor, y: torch.Tensor) -> list[float]:
        return [self.accuracy_fn(out, target).item() for out, target in zip(output, y)]

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[float]]:
        with torch.no_grad():
            output = self.ensemble(x)
            return self.values(self.losses(output, y)), self.accuracies(output, y)

    def weight_norms(self) -> list[float]:
        return self.ensemble.weight_norms().tolist()

    def member(self, position: int) -> nn.Module:
        return self.ensemble.member_model(position)

    def batches(self):
        """This epoch's minibatches, each member's rows in its own order (its own seed)."""
        orders = torch.stack([torch.randperm(self.n_train, generator=g)
                              for g in self.generators]).to(self.device)
        rows = torch.arange(self.size, device=self.device)[:, None]
        for i in range(math.ceil(self.n_train / self.batch_size)):
            batch = orders[:, i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x_train[rows, batch], self.y_train[rows, batch]

    def step(self, losses: torch.Tensor, step: int) -> None:
        self.optimizer.zero_grad()
        losses.sum().backward()  # each member's gradient lands in that member's slice
        if self.grad_transform is not None:
            self.grad_transform(self.ensemble)
        self.optimizer.step(warmup_factor(step, self.warmup_steps))

    def keep(self, positions: list[int]) -> None:
        """Drop the members not in ``positions`` (their models get their parameters now)."""
        index = torch.tensor(positions, device=self.device)
        self.ensemble.keep(positions)
        self.optimizer.keep(index, self.ensemble.parameters())
        if hasattr(self.grad_transform, "keep_members"):
            self.grad_transform.keep_members(index)
        self.x_train, self.y_train, self.x_test, self.y_test = (
            t[index] for t in (self.x_train, self.y_train, self.x_test, self.y_test))
        self.generators = [self.generators[j] for j in positions]

    def finish(self) -> None:
        self.ensemble.write_back()


def _stack_learner(models: Sequence[nn.Module], data, *, lr, weight_decay, betas, batch_size,
                   loss, warmup_steps, seed, device, optimizer, grad_transform,
                   checkpoint) -> _StackLearner:
    """Check a stack's settings and data, and build its learner."""
    refused = {"optimizer": (optimizer, "a stack trains with its own per-member AdamW: give lr "
                             "and weight_decay, once or per member"),
               "checkpoint": (checkpoint, "checkpoints hold one run: train the models one by "
                              "one to checkpoint them")}
    for name, (value, why) in refused.items():
        if value is not None:
            raise ValueError(f"{name} is not supported when training a stack of models ({why})")
    if grad_transform is not None and not getattr(grad_transform, "stackable", False):
        raise ValueError(f"grad_transform: a {type(grad_transform).__name__} acts on one "
                         "model's gradients and cannot serve a stack; give one per member in "
                         "grokbook.ensemble.PerMember([...]), or one that acts on each member "
                         "alone (stackable = True: GrokFastEMA, GrokFastMA)")
    if not models:
        raise ValueError("model must be a model or a non-empty list of models, got an empty "
                         "list")
    ensemble = Ensemble(models)
    k = len(ensemble)
    for i, one in enumerate(data if isinstance(data, (list, tuple)) else [data] * k):
        if i < k:  # a list of the wrong length is stack_data's to report
            check_data(one, f"data[{i}]" if isinstance(data, (list, tuple)) else "data")
            check_inputs(models[i], one, loss)
    check_run_memory(models[0], data[0] if isinstance(data, (list, tuple)) else data,
                     batch_size, copies=k, device=device)
    seeds = [int(s) for s in per_member(seed, k, "seed", torch.int64)]
    lrs = per_member(lr, k, "lr", torch.float64)  # double, as PyTorch's AdamW forms its factors
    wds = per_member(weight_decay, k, "weight_decay", torch.float64)
    ensemble = ensemble.to(device)
    for one in models:  # measures and PerMember's transforms see member models on the device
        one.to(device)
    if hasattr(grad_transform, "check_model"):
        grad_transform.check_model(ensemble)
    return _StackLearner(ensemble, tuple(t.to(device) for t in stack_data(data, k)),
                         StackedAdamW(ensemble.parameters(), lrs.to(device), wds.to(device),
                                      betas),
                         loss=loss, batch_size=batch_size, warmup_steps=warmup_steps,
                         seeds=seeds, device=device, grad_transform=grad_transform)


@contextlib.contextmanager
def one_thread():
    """Torch computes on one thread inside, on as many as before after. Every single run of the
    experiments layer trains so (:func:`on_one_thread`): a sum split over two threads rounds
    differently, and the book's numbers would otherwise depend on the reader's core count
    (``grokbook.engine`` says how the cores are used instead)."""
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def on_one_thread(fn: Callable) -> Callable:
    """``fn`` run inside :func:`one_thread` (its cache key included, which names the thread
    count: ``grokbook.cache.machine``)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with one_thread():
            return fn(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def flushing_denormals():
    """Denormal floats flushed to zero inside, and the setting as it was after (see the module
    docstring), when torch computes on one thread. The flag is per thread: with more, the
    threads of torch's pool that exist keep theirs and those started inside would keep it
    after, so there the setting is left alone. Nothing changes where the CPU cannot flush."""
    if torch.get_num_threads() != 1:
        yield
        return
    before = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def denormals_flushed() -> bool:
    """Whether this thread's CPU flushes denormal floats to zero now, read from the CPU."""
    return torch.full((1,), 1e-40, dtype=torch.float32).mul(1.0).item() == 0.0


class _Loop:
    """The book's one training loop, for a learner of one model or a stack of K.

    Per epoch: a full-batch step (whose forward also measures the training set) or a pass of
    minibatches; every ``eval_every`` epochs, each member's evaluation, its measures, its early
    stop (target held, diverged, or its callback), and the members that stopped leave the stack.
    """

    def __init__(self, learner: _OneModelLearner | _StackLearner, histories: list[History], *,
                 measures: dict[str, Callable[[nn.Module], float]],
                 callback: Callable[[History], bool | None] | None, stop_acc: float | None,
                 stop_patience: int):
        self.learner, self.histories = learner, histories
        self.measures, self.callback = measures, callback
        self.stop_acc, self.stop_patience = stop_acc, stop_patience
        self.active = list(range(len(histories)))  # members still training, by stack position
        self.streaks = [0] * len(histories)
        self.step = 0
        self.first_epoch, self.seconds_before = 0, 0.0
        self.saver: _Checkpointer | None = None
        self.bar = None

    def record(self, epoch: int, train_losses: list[float],
               train_accs: list[float]) -> bool:
        """Append one evaluation to each member still training; drop the members that stop.
        Return True when none is left."""
        test_losses, test_accs = self.learner.evaluate(self.learner.x_test, self.learner.y_test)
        norms = self.learner.weight_norms()
        survivors = []
        for position, member in enumerate(self.active):
            history = self.histories[member]
            history.append(epoch, train_losses[position], train_accs[position],
                           test_losses[position], test_accs[position], norms[position])
            if self.measures:
                model = self.learner.member(position)
                with torch.no_grad():  # a measure that needs gradients enables them itself
                    for name, measure in self.measures.items():
                        history.extras[name].append(float(measure(model)))
            stopped = self._stopped(member, history)
            if stopped:
                history.stopped = stopped
                history.config["steps"] = self.step
            else:
                survivors.append(position)
        if self.learner.stack:
            self.bar.set_postfix(running=len(survivors), refresh=False)
        else:
            self.bar.set_postfix(train=f"{train_accs[0]:.2f}", test=f"{test_accs[0]:.2f}",
                                 refresh=False)
        if survivors and len(survivors) < len(self.active):
            self.learner.keep(survivors)
        self.active = [self.active[position] for position in survivors]
        return not self.active

    def _stopped(self, member: int, history: History) -> str | None:
        """Why ``member`` stops after its latest evaluation, or None."""
        self.streaks[member] = _streak(self.streaks[member], history.test_acc[-1], self.stop_acc)
        norm = history.weight_norm[-1]
        if not all(map(math.isfinite, (history.train_loss[-1], history.test_loss[-1], norm))) \
                or norm > GROWTH_LIMIT * max(history.weight_norm[0], 1e-12):
            return "diverged"  # non-finite, or weights blown up: nothing to learn
        if self.streaks[member] >= self.stop_patience:
            return "target"
        if self.callback is not None and self.callback(history):
            return "callback"
        return None

    def run(self, epochs: int, eval_every: int, *, desc: str, progress: bool) -> None:
        learner = self.learner
        self.start = time.perf_counter()
        saver = self.saver
        interrupt = _DeferredInterrupt() if saver is not None else contextlib.nullcontext()
        try:
            with flushing_denormals(), interrupt, tqdm(
                    total=epochs, initial=self.first_epoch, desc=desc, disable=not progress,
                    leave=False) as self.bar:
                for epoch in range(self.first_epoch, epochs + 1):
                    if self._epoch(epoch, epochs, eval_every):
                        break
                    self.bar.update(1)
                    if saver is not None:
                        saver.after_epoch(epoch, interrupt.requested)
                        if interrupt.requested:
                            raise KeyboardInterrupt
        except KeyboardInterrupt:
            for member in self.active:
                self.histories[member].stopped = "interrupted"
            self._close()
            learner.finish()
            raise TrainingInterrupted(self.histories[0] if not learner.stack
                                      else self.histories) from None
        self._close()
        learner.finish()

    def _epoch(self, epoch: int, epochs: int, eval_every: int) -> bool:
        """One epoch; True when training is over."""
        learner = self.learner
        measuring = epoch % eval_every == 0 or epoch == epochs
        last = epoch == epochs
        if learner.full_batch:
            # One forward pass serves both the update and the train-set measurement.
            with torch.set_grad_enabled(not last):
                output = learner.forward(learner.x_train)
                losses = learner.losses(output, learner.y_train)
            if measuring:
                size = learner.size
                if self.record(epoch, learner.values(losses),
                               learner.accuracies(output.detach(), learner.y_train)):
                    return True
                if learner.size < size and not last:  # members left: the survivors' forward
                    losses = learner.losses(learner.forward(learner.x_train), learner.y_train)
            if last:
                return True
            learner.step(losses, self.step)
            self.step += 1
        else:
            if measuring and self.record(epoch, *learner.evaluate(learner.x_train,
                                                                  learner.y_train)):
                return True
            if last:
                return True
            for x, y in learner.batches():
                learner.step(learner.losses(learner.forward(x), y), self.step)
                self.step += 1
        return False

    def _close(self) -> None:
        seconds = self.seconds_before + time.perf_counter() - self.start
        for member, history in enumerate(self.histories):
            history.seconds = seconds
            if member in self.active or not self.learner.stack:
                history.config["steps"] = self.step


class _Checkpointer:
    """Saves a single run's whole state (model, optimizer, stateful parts, minibatch generator,
    History, loop counters) and restores it, bit for bit."""

    def __init__(self, path, learner: _OneModelLearner, loop: _Loop, stateful: dict,
                 every: int | None, seconds: float | None):
        self.path, self.learner, self.loop, self.stateful = path, learner, loop, stateful
        self.every, self.seconds = every, seconds
        self.last_save = time.perf_counter()

    def restore(self) -> None:
        learner, loop = self.learner, self.loop
        saved = load_checkpoint(self.path)
        _check_same_run(self.path, saved["history"].get("config"), loop.histories[0].config)
        try:
            learner.model.load_state_dict(saved["model"])
            learner.optimizer.load_state_dict(saved["optimizer"])
            for name, part in self.stateful.items():
                if hasattr(part, "load_state_dict") and name in saved["parts"]:
                    part.load_state_dict(saved["parts"][name])
        except (RuntimeError, KeyError, ValueError) as error:
            raise ValueError(f"checkpoint {self.path} holds another model or optimizer than "
                             f"this run's ({str(error).splitlines()[0]}); delete it to start "
                             "afresh, or resume with the settings it was saved with") from None
        learner.generator.set_state(saved["generator"])
        loop.histories[0] = History.from_dict(saved["history"], f"{self.path} history")
        loop.step, loop.streaks[0] = saved["step"], saved["streak"]
        loop.first_epoch, loop.seconds_before = saved["epoch"], saved["seconds"]

    def save(self, next_epoch: int) -> None:
        learner, loop = self.learner, self.loop
        save_checkpoint(self.path, {
            "model": learner.model.state_dict(), "optimizer": learner.optimizer.state_dict(),
            "parts": {name: part.state_dict() for name, part in self.stateful.items()
                      if hasattr(part, "state_dict")},
            "generator": learner.generator.get_state(),
            "history": loop.histories[0].to_dict(), "step": loop.step,
            "streak": loop.streaks[0], "epoch": next_epoch,
            "seconds": loop.seconds_before + time.perf_counter() - loop.start})

    def after_epoch(self, epoch: int, interrupted: bool) -> None:
        now = time.perf_counter()
        if interrupted or (self.every and (epoch + 1) % self.every == 0) or (
                self.seconds and now - self.last_save >= self.seconds):
            self.save(epoch + 1)
            self.last_save = now


def checkpoint_file(path: str | Path) -> Path:
    """Check, before training, that a checkpoint can be written at ``path``: not a folder,
    in a folder that exists (or can be made) and takes files."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint must name a file, but {str(path)!r} is a folder")
    writable_folder(path.parent, "checkpoint folder")
    return path


def _check_same_run(checkpoint, saved: object, config: dict) -> None:
    """A checkpoint resumes only the run that saved it: the same settings (History.config)."""
    current = loads(dumps(config))
    if saved != current:
        saved = saved if isinstance(saved, dict) else {}
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        shown = ", ".join(f"{k}: {saved.get(k)!r} then, {current.get(k)!r} now"
                          for k in changed[:3])
        raise ValueError(f"checkpoint {checkpoint} was saved by a run with other settings "
                         f"({shown}); delete it to start afresh, or resume with the settings "
                         "it was saved with")


def _stateless(part: object) -> bool:
    """A plain function (a lambda measure, say) keeps no state between calls."""
    return callable(part) and not hasattr(part, "__dict__") or isinstance(
        part, types.FunctionType)


class _DeferredInterrupt:
    """While training with a checkpoint, Ctrl-C only raises a flag: the loop saves a consistent
    checkpoint at the end of the epoch, then stops. Outside the main thread (where signal
    handlers cannot be set) Ctrl-C acts at once."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def _handle(self, *_):
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *_):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
