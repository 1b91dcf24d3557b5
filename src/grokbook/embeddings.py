"""Fixed input embeddings of the numbers 0..p-1, and the module that feeds them to a network.

Section 2.1 of the GrokTransfer paper (Xu et al., 2025) trains the same FNN on a+b mod p with a
FIXED embedding of each operand and finds that the embedding decides whether generalization is
delayed. The tables here: one-hot, binary, Fourier; a table computed elsewhere (a pretrained text
embedding) comes in through :func:`from_table`. Every table's rows are scaled to unit norm, as in
the paper, so the embeddings differ in geometry, not in size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from grokbook.checks import check_int

FIRST_PRIMES = (2, 3, 5, 7, 11, 13, 17)


def unit_rows(table: torch.Tensor) -> torch.Tensor:
    """``table`` with every row divided by its L2 norm; a zero row is an error, not a NaN."""
    norms = table.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        zero = torch.nonzero(norms[:, 0] == 0)[:, 0].tolist()
        raise ValueError(f"table has zero rows {zero}; they cannot be scaled to unit norm")
    return table / norms


def one_hot(p: int) -> torch.Tensor:
    """The identity: every number its own direction, no structure at all. Shape ``(p, p)``."""
    check_int("p", p, minimum=2)
    return torch.eye(p)


def binary(p: int) -> torch.Tensor:
    """The ``ceil(log2 p)`` bits of each number as +-1 (not 0/1, so that 0 is not the zero
    vector), unit rows. Shape ``(p, ceil(log2 p))``."""
    check_int("p", p, minimum=2)
    bits = math.ceil(math.log2(p))
    numbers = torch.arange(p).unsqueeze(1)
    table = ((numbers >> torch.arange(bits)) & 1).float() * 2 - 1
    return unit_rows(table)


def fourier(p: int, frequencies: tuple[int, ...] = FIRST_PRIMES) -> torch.Tensor:
    """cos and sin of ``2 pi k a / p`` for each frequency ``k``: the features in which modular
    addition is a rotation. Unit rows; shape ``(p, 2 * len(frequencies))``."""
    check_int("p", p, minimum=2)
    if not frequencies or any(not isinstance(k, int) or k < 1 for k in frequencies):
        raise ValueError(f"frequencies must be positive integers, got {frequencies!r}")
    angles = 2 * math.pi * torch.arange(p).unsqueeze(1) * torch.tensor(frequencies) / p
    return unit_rows(torch.cat([torch.cos(angles), torch.sin(angles)], dim=1))


def from_table(table, p: int) -> torch.Tensor:
    """A table computed elsewhere (e.g. a text embedding of each number's name), one row per
    number 0..p-1, checked and scaled to unit rows."""
    check_int("p", p, minimum=2)
    table = torch.as_tensor(table, dtype=torch.float32)
    if table.dim() != 2 or table.shape[0] != p:
        raise ValueError(f"table must have one row per number 0..{p - 1} (shape ({p}, d)), "
                         f"got shape {tuple(table.shape)}")
    return unit_rows(table)


def row_space(table: torch.Tensor) -> torch.Tensor:
    """The same table in coordinates of the space its rows span: shape ``(p, rank)``.

    ``p`` rows span at most ``p`` dimensions, so a 384-dimensional text embedding of 113 numbers
    can be rotated into 113 coordinates without changing any inner product between rows (the
    rotation is the table's right singular vectors). A network then reads the same geometry at
    a third of the cost.
    """
    if table.dim() != 2:
        raise ValueError(f"table must be 2-D (vocabulary x dimension), got shape "
                         f"{tuple(table.shape)}")
    u, s, _ = torch.linalg.svd(table.double(), full_matrices=False)
    rank = int((s > s[0] * 1e-6).sum())
    return (u[:, :rank] * s[:rank]).to(table.dtype)


def principal_components(table: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Project the centred rows of ``table`` on its top ``k`` principal directions.

    Returns ``(coordinates, explained)``: the ``(p, k)`` projections and the fraction of the
    variance each direction explains, so a 2-D picture says how much of the table it shows.
    """
    check_int("k", k)
    if table.dim() != 2 or k > min(table.shape):
        raise ValueError(f"k must be at most min(table.shape) = {min(table.shape)} for a 2-D "
                         f"table, got k={k} and shape {tuple(table.shape)}")
    centred = table.double() - table.double().mean(dim=0)
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    explained = s.pow(2) / s.pow(2).sum().clamp_min(1e-300)
    return (u[:, :k] * s[:k]).float(), explained[:k].float()


def fourier_spectrum(table: torch.Tensor, order: list[int] | None = None) -> torch.Tensor:
    """How a table's rows vary over the tokens, by frequency: the share of its (mean-free)
    power at each frequency ``k = 1, ..., n // 2`` of a discrete Fourier transform over the
    ``n`` rows taken in ``order`` (default: token order). Shares sum to 1.

    An embedding that adds mod p well is made of a few circles ``cos(2 pi k a / p)``,
    ``sin(2 pi k a / p)``: its spectrum has a few peaks. For multiplication, pass
    ``tasks.discrete_log_order(p)``: in that order the same picture appears.
    """
    if table.dim() != 2:
        raise ValueError(f"table must be 2-D (vocabulary x dimension), got shape "
                         f"{tuple(table.shape)}")
    rows = table.double() if order is None else table.double()[list(order)]
    power = torch.fft.rfft(rows, dim=0).abs().pow(2).sum(dim=1)[1:]
    if len(rows) % 2 == 0:  # the Nyquist frequency has no mirror image: count it once
        power[-1] /= 2
    return (power / power.sum().clamp_min(1e-300)).float()


def frequency_plane(table: torch.Tensor, k: int) -> torch.Tensor:
    """Each row of ``table`` seen in the plane where the table varies at frequency ``k``.

    The (mean-free) rows are projected on the two directions ``sum_a cos(2 pi k a / n) row_a``
    and ``sum_a sin(2 pi k a / n) row_a``, made orthonormal. A table holding a circle at
    frequency ``k`` shows it here as a circle, token ``a`` at angle ``2 pi k a / n``, however
    many other frequencies it also holds; principal components mix them. Returns ``(n, 2)``.
    """
    if table.dim() != 2:
        raise ValueError(f"table must be 2-D (vocabulary x dimension), got shape "
                         f"{tuple(table.shape)}")
    n = len(table)
    if not (isinstance(k, int) and 1 <= k <= n // 2):
        raise ValueError(f"k must be an integer frequency in 1..{n // 2}, got {k!r}")
    rows = table.double() - table.double().mean(dim=0)
    angles = 2 * math.pi * k * torch.arange(n, dtype=torch.float64) / n
    directions = torch.stack([angles.cos() @ rows, angles.sin() @ rows], dim=1)
    basis, _ = torch.linalg.qr(directions)
    return (rows @ basis).float()


TEXT_TABLE = Path(__file__).parent / "data" / "number_names_minilm.npy"


def text(p: int) -> torch.Tensor:
    """A pretrained text embedding of each number's English name (all-MiniLM-L6-v2, stored in
    the package for 0..112; see ``data/make_text_embedding.py``), reduced to its row space."""
    check_int("p", p)
    names = np.load(TEXT_TABLE, allow_pickle=False)
    if p > len(names):
        raise ValueError(f"p must be at most {len(names)} for the text embedding (the stored "
                         f"table has {len(names)} numbers), got {p}")
    return row_space(from_table(names[:p], p))


BUILDERS = {"one_hot": one_hot, "binary": binary, "fourier": fourier, "text": text}


def make_table(name: str, p: int) -> torch.Tensor:
    """A built-in table by name: ``"one_hot"``, ``"binary"``, ``"fourier"`` or ``"text"``."""
    if name not in BUILDERS:
        raise ValueError(f"unknown embedding {name!r}; known embeddings: {', '.join(BUILDERS)} "
                         "(or pass a table through embeddings.from_table)")
    return BUILDERS[name](p)


class FixedEmbedding(nn.Module):
    """Looks tokens up in a fixed table (a buffer: not trained, not scaled, not decayed)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        if table.dim() != 2:
            raise ValueError(f"table must be 2-D (vocabulary x dimension), "
                             f"got shape {tuple(table.shape)}")
        self.register_buffer("table", table.float().clone())

    @property
    def num_embeddings(self) -> int:
        return self.table.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.table.shape[1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table[tokens]
