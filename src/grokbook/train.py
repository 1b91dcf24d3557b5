"""The one training loop of the book, and the ``History`` it returns.

Every chapter trains through :func:`train`: full batch (the papers' default, one step per epoch)
or minibatches, AdamW unless told otherwise, an optional gradient transform between backward
and the optimizer step (where GrokFast and friends plug in), evaluation every ``eval_every``
epochs, an early stop once test accuracy holds above a target, and a progress bar.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path

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
    member_accuracies,
    member_losses,
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
    """Ctrl-C during training: ``history`` holds what the run measured until then."""

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

    The activations of one example are measured by a forward pass on it (no gradients, no
    randomness), then scaled: ``batch_rows`` examples (default: the whole training set) kept
    for backward, the largest layer's output for a whole split at evaluation, times
    ``copies`` (the members of an ensemble)."""
    outputs: list[int] = []

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            outputs.append(output.numel() * output.element_size())

    where = next((p.device for p in model.parameters()), data.x_train.device)
    leaves = [m for m in model.modules() if not any(m.children())] or [model]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(data.x_train[:1].to(where))
    finally:
        for hook in hooks:
            hook.remove()
    rows = max(len(data.y_train), len(data.y_test))
    batch = len(data.y_train) if batch_rows is None else min(batch_rows, len(data.y_train))
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    needed = copies * (3 * batch * sum(outputs) + 2 * rows * max(outputs, default=0)
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
    seed: int = 0,
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

    Given a list of models of one architecture, train them as one vectorized ensemble (see
    ``grokbook.ensemble``) and return one History per member: ``data``, ``lr`` and
    ``weight_decay`` may then be given once or once per member. Ensembles train full batch with
    AdamW; a member stops recording once its test accuracy holds above ``stop_acc``, and the run
    ends when every member has stopped. Each History's ``seconds`` is the whole ensemble's.

    Args:
        model: maps a batch of inputs to logits; trained in place. Or a list of such models.
        data: anything with ``x_train, y_train, x_test, y_test`` tensors (see ``grokbook.tasks``),
            or, for an ensemble, a list of those, one per member, of equal sizes.
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
            to change the gradients in place (GrokFast, NeuralGrok).
        measures: extra measures, ``name -> fn(model) -> float``, recorded at each evaluation.
        callback: called with the history after each evaluation; returning True stops training.
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
    check_seed(seed)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known losses: {', '.join(LOSSES)}")
    loss_fn, accuracy_fn = LOSSES[loss]

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
    if isinstance(model, (list, tuple)):
        unsupported = {"batch_size": batch_size, "optimizer": optimizer,
                       "grad_transform": grad_transform, "measures": measures,
                       "callback": callback, "loss": loss != "cross_entropy",
                       "checkpoint": checkpoint}
        for name, value in unsupported.items():
            if value:
                raise ValueError(f"{name} is not supported when training an ensemble; "
                                 "train the models one by one to use it")
        return _train_ensemble(
            model, data, epochs=epochs, lr=lr, weight_decay=weight_decay, betas=betas,
            warmup_steps=warmup_steps, eval_every=eval_every, stop_acc=stop_acc,
            stop_patience=stop_patience, device=resolve_device(device),
            progress=progress_enabled(progress), desc=desc)

    device = resolve_device(device)
    check_data(data)
    check_inputs(model, data, loss)
    check_run_memory(model, data, batch_size, device=device)
    model.to(device)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    n_train = len(y_train)
    full_batch = batch_size is None or batch_size >= n_train
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                                      betas=betas)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    generator = torch.Generator().manual_seed(seed)
    measures = measures or {}

    history = History(
        extras={name: [] for name in measures},
        config={"epochs": epochs, "loss": loss, "lr": lr, "weight_decay": weight_decay,
                "betas": list(betas), "batch_size": batch_size, "warmup_steps": warmup_steps,
                "seed": seed, "model": type(model).__name__, "n_train": n_train,
                "n_test": len(y_test)},
    )
    step = 0
    streak = 0
    first_epoch, seconds_before = 0, 0.0
    stateful = {"grad_transform": grad_transform, **(measures or {})}
    if checkpoint is not None:
        for name, part in stateful.items():
            if part is not None and not hasattr(part, "state_dict") and not _stateless(part):
                raise ValueError(f"{name} keeps state but has no state_dict(): it cannot be "
                                 "checkpointed; train without checkpoint= or give it one")
    if checkpoint is not None and resume and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint)
        _check_same_run(checkpoint, saved["history"].get("config"), history.config)
        try:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            for name, part in stateful.items():
                if hasattr(part, "load_state_dict") and name in saved["parts"]:
                    part.load_state_dict(saved["parts"][name])
        except (RuntimeError, KeyError, ValueError) as error:
            raise ValueError(f"checkpoint {checkpoint} holds another model or optimizer than "
                             f"this run's ({str(error).splitlines()[0]}); delete it to start "
                             "afresh, or resume with the settings it was saved with") from None
        generator.set_state(saved["generator"])
        history = History.from_dict(saved["history"], f"{checkpoint} history")
        step, streak = saved["step"], saved["streak"]
        first_epoch, seconds_before = saved["epoch"], saved["seconds"]

    if hasattr(grad_transform, "check_model"):  # a filter's state belongs to one model
        grad_transform.check_model(model)

    def save_state(next_epoch: int) -> None:
        save_checkpoint(checkpoint, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "parts": {name: part.state_dict() for name, part in stateful.items()
                      if hasattr(part, "state_dict")},
            "generator": generator.get_state(), "history": history.to_dict(), "step": step,
            "streak": streak, "epoch": next_epoch,
            "seconds": seconds_before + time.perf_counter() - start})

    def optimizer_step(loss: torch.Tensor) -> None:
        nonlocal step
        if warmup_steps:
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * warmup_factor(step, warmup_steps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_transform is not None:
            grad_transform(model)
        optimizer.step()
        step += 1

    def record(epoch: int, train_loss: float, train_acc: float) -> bool:
        """Append one evaluation; return True when training should stop."""
        nonlocal streak
        test_loss, test_acc = _evaluate(model, x_test, y_test, loss)
        history.append(epoch, train_loss, train_acc, test_loss, test_acc, weight_norm(model))
        with torch.no_grad():  # a measure that needs gradients enables them itself
            for name, measure in measures.items():
                history.extras[name].append(float(measure(model)))
        bar.set_postfix(train=f"{train_acc:.2f}", test=f"{test_acc:.2f}", refresh=False)
        streak = _streak(streak, test_acc, stop_acc)
        norm = history.weight_norm[-1]
        if not all(map(math.isfinite, (train_loss, test_loss, norm))) \
                or norm > GROWTH_LIMIT * max(history.weight_norm[0], 1e-12):
            history.stopped = "diverged"  # non-finite, or weights blown up: nothing to learn
            return True
        if streak >= stop_patience:
            history.stopped = "target"
            return True
        if callback is not None and callback(history):
            history.stopped = "callback"
            return True
        return False

    start = last_save = time.perf_counter()
    interrupt = _DeferredInterrupt() if checkpoint is not None else contextlib.nullcontext()
    try:
        with interrupt, tqdm(total=epochs, initial=first_epoch, desc=desc,
                             disable=not progress_enabled(progress), leave=False) as bar:
            for epoch in range(first_epoch, epochs + 1):
                measuring = epoch % eval_every == 0 or epoch == epochs
                last = epoch == epochs
                if full_batch:
                    # One forward pass serves both the update and the train-set measurement.
                    with torch.set_grad_enabled(not last):
                        output = model(x_train)
                        value = loss_fn(output, y_train)
                    if measuring:
                        accuracy = accuracy_fn(output.detach(), y_train).item()
                        if record(epoch, value.item(), accuracy):
                            break
                    if last:
                        break
                    optimizer_step(value)
                else:
                    if measuring and record(epoch, *_evaluate(model, x_train, y_train, loss)):
                        break
                    if last:
                        break
                    order = torch.randperm(n_train, generator=generator).to(device)
                    for i in range(math.ceil(n_train / batch_size)):
                        batch = order[i * batch_size:(i + 1) * batch_size]
                        optimizer_step(loss_fn(model(x_train[batch]), y_train[batch]))
                bar.update(1)
                if checkpoint is None:
                    continue
                now = time.perf_counter()
                if interrupt.requested or (checkpoint_every and (epoch + 1) % checkpoint_every
                                           == 0) or (checkpoint_seconds and now - last_save
                                                     >= checkpoint_seconds):
                    save_state(epoch + 1)
                    last_save = now
                if interrupt.requested:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        history.stopped = "interrupted"
        history.seconds = seconds_before + time.perf_counter() - start
        history.config["steps"] = step
        raise TrainingInterrupted(history) from None
    history.seconds = seconds_before + time.perf_counter() - start
    history.config["steps"] = step
    return history


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


def _train_ensemble(models, data, *, epochs, lr, weight_decay, betas, warmup_steps, eval_every,
                    stop_acc, stop_patience, device, progress, desc) -> list[History]:
    """The loop of :func:`train` for K models at once: the same steps, vectorized."""
    ensemble = Ensemble(models)
    k = len(ensemble)
    for i, one in enumerate(data if isinstance(data, (list, tuple)) else [data] * k):
        if i < k:  # a list of the wrong length is stack_data's to report
            check_data(one, f"data[{i}]" if isinstance(data, (list, tuple)) else "data")
            check_inputs(models[i], one)
    check_run_memory(models[0], data[0] if isinstance(data, (list, tuple)) else data, copies=k,
                     device=device)
    ensemble = ensemble.to(device)
    x_train, y_train, x_test, y_test = (t.to(device) for t in stack_data(data, k))
    lrs, wds = per_member(lr, k, "lr"), per_member(weight_decay, k, "weight_decay")
    optimizer = StackedAdamW(ensemble.parameters(), lrs.to(device), wds.to(device), betas)
    histories = [
        History(config={"epochs": epochs, "lr": lrs[i].item(), "weight_decay": wds[i].item(),
                        "betas": list(betas), "batch_size": None, "warmup_steps": warmup_steps,
                        "model": type(models[i]).__name__, "n_train": x_train.shape[1],
                        "n_test": x_test.shape[1], "member": i, "ensemble_size": k})
        for i in range(k)
    ]
    streaks = [0] * k
    active = list(range(k))
    step = 0
    start = time.perf_counter()
    with tqdm(total=epochs, desc=f"{desc} (x{k})", disable=not progress, leave=False) as bar:
        for epoch in range(epochs + 1):
            last = epoch == epochs
            with torch.set_grad_enabled(not last):
                logits = ensemble(x_train)
                losses = member_losses(logits, y_train)
            if epoch % eval_every == 0 or last:
                with torch.no_grad():
                    test_logits = ensemble(x_test)
                    columns = zip(losses.tolist(),
                                  member_accuracies(logits, y_train).tolist(),
                                  member_losses(test_logits, y_test).tolist(),
                                  member_accuracies(test_logits, y_test).tolist(),
                                  ensemble.weight_norms().tolist())
                for i, metrics in enumerate(columns):
                    if i not in active:
                        continue
                    histories[i].append(epoch, *metrics)
                    streaks[i] = _streak(streaks[i], metrics[3], stop_acc)
                    first_norm = histories[i].weight_norm[0]
                    diverged = not all(map(math.isfinite, (metrics[0], metrics[2], metrics[4]))) \
                        or metrics[4] > GROWTH_LIMIT * max(first_norm, 1e-12)
                    if diverged or streaks[i] >= stop_patience:
                        histories[i].stopped = "diverged" if diverged else "target"
                        active.remove(i)
                        histories[i].config["steps"] = step
                bar.set_postfix(running=len(active), refresh=False)
                if not active:
                    break
            if last:
                break
            optimizer.zero_grad()
            losses.sum().backward()
            optimizer.step(warmup_factor(step, warmup_steps))
            step += 1
            bar.update(1)
    ensemble.write_back()
    seconds = time.perf_counter() - start
    for i, history in enumerate(histories):
        history.seconds = seconds
        if i in active:
            history.config["steps"] = step
    return histories
