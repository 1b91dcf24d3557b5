"""Benchmarks of the training engine on this machine (figures to report, not tests to pass).

    grokbook bench            # a few minutes
    grokbook bench --quick    # seconds: a smoke run of every benchmark

1. The Nanda et al. setup (a+b mod 113, 30% train, 1-layer Transformer, d_model 128, 4 heads,
   d_mlp 512, full batch): epochs/s of ``grokbook.train`` against a plain PyTorch loop of the same
   model written out below (every position computed, train and test loss every epoch, as in
   Nanda et al.'s own loop), and their ratio.
2. The achieved GFLOP/s of that training step (forward, backward and AdamW, without the periodic
   evaluation; FLOPs counted by PyTorch's FlopCounterMode) as a fraction of a large matmul's
   GFLOP/s on this machine.
3. 32 seeds of a tiny FNN (d_embed 4, width 16, a+b mod 113): one ensemble against one after
   another.
4. 8 configurations (lr, weight decay, init scale) of chapter 1's FNN: the same comparison.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from grokbook import profiles
from grokbook.models import make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import train

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
    loop = timed(lambda: plain_loop(plain, data, epochs))
    steps_only = timed(lambda: train(ours, data, epochs=epochs, lr=1e-3, weight_decay=1.0,
                                     eval_every=epochs, progress=False))
    flops = step_flops(ours, data)
    return {"trainer": epochs / trainer, "plain": epochs / loop,
            "step_gflops": flops * epochs / steps_only / 1e9, "step_gflop": flops / 1e9}


def ensemble_vs_sequential(build: Callable[[int], nn.Module], configs: Sequence[dict], data,
                           epochs: int) -> tuple[float, float]:
    """Wall times of training ``configs`` one after another and as one ensemble."""
    def settings(key):
        return [c[key] for c in configs]

    def sequential():
        for i, c in enumerate(configs):
            train(build(i), data, epochs=epochs, lr=c["lr"], weight_decay=c["weight_decay"],
                  progress=False)

    def together():
        train([build(i) for i in range(len(configs))], data, epochs=epochs,
              lr=settings("lr"), weight_decay=settings("weight_decay"), progress=False)

    return timed(sequential), timed(together)


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

    p = 23 if quick else 113
    data = modular_arithmetic("add", p, 0.3, seed=0)
    tiny = {"d_embed": 4, "width": 16, "depth": 2}
    seeds = 4 if quick else 32
    sequential, together = ensemble_vs_sequential(
        lambda i: make_model("fnn", p, p, seed=i, **tiny),
        [{"lr": 1e-2, "weight_decay": 1.0}] * seeds, data, 5 if quick else 500)
    results.update(tiny_sequential_s=sequential, tiny_ensemble_s=together,
                   tiny_speedup=sequential / together)
    print(f"3. {seeds} tiny FNNs ({'5' if quick else '500'} epochs): one by one "
          f"{sequential:.2f} s, ensemble {together:.2f} s: {sequential / together:.1f}x")

    book = profiles.load("grokking", "book")
    chapter_data = modular_arithmetic("add", book.p, book.frac, seed=0)
    grid = [{"lr": lr, "weight_decay": wd, "init_scale": s}
            for lr in (1e-2, 3e-3) for wd in (0.3, 1.0) for s in (1.0, 2.0)][: 2 if quick else 8]
    sequential, together = ensemble_vs_sequential(
        lambda i: make_model("fnn", book.p, book.p, seed=0,
                             d_embed=book.fnn.model.d_embed, width=book.fnn.model.width,
                             depth=book.fnn.model.depth, init_scale=grid[i]["init_scale"]),
        grid, chapter_data, 3 if quick else 300)
    results.update(chapter_sequential_s=sequential, chapter_ensemble_s=together,
                   chapter_speedup=sequential / together)
    print(f"4. {len(grid)} configs of chapter 1's FNN ({'3' if quick else '300'} epochs): "
          f"one by one {sequential:.2f} s, ensemble {together:.2f} s: "
          f"{sequential / together:.1f}x")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grokbook bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    run(parser.parse_args(argv).quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
