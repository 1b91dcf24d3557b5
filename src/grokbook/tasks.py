"""Data sets as tensors: modular arithmetic tables (a o b) mod p, sparse parity and digits.

Grokking was found on tiny algorithmic tasks (Power et al., 2022): the whole table of
``(a, b) -> (a o b) mod p`` is known, a random fraction of it is shown to the network, and the
rest is the test set. Everything here is a pure function of its arguments: the same seed gives
the same split on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from grokbook.checks import check_int, check_memory, check_seed


def is_prime(n: int) -> bool:
    """Whether ``n`` is a prime number (trial division; the moduli here are small)."""
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def primitive_root(p: int) -> int:
    """The smallest generator ``g`` of the multiplicative group mod the prime ``p``: the powers
    ``g^0, g^1, ..., g^(p-2)`` run through every nonzero number once."""
    check_int("p", p, minimum=3)
    if not is_prime(p):
        raise ValueError(f"p must be a prime (the group of nonzero numbers mod p is cyclic only "
                         f"then), got p={p}")
    factors = {d for d in range(2, p) if (p - 1) % d == 0 and is_prime(d)}
    return next(g for g in range(2, p) if all(pow(g, (p - 1) // q, p) != 1 for q in factors))


def discrete_log_order(p: int) -> list[int]:
    """The nonzero numbers mod the prime ``p`` in the order ``g^0, g^1, ..., g^(p-2)``.

    In this order multiplication is addition: ``g^i * g^j = g^(i+j mod p-1)``. So a network
    that multiplies mod p can use the same Fourier features as one that adds, over the discrete
    logarithm instead of the number (0 aside).
    """
    g = primitive_root(p)
    return [pow(g, i, p) for i in range(p - 1)]


@dataclass(frozen=True)
class Operation:
    """One binary operation mod p.

    ``fn`` maps integer tensors ``a, b`` and the modulus to ``(a o b) mod p``; ``needs_prime``
    says whether the table only makes sense for prime p (inverses for division, the cyclic group
    for multiplication); ``nonzero_b`` excludes ``b = 0`` (division).
    """

    formula: str
    fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
    needs_prime: bool = False
    nonzero_b: bool = False


def _divide(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    inverse = torch.tensor([pow(int(v), p - 2, p) if v else 0 for v in range(p)])
    return (a * inverse[b]) % p


OPERATIONS: dict[str, Operation] = {
    "add": Operation("a + b", lambda a, b, p: (a + b) % p),
    "sub": Operation("a - b", lambda a, b, p: (a - b) % p),
    "mul": Operation("a * b", lambda a, b, p: (a * b) % p, needs_prime=True),
    "div": Operation("a / b", _divide, needs_prime=True, nonzero_b=True),
    "sum_sq": Operation("a^2 + b^2", lambda a, b, p: (a * a + b * b) % p),
    "quad": Operation("a^2 + ab + b^2", lambda a, b, p: (a * a + a * b + b * b) % p),
    "sq_sub": Operation("a^2 - b", lambda a, b, p: (a * a - b) % p),
    "cube_add": Operation("a^3 + ab", lambda a, b, p: (a * a * a + a * b) % p),
}


@dataclass(frozen=True)
class ModularData:
    """A train/test split of the table of ``(a o b) mod p``.

    ``x_*`` hold operand tokens, shape ``(n, 2)``, values in ``0..p-1``; ``y_*`` the answers.
    """

    op: str
    p: int
    frac: float
    seed: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_classes(self) -> int:
        return self.p

    @property
    def vocab_size(self) -> int:
        return self.p

    def __repr__(self) -> str:
        formula = OPERATIONS[self.op].formula
        return (f"ModularData({formula} mod {self.p}: {len(self.y_train)} train, "
                f"{len(self.y_test)} test, seed {self.seed})")


def check_modular(op: str, p: int, frac: float, seed: int = 0) -> None:
    """Check the arguments of :func:`modular_arithmetic` without building anything: a bad one
    is a ``ValueError`` naming it; a table too large for this machine's memory is refused."""
    if not isinstance(op, str) or op not in OPERATIONS:
        raise ValueError(f"unknown op {op!r}; known operations: {', '.join(OPERATIONS)}")
    operation = OPERATIONS[op]
    check_int("p", p, minimum=2)
    if operation.needs_prime and not is_prime(p):
        raise ValueError(f"p must be prime for op {op!r} ({operation.formula}), got p={p}: "
                         "without a prime modulus the table is not a group")
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 < frac < 1.0:
        raise ValueError(f"frac must be a number strictly between 0 and 1, got {frac!r}")
    check_seed(seed)
    check_memory(p * p * 40, f"the table of (a op b) mod {p} ({p * p:,} pairs)")


def modular_arithmetic(op: str = "add", p: int = 97, frac: float = 0.3,
                       seed: int = 0) -> ModularData:
    """The table of ``(a op b) mod p``, split at random into train and test.

    Args:
        op: one of ``OPERATIONS`` (``"add"``, ``"sub"``, ``"mul"``, ``"div"``, ...).
        p: the modulus, at least 2; prime where the operation needs it (``mul``, ``div``).
        frac: the fraction of the table used for training, strictly between 0 and 1.
        seed: seeds the random split (the same seed gives the same split).

    Raises:
        ValueError: naming the bad parameter and what is allowed.
    """
    check_modular(op, p, frac, seed)
    operation = OPERATIONS[op]
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    if operation.nonzero_b:
        a, b = a[b != 0], b[b != 0]
    x = torch.stack([a, b], dim=1)
    y = operation.fn(a, b, p)

    n_train = round(frac * len(y))
    if not 0 < n_train < len(y):
        raise ValueError(f"frac={frac} leaves an empty train or test set for p={p} "
                         f"({len(y)} pairs in all)")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=generator)
    train, test = order[:n_train], order[n_train:]
    return ModularData(op, p, frac, seed, x[train], y[train], x[test], y[test])


HOLDOUTS = ("none", "square", "strip")


@dataclass(frozen=True)
class CoverageData(ModularData):
    """A split of the table of ``(a o b) mod p`` with a region held out of training
    (:func:`coverage_split`). Operand ``b`` is token ``p + b``: the two operands have separate
    tokens, so a first operand of the strip appears in no training pair at all."""

    holdout: str = "square"
    k: int = 0

    @property
    def vocab_size(self) -> int:
        return 2 * self.p

    def __repr__(self) -> str:
        formula = OPERATIONS[self.op].formula
        return (f"CoverageData({formula} mod {self.p}, {self.holdout} k={self.k} held out: "
                f"{len(self.y_train)} train, {len(self.y_test)} test, seed {self.seed})")


def _check_holdout(holdout: str) -> None:
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout must be one of {', '.join(map(repr, HOLDOUTS))}, "
                         f"got {holdout!r}")


def held_out(a: torch.Tensor, b: torch.Tensor, holdout: str, k: int) -> torch.Tensor:
    """Which pairs ``(a, b)`` (operand values, not tokens) the region ``holdout`` holds out:
    ``"square"`` those with ``a <= k`` and ``b <= k``, ``"strip"`` those with ``a <= k``,
    ``"none"`` no pair (the control: the same tokens and draw, nothing held out)."""
    _check_holdout(holdout)
    if holdout == "none":
        return torch.zeros_like(a, dtype=torch.bool)
    return (a <= k) & (b <= k) if holdout == "square" else a <= k


def check_coverage(op: str, p: int, frac: float, holdout: str, k: int, seed: int = 0) -> None:
    """Check :func:`coverage_split`'s arguments: a bad one is a ``ValueError`` naming it."""
    check_modular(op, p, frac, seed)
    if OPERATIONS[op].nonzero_b:
        raise ValueError(f"op must be an operation defined for every b (not {op!r}) for a "
                         "coverage split")
    _check_holdout(holdout)
    check_int("k", k, minimum=0)
    if holdout == "none" and k != 0:
        raise ValueError(f"k must be 0 when holdout is 'none' (nothing is held out), got {k}")
    if k > p - 2:
        raise ValueError(f"k must lie in 0..{p - 2} for p={p} (the region must leave pairs to "
                         f"train on), got {k}")
    held = {"none": 0, "square": (k + 1) ** 2, "strip": (k + 1) * p}[holdout]
    n_train = round(frac * p * p)
    if n_train > p * p - held:
        raise ValueError(f"frac={frac} asks for {n_train} training pairs but the {holdout} "
                         f"k={k} leaves only {p * p - held} outside it; lower frac or k")


def coverage_split(op: str = "add", p: int = 97, frac: float = 0.3, holdout: str = "square",
                   k: int = 40, seed: int = 0) -> CoverageData:
    """Gu et al.'s data coverage split: every pair in the region ``holdout`` (see
    :func:`held_out`) goes to the test set, ``round(frac * p^2)`` training pairs are drawn at
    random from the other pairs, and the rest of the table is test too. The training set
    then covers the input space unevenly: test accuracy is capped, grokking may not happen.

    Tokens: operand ``a`` is token ``a``, operand ``b`` is token ``p + b`` (as in the reference
    code, whose strip offsets the second operand's tokens), so the vocabulary has ``2p``
    tokens and the strip's first operands ``0..k`` appear in no training pair: their
    embeddings feel only weight decay.
    """
    check_coverage(op, p, frac, holdout, k, seed)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    y = OPERATIONS[op].fn(a, b, p)
    x = torch.stack([a, b + p], dim=1)
    held = held_out(a, b, holdout, k)
    outside = (~held).nonzero().flatten()
    generator = torch.Generator().manual_seed(seed)
    chosen = outside[torch.randperm(len(outside), generator=generator)[:round(frac * p * p)]]
    train = torch.zeros(len(y), dtype=torch.bool)
    train[chosen] = True
    train_rows = train.nonzero().flatten()
    test_rows = (~train).nonzero().flatten()
    return CoverageData(op, p, frac, seed, x[train_rows], y[train_rows], x[test_rows],
                        y[test_rows], holdout, k)


@dataclass(frozen=True)
class ParityData:
    """Samples of (n, k)-sparse parity: ``x`` uniform on ``{+-1}^n_bits``, ``y`` the product of
    its first ``k`` bits (+-1, for the logistic loss)."""

    n_bits: int
    k: int
    seed: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __repr__(self) -> str:
        return (f"ParityData(({self.n_bits}, {self.k})-sparse parity: {len(self.y_train)} "
                f"train, {len(self.y_test)} test, seed {self.seed})")


def sparse_parity(n_bits: int = 40, k: int = 3, n_train: int = 1000, n_test: int = 2000,
                  seed: int = 0) -> ParityData:
    """(n_bits, k)-sparse parity (the GrokTransfer paper's Fig. 6c uses (40, 3), n = 1000):
    a network must find which ``k`` of the ``n_bits`` inputs matter, and their product.

    Raises:
        ValueError: for ``k`` outside ``1..n_bits`` or non-positive sizes.
    """
    check_int("n_bits", n_bits)
    check_int("n_train", n_train)
    check_int("n_test", n_test)
    check_int("k", k)
    if k > n_bits:
        raise ValueError(f"k must be at most n_bits ({n_bits}), got k={k}")
    check_seed(seed)
    check_memory((n_train + n_test) * n_bits * 12,
                 f"{n_train + n_test:,} samples of {n_bits}-bit parity")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n_train + n_test, n_bits), generator=generator).float() * 2 - 1
    y = x[:, :k].prod(dim=1)
    return ParityData(n_bits, k, seed, x[:n_train], y[:n_train], x[n_train:], y[n_train:])


DIGIT_PIXELS = 64
"""A digit picture's inputs: 8 x 8 grey levels (scikit-learn's bundled digits)."""
DIGIT_CLASSES = 10
DIGIT_IMAGES = 1797
"""How many pictures scikit-learn's bundled set holds: ``n_train + n_test`` may not exceed it."""


@dataclass(frozen=True)
class DigitsData:
    """Hand-written digits (8 x 8 grey levels scaled to [0, 1], 64 inputs) with labels 0-9."""

    seed: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __repr__(self) -> str:
        return (f"DigitsData({len(self.y_train)} train, {len(self.y_test)} test pictures, "
                f"seed {self.seed})")


def check_digits(n_train: int, n_test: int) -> None:
    """Refuse sizes the bundled set cannot provide (a clear error naming the parameter)."""
    check_int("n_train", n_train)
    check_int("n_test", n_test)
    if n_train + n_test > DIGIT_IMAGES:
        raise ValueError(f"n_train + n_test must be at most {DIGIT_IMAGES} (the pictures in "
                         f"scikit-learn's digits), got {n_train} + {n_test}")


def digits(n_train: int = 1000, n_test: int = 797, seed: int = 0) -> DigitsData:
    """Hand-written digits, the image task of the GrokTransfer paper's Fig. 14 at a CPU size:
    scikit-learn's bundled 8 x 8 digits (installed with the package, no download) instead of
    MNIST; ``n_train`` and ``n_test`` disjoint pictures drawn from ``seed``.

    Raises:
        ValueError: for sizes that are not positive or add up to more than the set holds.
    """
    check_digits(n_train, n_test)
    check_seed(seed)
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    order = torch.randperm(DIGIT_IMAGES, generator=torch.Generator().manual_seed(seed))
    x = (torch.tensor(pixels, dtype=torch.float32) / 16)[order]
    y = torch.tensor(labels, dtype=torch.long)[order]
    end = n_train + n_test
    return DigitsData(seed, x[:n_train], y[:n_train], x[n_train:end], y[n_train:end])


# ---- the XOR cluster problem of GrokTransfer's theory (chapter 3) ----------------------------
#
# Inputs x = [x_signal; x_noise] in p dimensions: two signal coordinates uniform on {+-1}^2 and
# p - 2 noise coordinates uniform on {+-eps}; the label is y = x_1 x_2, an XOR of the signs.

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
    check_seed(seed)
    check_memory((n_train + n_test) * p * 12, f"{n_train + n_test:,} XOR samples of dimension {p}")
    generator = torch.Generator().manual_seed(seed)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        signs = torch.randint(0, 2, (n, p), generator=generator).float() * 2 - 1
        x = torch.cat([signs[:, :2], eps * signs[:, 2:]], dim=1)
        return x, x[:, 0] * x[:, 1]

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return XorData(p, eps, seed, x_train, y_train, x_test, y_test)
