"""The one training loop of the book, and the ``History`` it returns.

Every chapter trains through :func:`train`: full batch (the papers' default, one step per epoch)
or minibatches, AdamW unless told otherwise, an optional gradient transform between backward
and the optimizer step (where GrokFast and friends plug in), evaluation every ``eval_every``
epochs, an early stop once test accuracy holds above a target, and a progress bar.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from grokbook.checks import check_int
from grokbook.ensemble import (
    Ensemble,
    StackedAdamW,
    member_accuracies,
    member_losses,
    per_member,
    stack_data,
)
from grokbook.history import METRICS, History
from grokbook.measures import weight_norm

__all__ = ["METRICS", "History", "train"]

def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; anything else is passed to torch."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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


def _warmup_factor(step: int, warmup_steps: int) -> float:
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
    """
    check_int("epochs", epochs, minimum=0)
    check_int("eval_every", eval_every)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None (full batch) or a positive integer, "
                         f"got {batch_size!r}")
    if stop_acc is not None and not 0.0 < stop_acc <= 1.0:
        raise ValueError(f"stop_acc must lie in (0, 1] or be None, got {stop_acc!r}")
    check_int("stop_patience", stop_patience)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known losses: {', '.join(LOSSES)}")
    loss_fn, accuracy_fn = LOSSES[loss]

    if isinstance(model, (list, tuple)):
        unsupported = {"batch_size": batch_size, "optimizer": optimizer,
                       "grad_transform": grad_transform, "measures": measures,
                       "callback": callback, "loss": loss != "cross_entropy"}
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

    def optimizer_step(loss: torch.Tensor) -> None:
        nonlocal step
        if warmup_steps:
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * _warmup_factor(step, warmup_steps)
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
        if not all(map(math.isfinite, (train_loss, test_loss, history.weight_norm[-1]))):
            history.stopped = "diverged"  # a non-finite loss or weight: nothing more to learn
            return True
        if streak >= stop_patience:
            history.stopped = "target"
            return True
        if callback is not None and callback(history):
            history.stopped = "callback"
            return True
        return False

    start = time.perf_counter()
    with tqdm(total=epochs, desc=desc, disable=not progress_enabled(progress),
              leave=False) as bar:
        for epoch in range(epochs + 1):
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
    history.seconds = time.perf_counter() - start
    history.config["steps"] = step
    return history


def _train_ensemble(models, data, *, epochs, lr, weight_decay, betas, warmup_steps, eval_every,
                    stop_acc, stop_patience, device, progress, desc) -> list[History]:
    """The loop of :func:`train` for K models at once: the same steps, vectorized."""
    ensemble = Ensemble(models).to(device)
    k = len(ensemble)
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
                    diverged = not all(map(math.isfinite, (metrics[0], metrics[2], metrics[4])))
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
            optimizer.step(_warmup_factor(step, warmup_steps))
            step += 1
            bar.update(1)
    ensemble.write_back()
    seconds = time.perf_counter() - start
    for i, history in enumerate(histories):
        history.seconds = seconds
        if i in active:
            history.config["steps"] = step
    return histories
