"""Numbers that summarise a training run: when an accuracy is reached, the time gap, norms,
the gradient's entropy (AGE).

The *time gap* is the length of the memorization plateau, the GrokTransfer paper's yardstick:
the first epoch with 95% test accuracy minus the first epoch with 95% train accuracy. A long gap
is grokking; a gap near zero is generalizing as fast as fitting.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from grokbook.checks import check_int

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
    if not len(history):
        raise ValueError("history has no evaluations to summarise (a run of 0 epochs still "
                         "has one, at epoch 0)")
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

    def state_dict(self) -> dict:
        return {"previous": self.previous}

    def load_state_dict(self, state: dict) -> None:
        self.previous = state["previous"]

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


# ---- the geometry of an embedding: principal components, Fourier spectrum ----------------------

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


# ---- the XOR theory's measures (chapter 3) ----------------------------------------------------

# The four signal directions (+-1, +-1) / sqrt(2): two labelled +1, two labelled -1.
DIRECTIONS = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]) / math.sqrt(2)
DIRECTION_NAMES = ("(+,+)", "(-,-)", "(+,-)", "(-,+)")
# Lemma 3.1: no bias-free ReLU network of three neurons classifies more than this.
LEMMA_BOUND = 0.75


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


# ---- absolute gradient entropy (NeuralGrok's complexity measure) --------------------------------

def absolute_gradient_entropy(gradients, normalize: bool = False) -> float:
    """The absolute gradient entropy (AGE) of NeuralGrok: ``-sum_i |g_i| ln |g_i|`` over every
    entry of every tensor in ``gradients`` taken together (``None`` entries are skipped).

    ``0 ln 0`` counts as 0 (its limit), so a zero entry adds nothing and an all-zero gradient
    has AGE 0; the paper's code takes the logarithm of every entry as it is, so one exact zero
    makes its value NaN. The sum is taken in float64.

    The paper's AGE is not normalised: with ``S = sum |g_i|`` and ``q_i = |g_i| / S`` it equals
    ``S H(q) - S ln S``, so it mixes how spread the gradient is (the Shannon entropy ``H(q)``)
    with how large it is. ``normalize=True`` returns ``H(q)`` alone, in ``[0, ln n]`` for ``n``
    entries: ``ln n`` when every entry has the same size, 0 when one entry holds all of it (and 0
    for an all-zero gradient, which has no spread). Non-finite gradients give a non-finite value.

    Which gradient is measured matters: the NeuralGrok reference code logs AGE on the
    transformed and clipped gradient for its own runs but on the raw gradient for the baselines,
    which is not a like-for-like comparison. Use :class:`RawGradientEntropy` to measure the raw
    gradient of the training loss for every method.
    """
    flat = [g.detach().reshape(-1).abs().double() for g in gradients if g is not None]
    if not flat:
        raise ValueError("gradients must hold at least one tensor, got none (has backward run?)")
    sizes = torch.cat(flat)
    if normalize:
        total = sizes.sum()
        if total == 0:
            return 0.0
        sizes = sizes / total
    return float(-torch.xlogy(sizes, sizes).sum())


class RawGradientEntropy:
    """A measure for :func:`grokbook.train.train`: the AGE (:func:`absolute_gradient_entropy`)
    of the raw gradient of the mean loss on ``(x, y)`` at the model's current parameters.

    It computes that gradient itself (one forward and backward pass, leaving ``.grad`` alone),
    so it measures the same thing whatever gradient transform the run uses; pass the data the
    model trains on (NeuralGrok's inner split). For a full-batch run it is the gradient of the
    next step before any transform; for minibatch runs, the full training set's gradient.
    ``loss`` is a name of ``grokbook.train.LOSSES`` or a function ``(output, y) -> loss``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, loss="cross_entropy",
                 normalize: bool = False):
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"x and y must hold the same positive number of examples, got "
                             f"{len(x)} and {len(y)}")
        if isinstance(loss, str):
            from grokbook.train import LOSSES  # train imports this module
            if loss not in LOSSES:
                raise ValueError(f"unknown loss {loss!r}; known losses: {', '.join(LOSSES)}")
            loss = LOSSES[loss][0]
        self.x, self.y, self.loss, self.normalize = x, y, loss, bool(normalize)

    def state_dict(self) -> dict:
        return {}  # keeps no state: a checkpointed run may use it

    def load_state_dict(self, state: dict) -> None:
        pass

    def __call__(self, model: nn.Module) -> float:
        parameters = [p for p in model.parameters() if p.requires_grad]
        device = parameters[0].device
        with torch.enable_grad():
            value = self.loss(model(self.x.to(device)), self.y.to(device))
            gradients = torch.autograd.grad(value, parameters, allow_unused=True)
        return absolute_gradient_entropy(gradients, self.normalize)


# ---- progress measures: seeing generalization coming (chapter 7) ------------------------------

def _table(table: torch.Tensor, name: str = "table", min_rows: int = 2) -> torch.Tensor:
    if not isinstance(table, torch.Tensor) or table.dim() != 2 or len(table) < min_rows:
        shape = tuple(table.shape) if isinstance(table, torch.Tensor) else type(table).__name__
        raise ValueError(f"{name} must be a 2-D tensor (tokens x dimension) with at least "
                         f"{min_rows} rows, got {shape}")
    return table.detach().double()


def med(table: torch.Tensor, wrap: bool = False) -> float:
    """MED, the "main embedding difference" of Gu et al. (2025): the mean distance between the
    embeddings of consecutive tokens in their natural order, ``||E[k+1] - E[k]||``.

    The book's normalisation: the mean over all ``p - 1`` pairs ``k = 0..p-2`` of the raw
    (unnormalised) rows, without the wrap-around pair ``(p-1, 0)`` unless ``wrap``. (The
    reference code sums the first ``p - 2`` pairs and divides by ``p - 2``: an off-by-one that
    drops the last pair.) MED shrinks when weight decay shrinks the whole table, and when
    neighbours in the natural order move together: :func:`relative_med` separates the two.
    """
    rows = _table(table)
    if wrap:
        rows = torch.cat([rows, rows[:1]])
    return float((rows[1:] - rows[:-1]).norm(dim=1).mean())


def relative_med(table: torch.Tensor) -> float:
    """:func:`med` over the mean distance between any two distinct tokens: scale-free, so a
    table that only shrinks keeps its value; below 1 when consecutive tokens lie closer together
    than tokens in general (a circle at a low frequency), 1 for an unordered table."""
    rows = _table(table)
    n = len(rows)
    distances = torch.cdist(rows, rows)
    mean_pair = distances.sum() / (n * (n - 1))
    return float(med(rows) / mean_pair) if mean_pair > 0 else math.nan


def norm_spread(table: torch.Tensor) -> float:
    """Token (non-)uniformity: the coefficient of variation (std / mean) of the tokens'
    embedding norms; 0 when every token's embedding is as long as every other's.

    Gu et al. argue that minimising weight decay drives the embedding toward *uniformity*, every
    token treated alike; their code has no metric for it, so the book measures its simplest
    consequence, equal norms. A token that no training pair uses feels only weight decay and
    shrinks toward zero: the spread grows.
    """
    norms = _table(table).norm(dim=1)
    mean = norms.mean()
    return float(norms.std(correction=0) / mean) if mean > 0 else math.nan


def _shares(values, name: str = "shares") -> torch.Tensor:
    """``values`` as a flat float64 tensor, checked: non-empty, finite, non-negative."""
    out = torch.as_tensor(values, dtype=torch.float64).flatten()
    if len(out) == 0 or bool((out < 0).any()) or not bool(out.isfinite().all()):
        raise ValueError(f"{name} must be a non-empty sequence of finite non-negative numbers")
    return out


def gini(shares) -> float:
    """The Gini coefficient of non-negative ``shares`` (e.g. :func:`fourier_spectrum`): 0 when
    all are equal, ``1 - 1/n`` when one holds everything. A sparse spectrum has a high Gini."""
    values = _shares(shares)
    total = values.sum()
    if total == 0:
        return 0.0
    ordered = values.sort().values
    n = len(ordered)
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * ranks - n - 1) * ordered).sum() / (n * total))


def participation_ratio(shares) -> float:
    """The inverse participation ratio ``sum s_k^2 / (sum s_k)^2`` of non-negative ``shares``:
    ``1/n`` when all ``n`` are equal, 1 when one holds everything. Its inverse counts the
    frequencies that take part ("about 1/IPR frequencies")."""
    values = _shares(shares)
    total = values.sum()
    return float(values.pow(2).sum() / total ** 2) if total > 0 else math.nan


def key_frequencies(spectrum, share: float = 0.8) -> list[int]:
    """The fewest frequencies (1-based, as :func:`fourier_spectrum` numbers them, strongest
    first) that together hold at least ``share`` of a spectrum's power: the circles an
    embedding that grokked modular addition is made of."""
    values = _shares(spectrum, "spectrum")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ValueError(f"share must be a number in (0, 1], got {share!r}")
    order = values.argsort(descending=True, stable=True)
    cumulative = values[order].cumsum(0) / values.sum().clamp_min(1e-300)
    count = int((cumulative < share - 1e-12).sum()) + 1
    return [int(i) + 1 for i in order[:min(count, len(values))]]


def _answer_waves(answers: torch.Tensor, p: int, freqs) -> torch.Tensor:
    """``cos(2 pi k y / p)`` and ``sin(2 pi k y / p)`` over the pairs, for each k in ``freqs``:
    shape ``(pairs, 2 len(freqs))``. For a+b (and a-b) these are Nanda et al.'s directions
    ``cos(w_k (a + b))``, ``sin(w_k (a + b))``."""
    for k in freqs:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= p // 2:
            raise ValueError(f"freqs must be integer frequencies in 1..{p // 2}, got {k!r}")
    angles = 2 * math.pi * answers.double()[:, None] * torch.tensor(
        [float(k) for k in freqs], dtype=torch.float64) / p
    return torch.cat([angles.cos(), angles.sin()], dim=1)


def key_frequency_part(logits: torch.Tensor, answers: torch.Tensor, p: int,
                       freqs) -> torch.Tensor:
    """The part of the logits that varies with the answer ``y`` at the frequencies ``freqs``:
    for each output class, its least-squares projection over the whole table's pairs on
    ``cos(2 pi k y / p)``, ``sin(2 pi k y / p)``, ``k`` in ``freqs``. ``logits`` are
    ``(pairs, classes)`` on every pair of the table, ``answers`` the pairs' correct answers."""
    if logits.dim() != 2 or answers.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (pairs, classes) and answers (pairs,), got "
                         f"{tuple(logits.shape)} and {tuple(answers.shape)}")
    if not freqs:
        return torch.zeros_like(logits, dtype=torch.float64)
    waves = _answer_waves(answers, p, freqs)
    centred = logits.double() - logits.double().mean(dim=0)
    # The projection on the waves' span, by Gram-Schmidt in elementwise products and sums:
    # LAPACK's least squares (MKL's, in PyTorch) rounds differently with the process's thread
    # settings, which made a run's measures differ in a worker process and here.
    basis: list[torch.Tensor] = []
    for wave in waves.T:
        for q in basis:
            wave = wave - (q * wave).sum() * q
        norm = wave.pow(2).sum().sqrt()
        if norm > 1e-9 * math.sqrt(len(wave)):  # a wave the others already span adds nothing
            basis.append(wave / norm)
    part = torch.zeros_like(centred)
    for q in basis:
        part += q[:, None] * (q[:, None] * centred).sum(dim=0)
    return part


def restricted_loss(logits: torch.Tensor, answers: torch.Tensor, p: int, freqs) -> float:
    """Nanda et al.'s restricted loss: the cross-entropy, on every pair of the table, of the
    logits with only their key-frequency part (:func:`key_frequency_part`) kept, plus each
    class's mean. Falls when the Fourier circuit forms, before the test loss does. In float64:
    float32 losses spike near zero."""
    kept = logits.double().mean(dim=0) + key_frequency_part(logits, answers, p, freqs)
    return float(torch.nn.functional.cross_entropy(kept, answers.long()))


def excluded_loss(logits: torch.Tensor, answers: torch.Tensor, p: int, freqs,
                  train: torch.Tensor) -> float:
    """Nanda et al.'s excluded loss: the cross-entropy, on the training pairs (``train``, a
    boolean mask or indices into the table's pairs), of the logits with the key-frequency part
    removed. Rises while the circuit takes over from memorization."""
    removed = logits.double() - key_frequency_part(logits, answers, p, freqs)
    return float(torch.nn.functional.cross_entropy(removed[train], answers[train].long()))


def embedding_rows(model: nn.Module, p: int) -> torch.Tensor:
    """The learned embeddings of tokens ``0..p-1`` (the first operand's values) of a model with
    an ``embed`` ``nn.Embedding`` (the book's FNN and Transformer), detached."""
    embed = getattr(model, "embed", None)
    if not isinstance(embed, nn.Embedding):
        raise ValueError(f"model must have a learned nn.Embedding as .embed, got "
                         f"{type(embed).__name__}")
    if not (isinstance(p, int) and 2 <= p <= embed.num_embeddings):
        raise ValueError(f"p must be an integer in 2..{embed.num_embeddings}, got {p!r}")
    return embed.weight[:p].detach()


PROGRESS_MEASURES = ("restricted_loss", "excluded_loss", "full_loss", "med", "relative_med",
                     "norm_spread", "gini", "ipr", "key_share")
"""The measures :class:`ProgressMeasures` returns, by name."""


class ProgressMeasures:
    """Every progress measure of a model on a modular task, at once: Nanda et al.'s restricted
    and excluded losses for the key frequencies ``freqs``, the loss on the whole table, Gu et
    al.'s MED (:func:`med`, :func:`relative_med`), the tokens' norm spread
    (:func:`norm_spread`) and the embedding's Fourier spectrum summarised by its Gini
    coefficient, inverse participation ratio and the share of its power at ``freqs``.

    ``data`` is a split of the whole table (train and test together are every pair), as
    ``grokbook.tasks`` makes them; the embedding measures read tokens ``0..p-1``.
    """

    def __init__(self, data, freqs):
        self.p = data.p
        self.freqs = [int(k) for k in freqs]
        _answer_waves(torch.zeros(1), self.p, self.freqs)  # checks the frequencies
        self.x = torch.cat([data.x_train, data.x_test])
        self.y = torch.cat([data.y_train, data.y_test])
        self.train = torch.zeros(len(self.y), dtype=torch.bool)
        self.train[:len(data.y_train)] = True
        if len(self.y) != self.p * self.p:
            raise ValueError(f"data must split the whole table of {self.p * self.p} pairs, "
                             f"got {len(self.y)}")

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> dict[str, float]:
        logits = model(self.x).double()
        table = embedding_rows(model, self.p)
        spectrum = fourier_spectrum(table)
        return {
            "restricted_loss": restricted_loss(logits, self.y, self.p, self.freqs),
            "excluded_loss": excluded_loss(logits, self.y, self.p, self.freqs, self.train),
            "full_loss": float(torch.nn.functional.cross_entropy(logits, self.y)),
            "med": med(table),
            "relative_med": relative_med(table),
            "norm_spread": norm_spread(table),
            "gini": gini(spectrum),
            "ipr": participation_ratio(spectrum),
            "key_share": float(sum(spectrum[k - 1] for k in self.freqs)),
        }
