"""How to train many runs on this machine: processes of one thread each, stacks of a measured size.

On one thread a member of a stack follows its run alone to float32 rounding
(``grokbook.ensemble``): to the bit on the AVX-512 CPU this book was written on; on an
AMD EPYC (AVX2) a stack's batched products and GrokFast filters round differently from a single
run's in the last digits, while members of stacks of any size two and up still agree with each
other (checked 2026-12-06). So how runs are grouped into stacks changes the time they take, and
on some CPUs the last bits of a run trained alone or stacked, which can move a measured epoch
by an evaluation where a run sits at its tipping point; the table's ``stack`` column says which
it was. The engine chooses by measuring:

- **processes**: one per core, each on one thread (:func:`grokbook.sweep.default_workers`;
  ``grokbook bench`` finds two one-thread processes faster than one two-thread process on every
  workload it times);
- **stack size**: :func:`stack_size` trains a few epochs of stacks of 1, 2, 4 and 8 members of
  the runs' architecture on one thread and keeps the smallest size within 10% of the lowest
  cost per member and epoch (small models gain from stacking, whose batched products keep a
  core busy; large ones already do and gain nothing). The choice is remembered, in this
  process, per ``key`` (a sweep's key: every setting but those its stacks vary) and never
  leaves a process idle: at most ``ceil(runs / processes)`` members per stack.

``grokbook sweep`` and ``grokbook bench`` use it (:func:`plan`).

Every single run of the experiments layer trains on one thread (``grokbook.train.one_thread``):
a sum split over two threads rounds differently, and a run near its tipping point can then tip
sooner or later, so on more threads the book's numbers would depend on the reader's core count.
The cores are used instead by running independent runs side by side (:func:`workers`: a chapter's
race trains each run alone on one thread in a process of its own,
``grokbook.experiments.run_all``). Measured on the 2-core AVX-512 machine this book was
written on (2026-12-06, the Transformers before ``models.Block.last_from_table``), two
one-thread processes train 1.5 to 1.9 times the epochs per second of one two-thread process
for the chapters' FNNs, 1.1 to 1.3 times for their Transformers. A stack is the exception: its
batched products gain from every thread (chapter 1's eight FNNs ran 1.9 times as fast on two
threads as on one), so a stack trains on the caller's threads.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Hashable, Sequence

import torch
from torch import nn

CANDIDATES = (1, 2, 4, 8)
PROBE_EPOCHS = 8  # the epochs a candidate is timed over
TOLERANCE = 0.1
"""A larger stack must be this much cheaper to be chosen: the probe runs in one process, but
the stacks then share the machine's caches with the other processes' (a larger stack's
advantage shrinks, or turns, there)."""

_CHOSEN: dict[Hashable, int] = {}

WORKERS_VARIABLE = "GROKBOOK_WORKERS"


def workers() -> int:
    """How many one-thread processes train a chapter's independent runs side by side:
    ``$GROKBOOK_WORKERS`` (0: one after another in this process, as the tests do, whose
    processes already fill the cores), else one per core this process may use, or 0 where
    training runs on a GPU (the runs take turns on it from this process)."""
    from grokbook.sweep import default_workers

    setting = os.environ.get(WORKERS_VARIABLE, "").strip()
    if not setting:
        return 0 if torch.cuda.is_available() else default_workers()
    if not setting.isdigit():
        raise ValueError(f"{WORKERS_VARIABLE} must be a non-negative integer (0: train in "
                         f"this process), got {setting!r}")
    return int(setting)


def _check_sizes(candidates: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(candidates)
    if not sizes or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in sizes):
        raise ValueError(f"candidates must be positive integers, got {candidates!r}")
    return sizes


def member_epoch_seconds(build: Callable[[int], nn.Module], data, size: int,
                         epochs: int = PROBE_EPOCHS) -> float:
    """Seconds per member and epoch of a stack of ``size`` models ``build(0..size-1)`` trained
    full batch on ``data`` on one thread (one by one through the single-run path for 1): the
    time of ``1 + epochs`` epochs less that of 1, so that what every run pays once (building,
    the evaluations at its start and end) cancels."""
    from grokbook.train import one_thread, train

    def seconds(n: int) -> float:
        models = [build(i) for i in range(size)]
        start = time.perf_counter()
        train(models if size > 1 else models[0], data, epochs=n, eval_every=n, progress=False)
        return time.perf_counter() - start

    with one_thread():
        seconds(1)  # warm-up: kernels, allocators
        return max(seconds(1 + epochs) - seconds(1), 0.0) / (epochs * size)


def stack_size(key: Hashable, build: Callable[[int], nn.Module], data, runs: int,
               processes: int = 1, candidates: Sequence[int] = CANDIDATES) -> int:
    """The stack size for ``runs`` runs of one architecture (models ``build(i)`` on ``data``,
    ``key`` naming the architecture and data size): among the candidates of at most
    ``ceil(runs / processes)`` members (so that every process gets work), the smallest whose
    measured cost per member and epoch on one thread is within :data:`TOLERANCE` of the lowest
    (measured once per ``key`` and set of candidates)."""
    sizes = _check_sizes(candidates)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive integer, got {runs!r}")
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a positive integer, got {processes!r}")
    largest = math.ceil(runs / processes)
    if largest == 1:  # one run per process: nothing to stack, nothing to measure
        return 1
    usable = tuple(k for k in sizes if k <= largest) or (min(sizes),)
    if (key, usable) not in _CHOSEN:  # sizes these runs cannot use are not worth measuring
        costs = {k: member_epoch_seconds(build, data, k) for k in usable}
        cheapest = min(costs.values())
        _CHOSEN[key, usable] = min(k for k, cost in costs.items()
                                   if cost <= cheapest * (1 + TOLERANCE))
    return max(1, min(_CHOSEN[key, usable], largest))


def plan(runs: int, size: int) -> list[list[int]]:
    """``range(runs)`` in stacks of at most ``size``, as even as possible (5 runs in stacks of
    at most 4: 3 and 2, so that no stack waits on a long one)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if runs < 1:
        return []
    count = math.ceil(runs / size)
    base, extra = divmod(runs, count)
    out, first = [], 0
    for i in range(count):
        last = first + base + (i < extra)  # the first `extra` stacks take one more
        out.append(list(range(first, last)))
        first = last
    return out
