"""Numbers that summarise a training run: when an accuracy is reached, the time gap, norms.

The *time gap* is the length of the memorization plateau, the GrokTransfer paper's yardstick:
the first epoch with 95% test accuracy minus the first epoch with 95% train accuracy. A long gap
is grokking; a gap near zero is generalizing as fast as fitting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

if TYPE_CHECKING:
    from grokbook.history import History


def weight_norm(model: nn.Module) -> float:
    """The L2 norm of all parameters of ``model`` taken together."""
    with torch.no_grad():
        return torch.sqrt(sum(p.detach().pow(2).sum() for p in model.parameters())).item()


def epochs_to(history: History, metric: str = "test_acc", threshold: float = 0.95) -> int | None:
    """The first recorded epoch at which ``metric`` reaches ``threshold``, or None if never
    (``History.first_epoch``; exact to the history's evaluation interval)."""
    return history.first_epoch(metric, threshold)


def time_gap(history: History, threshold: float = 0.95) -> int | None:
    """Epochs between reaching ``threshold`` train accuracy and the same test accuracy.

    None when test accuracy never reaches the threshold within the run (an unbounded gap).
    """
    train = epochs_to(history, "train_acc", threshold)
    test = epochs_to(history, "test_acc", threshold)
    if train is None or test is None:
        return None
    return test - train


def seconds_to(history: History, threshold: float = 0.95) -> float | None:
    """Wall time until test accuracy first reached ``threshold``: the run's seconds per epoch
    times the epochs it took (every full-batch epoch costs the same). None if it never did.

    A run that goes on after it generalized (to confirm it, or to its epoch budget) then costs
    what solving the task cost, not what the stopping rule added.
    """
    epochs = epochs_to(history, "test_acc", threshold)
    if epochs is None:
        return None
    return history.seconds * epochs / max(history.epoch[-1], 1)


def summary(history: History, threshold: float = 0.95) -> dict[str, int | float | None]:
    """The headline numbers of a run: epochs to ``threshold`` train and test accuracy, the time
    gap, the final accuracies, the epochs run and the wall time."""
    return {
        "epochs_to_train": epochs_to(history, "train_acc", threshold),
        "epochs_to_test": epochs_to(history, "test_acc", threshold),
        "time_gap": time_gap(history, threshold),
        "final_train_acc": history.train_acc[-1],
        "final_test_acc": history.test_acc[-1],
        "epochs": history.epoch[-1],
        "seconds": history.seconds,
    }


def describe(history: History, threshold: float = 0.95) -> str:
    """One line on a run: when it fit, when it generalized, the time gap, the speed.

    The speed is epochs per second of wall time; for a member of an ensemble, whose wall time is
    the whole ensemble's, it is the ensemble's.
    """
    stats = summary(history, threshold)

    def at(value: int | None) -> str:
        return "never" if value is None else f"epoch {value}"

    gap = stats["time_gap"]
    rate = history.config.get("steps", 0) / max(history.seconds, 1e-9)
    return (f"{threshold:.0%} train: {at(stats['epochs_to_train'])} | {threshold:.0%} test: "
            f"{at(stats['epochs_to_test'])} | time gap: {'-' if gap is None else gap} | "
            f"{rate:.0f} epochs/s")


def describe_seeds(histories: list[History], seeds, threshold: float = 0.95) -> str:
    """:func:`describe` for each run, one line per seed."""
    return "\n".join(f"seed {seed}: {describe(h, threshold)}" for seed, h in zip(seeds, histories))


def window_median(history: History, column: str, start: int | None,
                  end: int | None) -> float:
    """The median of ``column`` over the evaluations at epochs ``start..end`` (epoch 0
    excluded: a change measure has no previous value there); NaN for an empty or undefined
    window (``start`` or ``end`` None)."""
    if start is None or end is None:
        return float("nan")
    epochs = np.asarray(history.epoch)
    values = np.asarray(history.column(column), dtype=float)
    inside = (epochs >= start) & (epochs <= end) & (epochs > 0)
    return float(np.median(values[inside])) if inside.any() else float("nan")


def aligned(histories: list[History], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Put several runs' ``column`` on one epoch grid: ``(epochs, values)``, values ``(runs, T)``.

    The grid is the union of the runs' evaluation epochs; each run contributes its last value
    recorded at or before each grid epoch, so a run that stopped early (its test accuracy held
    above the target) is held at its final value.
    """
    if not histories:
        raise ValueError("histories must hold at least one History")
    epochs = np.unique(np.concatenate([np.asarray(h.epoch) for h in histories]))
    values = np.empty((len(histories), len(epochs)))
    for row, history in zip(values, histories):
        index = np.searchsorted(history.epoch, epochs, side="right") - 1
        row[:] = np.asarray(history.column(column), dtype=float)[np.clip(index, 0, None)]
    return epochs, values


class NTKChange:
    """How fast the empirical neural tangent kernel moves: ``||K_t - K_{t-1}||_F``.

    ``K_t(x1, x2) = <grad_theta sum_i f_i(x1), grad_theta sum_i f_i(x2)> / n_classes`` on a fixed
    probe set, as in the GrokTransfer paper's Fig. 3. Use an instance as a measure of
    :func:`grokbook.train.train`: each call computes the kernel at the current parameters and
    returns its Frobenius distance to the kernel of the previous call (0 on the first call), so
    ``t`` counts evaluations. A lazy (kernel) regime keeps it near 0; feature learning moves it.

    With ``relative=True`` the change is divided by ``||K_{t-1}||_F``. The raw change grows with
    the size of the kernel, which differs by orders of magnitude between embeddings and init
    scales; the relative change compares how fast the kernel *turns*, whatever its size.
    """

    def __init__(self, probe: torch.Tensor, n_classes: int, relative: bool = False):
        if probe.dim() < 2 or len(probe) < 2:
            raise ValueError(f"probe must be a batch of at least 2 inputs, "
                             f"got shape {tuple(probe.shape)}")
        self.probe = probe
        self.n_classes = n_classes
        self.relative = relative
        self.previous: torch.Tensor | None = None

    def kernel(self, model: nn.Module) -> torch.Tensor:
        """The empirical NTK on the probe set at ``model``'s current parameters, ``(M, M)``."""
        params = {name: p.detach() for name, p in model.named_parameters()}
        probe = self.probe.to(next(iter(params.values())).device)

        def summed_logits(params, x):
            return functional_call(model, params, (x.unsqueeze(0),)).sum()

        jacobians = vmap(jacrev(summed_logits), in_dims=(None, 0))(params, probe)
        jacobian = torch.cat([j.flatten(1) for j in jacobians.values()], dim=1)
        return jacobian @ jacobian.T / self.n_classes

    def __call__(self, model: nn.Module) -> float:
        kernel = self.kernel(model)
        if self.previous is None:
            change = 0.0
        else:
            change = (kernel - self.previous).norm().item()
            if self.relative:
                change /= max(self.previous.norm().item(), 1e-30)
        self.previous = kernel
        return change
