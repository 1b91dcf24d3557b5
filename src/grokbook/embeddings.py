"""Fixed input embeddings of the numbers 0..p-1: the tables of chapter 2.

Section 2.1 of the GrokTransfer paper (Xu et al., 2025) trains the same FNN on a+b mod p with a
FIXED embedding of each operand and finds that the embedding decides whether generalization is
delayed. The tables here: one-hot, binary, Fourier and a pretrained text embedding of each
number's name (stored in the package); any other table comes in through :func:`from_table`.
Every table's rows are scaled to unit norm, as in the paper, so the embeddings differ in
geometry, not in size. A network reads a table through ``models.FixedEmbedding``; measures of a
table's geometry (principal components, Fourier spectrum) live in ``measures``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

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
    if not torch.isfinite(table).all():
        raise ValueError("table holds NaN or infinite entries: an embedding must be finite")
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


