"""Benchmarks of the training engine on this machine (figures to report, not tests to pass).

    grokbook bench            # minutes (about 7 on the book's 2-core AVX-512 machine)
    grokbook bench --quick    # seconds: a smoke run of every benchmark

1. The Nanda et al. setup (a+b mod 113, 30% train, 1-layer Transformer, d_model 128, 4 heads,
   d_mlp 512, full batch): epochs/s of ``grokbook.train`` against a plain PyTorch loop of the same
   model written out below (every position computed, train and test loss every epoch, as in
   Nanda et al.'s own loop), and their ratio.
2. The achieved GFLOP/s of that training step (forward, backward and AdamW, without the periodic
   evaluation; FLOPs counted by PyTorch's FlopCounterMode) as a fraction of a large matmul's
   GFLOP/s on this machine.
3. N small models trained one by one through ``train``'s single-run path (on 1 and on 2
   threads) against the same work as stacks (``train`` given a list of models: one vectorized
   ensemble), in two one-thread processes, and as the engine plans it (``grokbook.engine``:
   one-thread processes, stacks of the size it measures, its measuring counted): (a) 32 weak
   FNNs (d_embed 6, width 16, a+b mod 97, 30% train), (b) 8 target FNNs (d_embed 32, width
   128, depth 3), (c) 8 one-layer Transformers (d_model 64, a+b mod 59, 50% train), (d) a 4 x 6
   (lr, weight decay) grid of (b) as one run.
   Each path's speed-up over the best one-by-one path and its achieved GFLOP/s (training steps,
   counted by FlopCounterMode) against a large matmul on the same number of threads.
4. ``torch.compile`` (inductor, on the CPU) against eager for one model of (a), (b) and (c) on
   one thread: the speed-up per epoch, the seconds of its first two epochs (compiling), whether
   a compiled run repeats itself bit for bit and whether it gives eager's numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from grokbook import engine
from grokbook.models import make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import flushing_denormals, train

NANDA = {"d_model": 128, "n_heads": 4, "d_mlp": 512, "n_layers": 1}


class PlainTransformer(nn.Module):
    """Nanda et al.'s 1-layer model written plainly: every position through every layer."""

    def __init__(self, p: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512):
        super().__init__()
        self.n_heads = n_heads
        self.embed = nn.Embedding(p + 1, d_model)
        self.pos = nn.Embedding(3, d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d_model))
        self.unembed = nn.Linear(d_model, p, bias=False)
        self.p = p

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = torch.cat([tokens, torch.full_like(tokens[:, :1], self.p)], dim=1)
        x = self.embed(x) + self.pos.weight
        n, t, d = x.shape
        q, k, v = (h.view(n, t, self.n_heads, -1).transpose(1, 2)
                   for h in self.qkv(x).chunk(3, dim=-1))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(attended.transpose(1, 2).reshape(n, t, d))
        x = x + self.mlp(x)
        return self.unembed(x)[:, -1]


def plain_loop(model: nn.Module, data, epochs: int, lr: float = 1e-3, wd: float = 1.0) -> None:
    """The straightforward loop: train and test loss every epoch, then a step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, betas=(0.9, 0.98))
    for _ in range(epochs):
        loss = F.cross_entropy(model(data.x_train), data.y_train)
        with torch.no_grad():
            F.cross_entropy(model(data.x_test), data.y_test)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def timed(fn: Callable[[], object], repeats: int = 1) -> float:
    """The best wall time of ``repeats`` calls, in seconds."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n float32 matmul on this machine (the reference for "achieved")."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / timed(lambda: a @ b, repeats) / 1e9


def step_flops(model: nn.Module, data) -> int:
    """FLOPs of one full-batch training step (forward and backward), counted by PyTorch."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(data.x_train), data.y_train).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def nanda(epochs: int, p: int = 113) -> dict[str, float]:
    data = modular_arithmetic("add", p, 0.3, seed=0)
    ours = make_model("transformer", p, p, seed=0, **NANDA)
    plain = PlainTransformer(p)
    train(ours, data, epochs=2, progress=False)  # warm up allocators and kernels
    plain_loop(plain, data, 2)
    trainer = timed(lambda: train(ours, data, epochs=epochs, lr=1e-3, weight_decay=1.0,
                                  eval_every=10, warmup_steps=10, progress=False))
    with flushing_denormals():  # as train() does on one thread, so that both compute alike
        loop = timed(lambda: plain_loop(plain, data, epochs))
    steps_only = timed(lambda: train(ours, data, epochs=epochs, lr=1e-3, weight_decay=1.0,
                                     eval_every=epochs, progress=False))
    flops = step_flops(ours, data)
    return {"trainer": epochs / trainer, "plain": epochs / loop,
            "step_gflops": flops * epochs / steps_only / 1e9, "step_gflop": flops / 1e9}


@dataclass(frozen=True)
class Workload:
    """N small models of one architecture, trained full batch for ``epochs`` without early
    stopping, member ``i`` from seed ``i`` at its own (lr, weight decay) in ``settings``."""

    key: str
    label: str
    kind: str
    p: int
    frac: float
    options: dict[str, int]
    settings: tuple[tuple[float, float], ...]
    epochs: int

    def data(self):
        return modular_arithmetic("add", self.p, self.frac, seed=0)

    def model(self, member: int) -> nn.Module:
        return make_model(self.kind, self.p, self.p, seed=member, **self.options)


WEAK = {"d_embed": 6, "width": 16, "depth": 2}
TARGET = {"d_embed": 32, "width": 128, "depth": 3}
TRANSFORMER = {"d_model": 64, "n_heads": 4, "d_mlp": 256, "n_layers": 1}
GRID = tuple((lr, wd) for lr in (1e-3, 3e-3, 1e-2, 3e-2) for wd in (0.1, 0.3, 1.0, 2.0, 3.0, 5.0))


def workloads(quick: bool = False) -> list[Workload]:
    """The issue's four: (a) 32 weak FNNs, (b) 8 target FNNs, (c) 8 one-layer Transformers,
    (d) a 4 x 6 (lr, weight decay) grid of (b); epochs chosen for seconds per path."""
    if quick:
        return [Workload("tiny_fnn", "tiny FNNs", "fnn", 23, 0.3,
                         {"d_embed": 4, "width": 8, "depth": 2}, ((1e-2, 1.0),) * 4, 3),
                Workload("tiny_transformer", "tiny Transformers", "transformer", 23, 0.3,
                         {"d_model": 16, "n_heads": 2, "d_mlp": 32, "n_layers": 1},
                         ((1e-2, 1.0),) * 2, 2)]
    return [
        Workload("a", "(a) 32 weak FNNs (d_embed 6, width 16), a+b mod 97, 30% train", "fnn",
                 97, 0.3, WEAK, ((1e-2, 1.0),) * 32, 300),
        Workload("b", "(b) 8 target FNNs (d_embed 32, width 128, depth 3), same data", "fnn",
                 97, 0.3, TARGET, ((1e-2, 1.0),) * 8, 150),
        Workload("c", "(c) 8 one-layer Transformers (d_model 64), a+b mod 59, 50% train",
                 "transformer", 59, 0.5, TRANSFORMER, ((1e-2, 1.0),) * 8, 40),
        Workload("d", "(d) a 4 x 6 (lr, weight decay) grid of (b)", "fnn", 97, 0.3, TARGET,
                 GRID, 50),
    ]


def train_members(work: Workload, members: Sequence[int], stack: int, threads: int) -> float:
    """Seconds to train ``members`` of ``work`` on ``threads`` threads: one by one through
    :func:`train`'s single-run path (``stack`` 1) or as stacks of ``stack`` members."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        data = work.data()
        models = [work.model(i) for i in members]
        start = time.perf_counter()
        for first in range(0, len(models), stack):
            chunk = list(range(first, min(first + stack, len(models))))
            lrs = [work.settings[members[i]][0] for i in chunk]
            wds = [work.settings[members[i]][1] for i in chunk]
            if stack == 1:
                train(models[chunk[0]], data, epochs=work.epochs, lr=lrs[0],
                      weight_decay=wds[0], progress=False)
            else:
                train([models[i] for i in chunk], data, epochs=work.epochs, lr=lrs,
                      weight_decay=wds, progress=False)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)


def _one_thread_worker() -> None:
    torch.set_num_threads(1)


def in_processes(pool: ProcessPoolExecutor, work: Workload, stack: int) -> float:
    """Wall seconds for two one-thread processes, each training half the members (stacks of
    ``stack``), started together. Unlike the in-process paths, this time includes sending the
    work and building each process's data and models: it favours the in-process paths."""
    halves = [range(len(work.settings))[i::2] for i in range(2)]
    start = time.perf_counter()
    futures = [pool.submit(train_members, work, list(half), stack, 1) for half in halves]
    for future in futures:
        future.result()
    return time.perf_counter() - start


def stack_paths(work: Workload, pool: ProcessPoolExecutor | None,
                cores: int) -> dict[str, tuple[float, int]]:
    """(seconds, threads used) per path for one workload: one by one on 1 thread and on
    ``cores``; one stack of all; stacks of 4 and 8; two one-thread processes, one by one, with
    stacks of 4, and with the stacks the engine chooses (its measuring included)."""
    n = len(work.settings)
    everyone = list(range(n))
    train_members(work, everyone[:1], 1, 1)  # warm up kernels and allocators
    paths = {"one by one, 1 thread": (train_members(work, everyone, 1, 1), 1)}
    if cores > 1:
        paths[f"one by one, {cores} threads"] = (train_members(work, everyone, 1, cores), cores)
    for size in sorted({n, 8, 4} - {1}):
        if size <= n:
            label = f"one stack of {n}" if size == n else f"stacks of {size}"
            paths[f"{label}, {cores} threads"] = (train_members(work, everyone, size, cores),
                                                  cores)
    if pool is not None:
        in_processes(pool, dataclasses.replace(work, settings=work.settings[:2]), 1)  # warm up
        for size in (1, 4):
            if size == 1 or size < (n + 1) // 2:
                label = "one by one" if size == 1 else f"stacks of {size}"
                paths[f"2 processes x 1 thread, {label}"] = (in_processes(pool, work, size), 2)
        # The engine's own choice of stack size (`grokbook.engine.stack_size`, as `grokbook
        # sweep` asks it), run like the paths above: two one-thread processes, half the
        # members each; the measuring is part of its time.
        start = time.perf_counter()
        size = engine.stack_size(("bench", work.key), work.model, work.data(), n, processes=2)
        measuring = time.perf_counter() - start
        label = "one by one" if size == 1 else f"stacks of {size}"
        paths[f"engine: 2 x 1 thread, {label} (+{measuring:.1f} s measuring)"] = (
            in_processes(pool, work, size) + measuring, 2)
    return paths


def stack_benchmarks(quick: bool = False) -> tuple[list[dict[str, object]], dict[int, float]]:
    """Every workload's paths, as rows: seconds, speed-up over the best one-by-one path (the
    single-run path at its best thread count) and achieved GFLOP/s of the training steps; and
    the matmul peak per thread count."""
    cores = min(2, os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    rows = []
    peak = {1: 0.0, cores: 0.0}
    previous = torch.get_num_threads()
    for threads in peak:
        torch.set_num_threads(threads)
        peak[threads] = matmul_gflops(512 if quick else 1024, repeats=10)
    torch.set_num_threads(previous)
    pool = ProcessPoolExecutor(2, mp_context=context, initializer=_one_thread_worker) \
        if cores > 1 else None
    try:
        for work in workloads(quick):
            data = work.data()
            flops = step_flops(work.model(0), data) * work.epochs * len(work.settings)
            paths = stack_paths(work, pool, cores)
            baseline = min(v for k, (v, _) in paths.items() if k.startswith("one by one"))
            for path, (seconds, threads) in paths.items():
                rows.append({"key": work.key, "workload": work.label, "path": path,
                             "seconds": seconds,
                             "speedup": baseline / seconds,
                             "gflops": flops / seconds / 1e9,
                             "peak_share": flops / seconds / 1e9 / peak[threads]})
    finally:
        if pool is not None:
            pool.shutdown()
    return rows, peak


def _compiled_epochs(work: Workload, compiled: bool, epochs: int
                     ) -> tuple[float, float, list[float]]:
    """One model of ``work`` trained ``epochs`` full-batch AdamW steps on one thread, eager or
    through ``torch.compile``: (seconds per epoch after the first two, seconds of the first
    two, which hold the compiling, the losses). A bare loop, like :func:`plain_loop`: ``train``
    also runs the model on one example (its memory check) and evaluates without gradients,
    each of which would make a compiled model compile again inside the timing."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = work.data()
        model = work.model(0)
        forward = torch.compile(model) if compiled else model
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1.0,
                                      betas=(0.9, 0.98))
        losses, start, warm = [], time.perf_counter(), 0.0
        for epoch in range(epochs):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(forward(data.x_train), data.y_train)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if epoch == 1:
                warm = time.perf_counter()
        return (time.perf_counter() - warm) / (epochs - 2), warm - start, losses
    finally:
        torch.set_num_threads(previous)


def compile_benchmarks(epochs: int = 60) -> list[dict[str, object]]:
    """``torch.compile`` (inductor, on the CPU) against eager for one model of workloads (a),
    (b) and (c), on one thread: the speed-up per epoch, the seconds its first two epochs take
    (compiling), whether a second compiled run repeats the first bit for bit and whether it
    matches eager's losses bit for bit. Rows carry an ``error`` instead where compiling fails
    (inductor needs a C++ compiler)."""
    names = {"a": "(a) a weak FNN", "b": "(b) a target FNN", "c": "(c) a Transformer"}
    rows = []
    for work in workloads()[:3]:
        label = names[work.key]
        eager, _, eager_losses = _compiled_epochs(work, False, epochs)
        try:
            compiled, warm, losses = _compiled_epochs(work, True, epochs)
            again = _compiled_epochs(work, True, epochs)[2]
        except Exception as error:  # no compiler, or an unsupported platform: say so
            rows.append({"workload": label, "error": f"{type(error).__name__}: {error}"})
            continue
        rows.append({"workload": label, "eager_ms": eager * 1e3,
                     "compiled_ms": compiled * 1e3, "speedup": eager / compiled,
                     "first_seconds": warm, "repeatable": losses == again,
                     "same_as_eager": losses == eager_losses})
    return rows


def run(quick: bool = False) -> dict[str, float]:
    """Run every benchmark and print its figures; return them."""
    torch.manual_seed(0)
    results: dict[str, float] = {}
    epochs = 3 if quick else 200
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads"
          f"{' (quick: figures are not meaningful)' if quick else ''}")

    size = 512 if quick else 2048
    before = matmul_gflops(size, repeats=20)  # this machine's peak drifts: measure around
    n = nanda(epochs, p=23 if quick else 113)
    after = matmul_gflops(size, repeats=20)
    peak = max(before, after)
    results.update(nanda_trainer_eps=n["trainer"], nanda_plain_eps=n["plain"],
                   nanda_speedup=n["trainer"] / n["plain"], step_gflops=n["step_gflops"],
                   matmul_gflops=peak, step_fraction=n["step_gflops"] / peak)
    print(f"1. Nanda setup, {epochs} epochs: trainer {n['trainer']:.1f} epochs/s, plain loop "
          f"{n['plain']:.1f} epochs/s: {results['nanda_speedup']:.2f}x")
    print(f"2. training step: {n['step_gflop']:.2f} GFLOP, {n['step_gflops']:.1f} GFLOP/s "
          f"achieved; large matmul {peak:.1f} GFLOP/s (best of {before:.0f} before and "
          f"{after:.0f} after): {results['step_fraction']:.0%}")

    rows, stack_peak = stack_benchmarks(quick)
    peaks = ", ".join(f"{v:.0f} GFLOP/s on {k} thread(s)" for k, v in stack_peak.items())
    print("3. N models: one by one through the single-run path against stacks and processes "
          f"(matmul peak {peaks}; speed-up over the best one-by-one path)")
    for workload in dict.fromkeys(row["workload"] for row in rows):
        print(f"   {workload}")
        mine = [row for row in rows if row["workload"] == workload]
        for row in mine:
            print(f"     {row['path']:54s} {row['seconds']:7.2f} s  {row['speedup']:5.2f}x  "
                  f"{row['gflops']:6.1f} GFLOP/s ({row['peak_share']:.0%} of peak)")
        best = max(mine, key=lambda row: row["speedup"])
        print(f"     best: {best['path']} ({best['speedup']:.2f}x)")
        results[f"stack_{best['key']}_speedup"] = best["speedup"]

    if quick:
        print("4. torch.compile: skipped with --quick (compiling takes seconds per model)")
        return results
    print("4. torch.compile against eager, one model, one thread (speed-up per epoch; the "
          "first two epochs hold the compiling)")
    for row in compile_benchmarks():
        if "error" in row:
            print(f"   {row['workload']}: not measured ({row['error'][:120]})")
            continue
        print(f"   {row['workload']}: eager {row['eager_ms']:.2f} ms, compiled "
              f"{row['compiled_ms']:.2f} ms per epoch: {row['speedup']:.2f}x; first two "
              f"epochs {row['first_seconds']:.1f} s; repeats itself: {row['repeatable']}; "
              f"the same numbers as eager: {row['same_as_eager']}")
        results[f"compile_{row['workload'][1]}_speedup"] = row["speedup"]
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grokbook bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    run(parser.parse_args(argv).quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
