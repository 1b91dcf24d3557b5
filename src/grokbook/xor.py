"""The XOR cluster problem of GrokTransfer's theory (Sec. 3), and its two-layer ReLU networks.

Inputs ``x = [x_signal; x_noise]`` in ``p`` dimensions: two signal coordinates uniform on
``{+-1}^2`` and ``p - 2`` noise coordinates uniform on ``{+-eps}``; the label is
``y = x_1 x_2``, an XOR of the signs. In high dimension a wide two-layer ReLU network first fits
the training set through the noise coordinates, like a linear classifier, and tests near chance;
only later does it learn the four signal directions and generalize (Xu et al., 2024). A network
of three neurons cannot reach more than 75% (Lemma 3.1 of Xu et al., 2025), yet its weights,
used as the embedding of a wide network, make that network generalize in ONE gradient step
(Theorem 3.2). This module holds the data, the two networks and the measures that chapter 3
checks: the noise-to-signal ratio ``r_W`` and the alignment of neurons with the directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from grokbook.checks import check_int
from grokbook.train import History, train

# The four signal directions (+-1, +-1) / sqrt(2): two labelled +1, two labelled -1.
DIRECTIONS = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]) / math.sqrt(2)
DIRECTION_NAMES = ("(+,+)", "(-,-)", "(+,-)", "(-,+)")
# Lemma 3.1: no bias-free ReLU network of three neurons classifies more than this.
LEMMA_BOUND = 0.75


def _check_eps(eps: float) -> None:
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


@dataclass(frozen=True)
class XorData:
    """Train and test samples of the XOR cluster distribution; labels are +-1 floats."""

    p: int
    eps: float
    seed: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __repr__(self) -> str:
        return (f"XorData(p={self.p}, eps={self.eps}: {len(self.y_train)} train, "
                f"{len(self.y_test)} test, seed {self.seed})")


def xor_cluster(n_train: int, n_test: int, p: int, eps: float, seed: int = 0) -> XorData:
    """Sample ``n_train`` training and ``n_test`` test points of the XOR cluster distribution.

    Args:
        n_train, n_test: sample sizes, at least 1.
        p: the input dimension, at least 3 (two signal coordinates and some noise).
        eps: the size of each noise coordinate, ``>= 0``.
        seed: seeds the sample.
    """
    check_int("n_train", n_train)
    check_int("n_test", n_test)
    check_int("p", p, minimum=3)
    _check_eps(eps)
    generator = torch.Generator().manual_seed(seed)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        signs = torch.randint(0, 2, (n, p), generator=generator).float() * 2 - 1
        x = torch.cat([signs[:, :2], eps * signs[:, 2:]], dim=1)
        return x, x[:, 0] * x[:, 1]

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return XorData(p, eps, seed, x_train, y_train, x_test, y_test)


class TwoLayerReLU(nn.Module):
    """``f(x) = sum_j a_j relu(<w_j, x>)``: bias-free, one real output.

    Hidden weights ``w_j ~ N(0, w_init^2 I)``, output weights ``a_j ~ N(0, a_init^2)``, both
    trained. ``hidden.weight`` (``width x p``) is what GrokTransfer transfers.
    """

    def __init__(self, p: int, width: int, w_init: float, a_init: float, seed: int = 0):
        super().__init__()
        check_int("p", p, minimum=3)
        check_int("width", width)
        for name, value in {"w_init": w_init, "a_init": a_init}.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.hidden = nn.Linear(p, width, bias=False)
        self.output = nn.Linear(width, 1, bias=False)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.randn(width, p, generator=generator) * w_init)
            self.output.weight.copy_(torch.randn(1, width, generator=generator) * a_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(x))).squeeze(-1)


class TransferredNet(nn.Module):
    """Theorem 3.2's target: ``f(x) = sum_j a_j relu(<v_j, U^T x>)``.

    ``U`` (``p x k``, the weak model's hidden weights transposed) is fixed, the output weights
    ``a_j`` are fixed at +-1/sqrt(m) (half of each), and only ``V`` (``m x k``, entries uniform
    on ``{+-v_init}``) is trained.
    """

    def __init__(self, embedding: torch.Tensor, m: int, v_init: float, seed: int = 0):
        super().__init__()
        if embedding.dim() != 2:
            raise ValueError(f"embedding must be a p x k matrix, got shape "
                             f"{tuple(embedding.shape)}")
        check_int("m", m, minimum=2)
        if not v_init > 0:
            raise ValueError(f"v_init must be positive, got {v_init!r}")
        k = embedding.shape[1]
        generator = torch.Generator().manual_seed(seed)
        signs = torch.randint(0, 2, (m, k), generator=generator).float() * 2 - 1
        self.register_buffer("embedding", embedding.detach().float().clone())
        self.register_buffer("a", torch.where(torch.arange(m) % 2 == 0, 1.0, -1.0)
                             / math.sqrt(m))
        self.v = nn.Parameter(v_init * signs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.embedding @ self.v.T) @ self.a


def noise_to_signal(weight: torch.Tensor) -> float:
    """``r_W``: the root-mean-square noise weight over the root-mean-square signal weight,
    ``(||W_noise||_F / sqrt(p - 2)) / (||W_signal||_F / sqrt(2))`` for hidden weights ``W``
    of shape ``(width, p)``. Small means the neurons look at the signal, not the noise."""
    if weight.dim() != 2 or weight.shape[1] < 3:
        raise ValueError(f"weight must be (width, p) with p >= 3, got {tuple(weight.shape)}")
    p = weight.shape[1]
    noise = weight[:, 2:].norm() / math.sqrt(p - 2)
    signal = weight[:, :2].norm() / math.sqrt(2)
    return (noise / signal).item()


def alignment(weight: torch.Tensor) -> torch.Tensor:
    """Cosine of each neuron's signal part ``(w_1, w_2)`` with the four directions, in the
    order of ``DIRECTIONS``: shape ``(width, 4)``; 1 means the neuron points exactly there."""
    if weight.dim() != 2 or weight.shape[1] < 2:
        raise ValueError(f"weight must be (width, p) with p >= 2, got {tuple(weight.shape)}")
    signal = weight[:, :2]
    return signal @ DIRECTIONS.T / signal.norm(dim=1, keepdim=True).clamp_min(1e-30)


def covered_directions(weight: torch.Tensor, threshold: float = 0.9) -> list[str]:
    """The directions (names from ``DIRECTION_NAMES``) that some neuron points at, with cosine
    at least ``threshold``: Theorem 3.2's premise is a weak model covering three of the four."""
    cosines = alignment(weight)
    return [name for name, column in zip(DIRECTION_NAMES, cosines.T)
            if bool((column >= threshold).any())]


def fit(model: nn.Module, data: XorData, epochs: int, lr: float, weight_decay: float = 0.0,
        eval_every: int = 10, **options) -> History:
    """Full-batch gradient descent on the logistic loss, as in the theory: plain SGD with
    PyTorch's (coupled) weight decay, ``theta <- (1 - lr * weight_decay) theta - lr * grad``.
    ``options`` go to :func:`grokbook.train.train` (``measures``, ``callback``, ``desc``...)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    return train(model, data, epochs=epochs, loss="logistic", optimizer=optimizer,
                 eval_every=eval_every, **options)


def one_step(target: nn.Module, data: XorData, step: float) -> History:
    """Theorem 3.2's experiment: ONE gradient step of size ``step`` on the target, no weight
    decay. The History holds the accuracies before (epoch 0) and after (epoch 1) the step."""
    return fit(target, data, epochs=1, lr=step, eval_every=1, progress=False)
