"""Try bad inputs and faults on grokbook's API and CLI, as a careless user or a flaky machine
would, and say for each what happened (issue 21):

- ``clear``: a ``ValueError`` (or a CLI exit code 2) whose message names the parameter,
  before any training started;
- ``late``: a clear error, but only after training had started;
- ``unclear``: a ``ValueError`` that does not name the parameter;
- ``raw``: any other exception (TypeError, IndexError, RuntimeError from torch...);
- ``accepted``: no error at all, a silently wrong or meaningless result;
- ``ok``: a fault handled as intended (divergence stopped and recorded, old file kept...).

    GROKBOOK_CACHE=off GROKBOOK_PROGRESS=0 python devtools/reliability_audit.py [--failing]

Every run it starts is tiny (seconds on one core); sizes that would need gigabytes are
expected to be refused by the memory check before anything is allocated.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from grokbook import (
    checkpoint,
    cli,
    config,
    embeddings,
    experiments,
    files,
    measures,
    stats,
    transfer,
)
from grokbook.accelerators import GrokFastEMA, GrokFastMA
from grokbook.history import History
from grokbook.models import make_model
from grokbook.tasks import modular_arithmetic, sparse_parity, xor_cluster

train_module = importlib.import_module("grokbook.train")
NAN, INF = math.nan, math.inf
TMP = Path(tempfile.mkdtemp(prefix="grokbook-audit-"))
STARTED = {"training": False}  # set by the first evaluation (API) or by building data (CLI)


def _spy(function):
    def spy(*args, **kwargs):
        STARTED["training"] = True
        return function(*args, **kwargs)
    return spy


def after(setup: Callable[[], object], action: Callable[[], object]) -> Callable[[], object]:
    """``action`` once ``setup`` has run (whose training does not count as started)."""
    def both():
        setup()
        STARTED["training"] = False
        return action()
    return both


def data(p=7, seed=0):
    return modular_arithmetic("add", p, 0.5, seed=seed)


def fnn(vocab=7, seed=0, **options):
    return make_model("fnn", vocab, vocab, seed=seed, **({"d_embed": 4, "width": 8, "depth": 2}
                                                         | options))


def fit(**options):
    """A tiny single run with ``options`` changed."""
    kwargs = {"epochs": 5, "eval_every": 1, "progress": False} | options
    model = kwargs.pop("model", None) or fnn()
    return train_module.train(model, kwargs.pop("data", None) or data(), **kwargs)


def stack(**options):
    kwargs = {"epochs": 5, "eval_every": 1, "progress": False} | options
    return train_module.train([fnn(seed=0), fnn(seed=1)], kwargs.pop("data", None) or data(),
                              **kwargs)


def run_cfg(**changes):
    base = config.RunCfg(data=config.ModularCfg("add", 7, 0.5),
                         model=config.FNNCfg(4, 8, 2), budget=config.BudgetCfg(5, 1))
    return config.replace(base, **changes)


def history_file(content: str | bytes, suffix=".json") -> Callable[[], History]:
    path = TMP / f"h{abs(hash(content))}{suffix}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return lambda: History.load(path)


def good_history() -> dict:
    return History(epoch=[0, 1], train_loss=[1.0, 0.5], train_acc=[0.1, 0.2],
                   test_loss=[1.0, 0.9], test_acc=[0.0, 0.1], weight_norm=[1.0, 1.1]).to_dict()


def bad_history(**changes) -> Callable[[], History]:
    return history_file(json.dumps(good_history() | changes))


REUSED = GrokFastEMA()


def a_file() -> str:
    path = TMP / "a_file"
    path.write_text("x")
    return str(path)


# ---- the cases: (name, the parameter its error must name, action) ----------------------------

API: list[tuple[str, str, Callable[[], object]]] = [
    # tasks
    ("modular op='xyz'", "op", lambda: modular_arithmetic("xyz", 7)),
    ("modular op=None", "op", lambda: modular_arithmetic(None, 7)),
    ("modular p=1", "p", lambda: modular_arithmetic("add", 1)),
    ("modular p=0", "p", lambda: modular_arithmetic("add", 0)),
    ("modular p=-3", "p", lambda: modular_arithmetic("add", -3)),
    ("modular p=2.5", "p", lambda: modular_arithmetic("add", 2.5)),
    ("modular p='7'", "p", lambda: modular_arithmetic("add", "7")),
    ("modular p=True", "p", lambda: modular_arithmetic("add", True)),
    ("modular p=50000 (memory)", "memory", lambda: modular_arithmetic("add", 50000)),
    ("modular mul p=8", "p", lambda: modular_arithmetic("mul", 8)),
    ("modular frac=0", "frac", lambda: modular_arithmetic("add", 7, 0)),
    ("modular frac=1", "frac", lambda: modular_arithmetic("add", 7, 1)),
    ("modular frac=-0.1", "frac", lambda: modular_arithmetic("add", 7, -0.1)),
    ("modular frac=nan", "frac", lambda: modular_arithmetic("add", 7, NAN)),
    ("modular frac='0.5'", "frac", lambda: modular_arithmetic("add", 7, "0.5")),
    ("modular frac=None", "frac", lambda: modular_arithmetic("add", 7, None)),
    ("modular frac=0.01 p=5 (empty train)", "frac", lambda: modular_arithmetic("add", 5, 0.01)),
    ("modular seed=-1", "seed", lambda: modular_arithmetic("add", 7, seed=-1)),
    ("modular seed=2**64", "seed", lambda: modular_arithmetic("add", 7, seed=2**64)),
    ("modular seed=1.5", "seed", lambda: modular_arithmetic("add", 7, seed=1.5)),
    ("modular seed='0'", "seed", lambda: modular_arithmetic("add", 7, seed="0")),
    ("modular seed=None", "seed", lambda: modular_arithmetic("add", 7, seed=None)),
    ("parity n_bits=0", "n_bits", lambda: sparse_parity(0, 1)),
    ("parity k=0", "k", lambda: sparse_parity(5, 0)),
    ("parity k>n_bits", "k", lambda: sparse_parity(3, 5)),
    ("parity n_train=0", "n_train", lambda: sparse_parity(5, 2, 0)),
    ("parity n_test=1.5", "n_test", lambda: sparse_parity(5, 2, 10, 1.5)),
    ("parity seed=-1", "seed", lambda: sparse_parity(5, 2, 10, 10, seed=-1)),
    ("parity n_train=10**9 (memory)", "memory", lambda: sparse_parity(4000, 2, 10**9, 10)),
    ("xor p=2", "p", lambda: xor_cluster(10, 10, 2, 0.1)),
    ("xor eps=nan", "eps", lambda: xor_cluster(10, 10, 5, NAN)),
    ("xor eps=-1", "eps", lambda: xor_cluster(10, 10, 5, -1)),
    ("xor n_train=0", "n_train", lambda: xor_cluster(0, 10, 5, 0.1)),
    ("xor seed=-1", "seed", lambda: xor_cluster(10, 10, 5, 0.1, seed=-1)),
    ("xor seed=1.5", "seed", lambda: xor_cluster(10, 10, 5, 0.1, seed=1.5)),
    # models
    ("make_model kind='cnn'", "model", lambda: make_model("cnn", 7, 7)),
    ("make_model vocab_size=0", "vocab_size", lambda: make_model("fnn", 0, 7)),
    ("make_model n_classes=-1", "n_classes", lambda: make_model("fnn", 7, -1)),
    ("fnn d_embed=0", "d_embed", lambda: fnn(d_embed=0)),
    ("fnn width=2.5", "width", lambda: fnn(width=2.5)),
    ("fnn depth=0", "depth", lambda: fnn(depth=0)),
    ("fnn init_scale=0", "init_scale", lambda: fnn(init_scale=0)),
    ("fnn init_scale=-1", "init_scale", lambda: fnn(init_scale=-1)),
    ("fnn init_scale=inf", "init_scale", lambda: fnn(init_scale=INF)),
    ("fnn init_scale=nan", "init_scale", lambda: fnn(init_scale=NAN)),
    ("fnn init_scale='1'", "init_scale", lambda: fnn(init_scale="1")),
    ("fnn unknown option foo", "foo", lambda: fnn(foo=1)),
    ("fnn seed=-1", "seed", lambda: fnn(seed=-1)),
    ("fnn width=10**7 depth=3 (memory)", "memory", lambda: fnn(width=10**7, depth=3)),
    ("transformer d_model % n_heads", "n_heads",
     lambda: make_model("transformer", 7, 7, d_model=10, n_heads=3)),
    ("transformer n_layers=0", "n_layers", lambda: make_model("transformer", 7, 7, n_layers=0)),
    ("transformer init_scale=inf", "init_scale",
     lambda: make_model("transformer", 7, 7, d_model=8, d_mlp=8, n_heads=2, init_scale=INF)),
    ("transformer d_mlp=10**8 (memory)", "memory",
     lambda: make_model("transformer", 7, 7, d_model=128, d_mlp=10**8)),
    # a single run
    ("train lr=0", "lr", lambda: fit(lr=0)),
    ("train lr=-1", "lr", lambda: fit(lr=-1)),
    ("train lr=nan", "lr", lambda: fit(lr=NAN)),
    ("train lr=inf", "lr", lambda: fit(lr=INF)),
    ("train lr='0.1'", "lr", lambda: fit(lr="0.1")),
    ("train lr=None", "lr", lambda: fit(lr=None)),
    ("train weight_decay=-1", "weight_decay", lambda: fit(weight_decay=-1)),
    ("train weight_decay=nan", "weight_decay", lambda: fit(weight_decay=NAN)),
    ("train weight_decay=inf", "weight_decay", lambda: fit(weight_decay=INF)),
    ("train betas=(0.9,)", "betas", lambda: fit(betas=(0.9,))),
    ("train betas=(1.0, 0.9)", "betas", lambda: fit(betas=(1.0, 0.9))),
    ("train betas=(-0.1, 0.9)", "betas", lambda: fit(betas=(-0.1, 0.9))),
    ("train betas=(nan, 0.9)", "betas", lambda: fit(betas=(NAN, 0.9))),
    ("train betas='ab'", "betas", lambda: fit(betas="ab")),
    ("train epochs=-1", "epochs", lambda: fit(epochs=-1)),
    ("train epochs=1.5", "epochs", lambda: fit(epochs=1.5)),
    ("train epochs='10'", "epochs", lambda: fit(epochs="10")),
    ("train eval_every=0", "eval_every", lambda: fit(eval_every=0)),
    ("train stop_acc=0", "stop_acc", lambda: fit(stop_acc=0)),
    ("train stop_acc=1.5", "stop_acc", lambda: fit(stop_acc=1.5)),
    ("train stop_acc=nan", "stop_acc", lambda: fit(stop_acc=NAN)),
    ("train stop_patience=0", "stop_patience", lambda: fit(stop_patience=0)),
    ("train warmup_steps=-5", "warmup_steps", lambda: fit(warmup_steps=-5)),
    ("train warmup_steps=1.5", "warmup_steps", lambda: fit(warmup_steps=1.5)),
    ("train batch_size=0", "batch_size", lambda: fit(batch_size=0)),
    ("train batch_size=-1", "batch_size", lambda: fit(batch_size=-1)),
    ("train batch_size=1.5", "batch_size", lambda: fit(batch_size=1.5)),
    ("train batch_size=True", "batch_size", lambda: fit(batch_size=True)),
    ("train loss='mse'", "loss", lambda: fit(loss="mse")),
    ("train seed=-1", "seed", lambda: fit(seed=-1)),
    ("train seed=2**64", "seed", lambda: fit(seed=2**64)),
    ("train seed=1.5", "seed", lambda: fit(seed=1.5)),
    ("train device='tpu'", "device", lambda: fit(device="tpu")),
    ("train device='cuda' (no GPU)", "device", lambda: fit(device="cuda")),
    ("train device='cuda:7'", "device", lambda: fit(device="cuda:7")),
    ("train device=5", "device", lambda: fit(device=5)),
    ("train device=''", "device", lambda: fit(device="")),
    ("train data=None", "data", lambda: fit(data=None, model=fnn()) if False else
     train_module.train(fnn(), None, epochs=2, progress=False)),
    ("train data=a list for one model", "data",
     lambda: train_module.train(fnn(), [data()], epochs=2, progress=False)),
    ("train fnn(5 tokens) on p=7", "token", lambda: fit(model=fnn(vocab=5))),
    ("train fnn(7) on parity floats", "data",
     lambda: fit(data=sparse_parity(5, 2, 10, 10), loss="logistic")),
    ("train measures={'x': 5}", "measures", lambda: fit(measures={"x": 5})),
    ("train grad_transform=5", "grad_transform", lambda: fit(grad_transform=5)),
    ("train callback=5", "callback", lambda: fit(callback=5)),
    ("train checkpoint_every=0", "checkpoint_every",
     lambda: fit(checkpoint=TMP / "c.npz", checkpoint_every=0)),
    ("train checkpoint_seconds=-1", "checkpoint_seconds",
     lambda: fit(checkpoint=TMP / "c.npz", checkpoint_seconds=-1)),
    ("train checkpoint in a file's folder", "checkpoint",
     lambda: fit(checkpoint=Path(a_file()) / "c.npz", checkpoint_every=1)),
    ("train resume from a damaged checkpoint", "checkpoint",
     lambda: (Path(TMP / "bad.npz").write_bytes(b"junk"),
              fit(checkpoint=TMP / "bad.npz", resume=True))),
    ("train resume with other settings", "checkpoint",
     after(lambda: fit(checkpoint=TMP / "other.npz", checkpoint_every=1, epochs=3),
           lambda: fit(checkpoint=TMP / "other.npz", resume=True, model=fnn(width=16)))),
    # a stack (ensemble)
    ("stack lr=-1", "lr", lambda: stack(lr=-1)),
    ("stack lr=nan", "lr", lambda: stack(lr=NAN)),
    ("stack lr=[1e-2, -1]", "lr", lambda: stack(lr=[1e-2, -1])),
    ("stack weight_decay=-1", "weight_decay", lambda: stack(weight_decay=-1)),
    ("stack weight_decay=[1, nan]", "weight_decay", lambda: stack(weight_decay=[1, NAN])),
    ("stack lr of wrong length", "lr", lambda: stack(lr=[1e-2, 1e-2, 1e-2])),
    ("stack betas=(1.5, 0.9)", "betas", lambda: stack(betas=(1.5, 0.9))),
    ("stack warmup_steps=-5", "warmup_steps", lambda: stack(warmup_steps=-5)),
    ("stack epochs=-1", "epochs", lambda: stack(epochs=-1)),
    ("stack device='tpu'", "device", lambda: stack(device="tpu")),
    ("stack batch_size=4", "batch_size", lambda: stack(batch_size=4)),
    ("stack data of wrong length", "data", lambda: stack(data=[data(), data(), data()])),
    ("stack data of other sizes", "data", lambda: stack(data=[data(7), data(11)])),
    ("stack models=[]", "models", lambda: train_module.train([], data(), progress=False)),
    ("stack mixed architectures", "architecture",
     lambda: train_module.train([fnn(), fnn(width=16)], data(), epochs=2, progress=False)),
    ("stack fnn(5) on p=7", "token",
     lambda: train_module.train([fnn(5), fnn(5)], data(), epochs=2, progress=False)),
    ("stack seed=-1", "seed", lambda: stack(seed=-1)),
    # settings
    ("ModularCfg frac='0.5'", "frac", lambda: config.ModularCfg("add", 7, "0.5")),
    ("ModularCfg p=2.5", "p", lambda: config.ModularCfg("add", 2.5)),
    ("ModularCfg op='pow'", "op", lambda: config.ModularCfg("pow")),
    ("ModularCfg mul p=8", "p", lambda: config.ModularCfg("mul", 8)),
    ("ModularCfg p=50000 (memory)", "memory",
     lambda: experiments.train_run(run_cfg(data=config.ModularCfg("add", 50000)), 0)),
    ("OptimCfg lr=nan", "lr", lambda: config.OptimCfg(lr=NAN)),
    ("OptimCfg betas=(0.9,)", "betas", lambda: config.OptimCfg(betas=(0.9,))),
    ("OptimCfg warmup_steps=-5", "warmup_steps", lambda: config.OptimCfg(warmup_steps=-5)),
    ("OptimCfg optimizer='adam'", "optimizer", lambda: config.OptimCfg(optimizer="adam")),
    ("BudgetCfg epochs=-1", "epochs", lambda: config.BudgetCfg(-1)),
    ("BudgetCfg stop_acc=2", "stop_acc", lambda: config.BudgetCfg(stop_acc=2)),
    ("FNNCfg init_scale=inf", "init_scale", lambda: config.FNNCfg(init_scale=INF)),
    ("FNNCfg embedding='glove'", "embedding", lambda: config.FNNCfg(embedding="glove")),
    ("FNNCfg text embedding p=10**4", "p",
     lambda: experiments.train_run(run_cfg(data=config.ModularCfg("add", 10007),
                                           model=config.FNNCfg(embedding="text")), 0)),
    ("TransformerCfg d_model % n_heads", "n_heads",
     lambda: config.TransformerCfg(d_model=10, n_heads=3)),
    ("GrokFastCfg lamb=nan", "lamb", lambda: config.GrokFastCfg(lamb=NAN)),
    ("GrokFastCfg filter='sma'", "filter", lambda: config.GrokFastCfg(filter="sma")),
    ("RunCfg loss='mse'", "loss", lambda: run_cfg(loss="mse")),
    ("RunCfg VectorFNN on modular", "model", lambda: run_cfg(model=config.VectorFNNCfg())),
    ("replace unknown field", "lrr", lambda: config.replace(config.OptimCfg(), lrr=1)),
    ("from_dict unknown kind", "kind", lambda: config.from_dict({"kind": "nope"})),
    ("from_dict a list", "data", lambda: config.from_dict([1, 2])),
    ("from_dict unknown key", "foo", lambda: config.from_dict({"kind": "optim", "foo": 1})),
    ("train_run seed=-1", "seed", lambda: experiments.train_run(run_cfg(), -1)),
    ("train_run seed=1.5", "seed", lambda: experiments.train_run(run_cfg(), 1.5)),
    ("train_run seed='0'", "seed", lambda: experiments.train_run(run_cfg(), "0")),
    ("train_run seed=2**64", "seed", lambda: experiments.train_run(run_cfg(), 2**64)),
    ("train_run cfg=dict", "cfg", lambda: experiments.train_run({"kind": "run"}, 0)),
    ("train_stack seed=-1", "seed",
     lambda: experiments.train_stack([run_cfg(), run_cfg()], [0, -1])),
    ("train_stack seeds of other length", "seeds",
     lambda: experiments.train_stack([run_cfg(), run_cfg()], [0])),
    ("grid unknown axis", "lrr", lambda: experiments.grid(run_cfg(), {"optim__lrr": [1]})),
    ("grid lr=-1 in axis", "lr", lambda: experiments.grid(run_cfg(), {"optim__lr": [-1]})),
    ("race seeds='01'", "seed", lambda: experiments.race({"a": run_cfg()}, "01")),
    ("race seeds=[-1]", "seed", lambda: experiments.race({"a": run_cfg()}, [-1])),
    ("race method=5", "method", lambda: experiments.race({"a": 5}, [0])),
    # gradient transforms
    ("GrokFastEMA alpha=1", "alpha", lambda: GrokFastEMA(alpha=1)),
    ("GrokFastEMA alpha=nan", "alpha", lambda: GrokFastEMA(alpha=NAN)),
    ("GrokFastEMA lamb=nan", "lamb", lambda: GrokFastEMA(lamb=NAN)),
    ("GrokFastEMA lamb=-1", "lamb", lambda: GrokFastEMA(lamb=-1)),
    ("GrokFastEMA lamb=inf", "lamb", lambda: GrokFastEMA(lamb=INF)),
    ("GrokFastMA window=0", "window", lambda: GrokFastMA(window=0)),
    ("GrokFastMA window=1.5", "window", lambda: GrokFastMA(window=1.5)),
    ("GrokFastMA lamb=nan", "lamb", lambda: GrokFastMA(lamb=NAN)),
    ("GrokFast reused on a second model", "filter",
     after(lambda: fit(grad_transform=REUSED), lambda: fit(grad_transform=REUSED,
                                                           model=fnn(width=16)))),
    # GrokTransfer
    ("LowRankEmbedding A full of NaN", "A",
     lambda: transfer.fnn_target(torch.full((7, 3), NAN), 7, d_embed=4, width=8, depth=2)),
    ("LowRankEmbedding A with inf", "A",
     lambda: transfer.fnn_target(torch.full((7, 3), INF), 7, d_embed=4, width=8, depth=2)),
    ("LowRankEmbedding A 1-D", "A",
     lambda: transfer.LowRankEmbedding(torch.ones(7), 4)),
    ("LowRankEmbedding d_target=0", "d_target",
     lambda: transfer.LowRankEmbedding(torch.ones(7, 3), 0)),
    ("LowRankEmbedding init_scale=nan", "init_scale",
     lambda: transfer.LowRankEmbedding(torch.ones(7, 3), 4, init_scale=NAN)),
    ("LowRankEmbedding init_scale=inf", "init_scale",
     lambda: transfer.LowRankEmbedding(torch.ones(7, 3), 4, init_scale=INF)),
    ("LowRankEmbedding seed=-1", "seed",
     lambda: transfer.LowRankEmbedding(torch.ones(7, 3), 4, seed=-1)),
    ("fnn_target A with other rows", "rows",
     lambda: transfer.fnn_target(torch.ones(5, 3), 7, vocab_size=7, d_embed=4, width=8,
                                 depth=2)),
    ("transformer_target A with other rows", "rows",
     lambda: transfer.transformer_target(torch.ones(5, 3), 7, vocab_size=7)),
    ("weak_embedding of a Linear", "embedding",
     lambda: transfer.weak_embedding(torch.nn.Linear(3, 3))),
    ("random_like of NaN", "a", lambda: transfer.random_like(torch.full((3, 3), NAN))),
    ("merge without A @ B", "A @ B", lambda: transfer.merge(fnn())),
    # embeddings and measures
    ("make_table name='glove'", "embedding", lambda: embeddings.make_table("glove", 7)),
    ("fourier frequencies=(0,)", "frequencies", lambda: embeddings.fourier(7, (0,))),
    ("text p=10**4", "p", lambda: embeddings.text(10**4)),
    ("one_hot p=0", "p", lambda: embeddings.one_hot(0)),
    ("from_table NaN table", "table", lambda: embeddings.from_table(torch.full((7, 3), NAN), 7)),
    ("from_table wrong rows", "table", lambda: embeddings.from_table(torch.ones(5, 3), 7)),
    ("summary of an empty History", "history", lambda: measures.summary(History())),
    ("epochs_to unknown metric", "column 'acc'", lambda: measures.epochs_to(History(), "acc")),
    ("fourier_spectrum 1-D", "table", lambda: measures.fourier_spectrum(torch.ones(7))),
    ("frequency_plane k=0", "k", lambda: measures.frequency_plane(torch.ones(7, 3), 0)),
    ("principal_components k=9", "k", lambda: measures.principal_components(torch.ones(7, 3), 9)),
    ("NTKChange probe of 1", "probe", lambda: measures.NTKChange(torch.zeros(1, 2,
                                                                            dtype=torch.long), 7)),
    ("aligned([])", "histories", lambda: measures.aligned([], "test_acc")),
    ("noise_to_signal wrong shape", "weight", lambda: measures.noise_to_signal(torch.ones(3))),
    ("Censored unequal lengths", "budgets", lambda: stats.Censored((1.0,), (1.0, 2.0))),
    ("Censored quantile q=2", "q", lambda: stats.Censored((1.0,), (2.0,)).quantile(2)),
    # History files
    ("History.load {}", "missing keys", history_file("{}")),
    ("History.load []", "object", history_file("[]")),
    ("History.load 'abc'", "JSON", history_file("abc")),
    ("History.load truncated", "JSON", history_file(json.dumps(good_history())[:50])),
    ("History.load binary junk", "JSON", history_file(b"\xff\xfe\x00junk")),
    ("History.load bare NaN", "NaN", history_file(json.dumps(good_history()).replace(
        "0.5", "NaN"))),
    ("History.load deeply nested", "JSON", history_file("[" * 100000 + "]" * 100000)),
    ("History.load unequal columns", "length", bad_history(train_loss=[1.0])),
    ("History.load epoch='abc'", "epoch", bad_history(epoch="abc")),
    ("History.load epoch=[1.5, 2]", "epoch", bad_history(epoch=[1.5, 2])),
    ("History.load epoch decreasing", "epoch", bad_history(epoch=[5, 1])),
    ("History.load train_loss=['abc', 1]", "train_loss", bad_history(train_loss=["abc", 1])),
    ("History.load train_acc=[True, 1]", "train_acc", bad_history(train_acc=[True, 1])),
    ("History.load version 2", "version", bad_history(version=2)),
    ("History.load no version", "version", history_file(json.dumps(
        {k: v for k, v in good_history().items() if k != "version"}))),
    ("History.load stopped='foo'", "stopped", bad_history(stopped="foo")),
    ("History.load seconds='abc'", "seconds", bad_history(seconds="abc")),
    ("History.load extras=[]", "extras", bad_history(extras=[])),
    ("History.load extras of other length", "length", bad_history(extras={"x": [1.0]})),
    ("History.load config=[]", "config", bad_history(config=[])),
    ("History.load unknown key", "unknown", bad_history(foo=1)),
    ("History.load missing file", "missing", lambda: History.load(TMP / "missing.json")),
    ("History.load a folder", str(TMP), lambda: History.load(TMP / "dir.json")
     if (TMP / "dir.json").mkdir() is None else None),
    ("History.load .txt", "path", lambda: History.load(TMP / "h.txt")),
    ("History.load npz junk", "archive", history_file(b"junk", ".npz")),
    ("History.save .csv", "path", lambda: History().save(TMP / "h.csv")),
    ("History.save into a file's folder", "folder",
     lambda: History().save(Path(a_file()) / "h.json")),
    ("checkpoint.load junk", "checkpoint",
     lambda: (Path(TMP / "junk.npz").write_bytes(b"junk"), checkpoint.load(TMP / "junk.npz"))),
]


def _full_disk(*_):
    raise OSError(errno.ENOSPC, "No space left on device")


def fault_full_disk() -> str:
    """A save that fills the disk must leave the previous history as it was."""
    path = TMP / "keep.json"
    History(epoch=[0], train_loss=[1.0], train_acc=[0.0], test_loss=[1.0], test_acc=[0.0],
            weight_norm=[1.0]).save(path)
    before = path.read_bytes()
    real = files.os.fsync
    files.os.fsync = _full_disk
    try:
        History(epoch=[0, 1], train_loss=[1.0, 2.0], train_acc=[0.0, 0.1], test_loss=[1.0, 2.0],
                test_acc=[0.0, 0.0], weight_norm=[1.0, 1.0]).save(path)
    except OSError:
        pass
    finally:
        files.os.fsync = real
    left = [p.name for p in TMP.iterdir() if p.name.startswith(".keep.json")]
    return "ok" if path.read_bytes() == before and not left else "accepted: file changed"


def fault_divergence(**options) -> str:
    history = fit(epochs=20, **options)
    text = files.dumps(history.to_dict())
    strict = "NaN" not in text and "Infinity" not in text
    if history.stopped == "diverged" and strict:
        return f"ok (stopped at epoch {history.epoch[-1]})"
    return f"accepted: stopped={history.stopped}, last loss {history.train_loss[-1]:.3g}"


def fault_cli_full_disk() -> str:
    """``grokbook train --out`` on a full disk: one line and a non-zero exit, no traceback."""
    err = io.StringIO()
    real = files.os.fsync
    files.os.fsync = _full_disk
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["train", "--quiet", "--p", "7", "--epochs", "2", "--out",
                             str(TMP / "full")])
    except Exception as error:  # noqa: BLE001
        return f"raw {type(error).__name__}: {error}"
    finally:
        files.os.fsync = real
    lines = err.getvalue().strip().splitlines()
    return f"ok: exit {code}: {lines[-1]}" if code and len(lines) == 1 else f"accepted: {code}"


def fault_cli_interrupt() -> str:
    """Ctrl-C in ``grokbook transfer`` (the experiments layer): one line, exit 130."""
    err = io.StringIO()
    real = cli.experiments.race

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    cli.experiments.race = interrupted
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["transfer", "--quiet", "--p", "7"])
    except BaseException as error:  # noqa: BLE001
        return f"raw {type(error).__name__}"
    finally:
        cli.experiments.race = real
    return f"ok: exit {code}" if code == 130 else f"accepted: {code}"


FAULTS: list[tuple[str, Callable[[], str]]] = [
    ("cli: full disk saving --out", fault_cli_full_disk),
    ("cli: Ctrl-C in transfer", fault_cli_interrupt),
    ("full disk during History.save", fault_full_disk),
    ("diverge lr=1e30", lambda: fault_divergence(lr=1e30)),
    ("diverge lr=1e6 wd=0", lambda: fault_divergence(lr=1e6, weight_decay=0.0)),
    ("diverge init_scale=1e30", lambda: fault_divergence(model=fnn(init_scale=1e30))),
    ("stack diverge lr=1e6 wd=0", lambda: "ok" if all(
        h.stopped == "diverged" for h in stack(epochs=20, lr=1e6, weight_decay=0.0))
     else "accepted"),
]

CLI: list[tuple[str, str, list[str]]] = [(name, param, argv.split()) for name, param, argv in [
    ("--p 1", "p", "--p 1"),
    ("--p 0", "p", "--p 0"),
    ("--p 2.5", "p", "--p 2.5"),
    ("--p 50000 (memory)", "memory", "--p 50000 --epochs 1"),
    ("--task mul --p 8", "p", "--task mul --p 8"),
    ("--task pow", "task", "--task pow"),
    ("--model cnn", "model", "--model cnn"),
    ("--frac 0", "frac", "--frac 0"),
    ("--frac 1.5", "frac", "--frac 1.5"),
    ("--frac nan", "frac", "--frac nan"),
    ("--frac abc", "frac", "--frac abc"),
    ("--lr 0", "lr", "--lr 0"),
    ("--lr -1", "lr", "--lr -1"),
    ("--lr nan", "lr", "--lr nan"),
    ("--lr inf", "lr", "--lr inf"),
    ("--wd -1", "wd", "--wd -1"),
    ("--wd nan", "wd", "--wd nan"),
    ("--init-scale 0", "init_scale", "--init-scale 0"),
    ("--init-scale inf", "init_scale", "--init-scale inf"),
    ("--init-scale nan", "init_scale", "--init-scale nan"),
    ("--epochs -1", "epochs", "--epochs -1"),
    ("--epochs 1.5", "epochs", "--epochs 1.5"),
    ("--eval-every 0", "eval_every", "--eval-every 0"),
    ("--stop-acc 2", "stop_acc", "--stop-acc 2"),
    ("--stop-acc 0", "stop_acc", "--stop-acc 0"),
    ("--seed -1", "seed", "--seed -1"),
    ("--seed 2**64", "seed", f"--seed {2**64}"),
    ("--seed 1.5", "seed", "--seed 1.5"),
    ("--device tpu", "device", "--device tpu"),
    ("--device cuda (no GPU)", "device", "--device cuda"),
    ("--device cuda:7", "device", "--device cuda:7"),
    ("--batch-size 0", "batch", "--batch-size 0"),
    ("--batch-size -5", "batch", "--batch-size -5"),
    ("--checkpoint-every 0", "checkpoint", "--checkpoint-every 0"),
    ("--checkpoint-every -1", "checkpoint", "--checkpoint-every -1"),
    ("--out a file", "out", "--out {file}"),
    ("--out under a file", "out", "--out {file}/sub"),
    ("--resume without --out", "resume", "--resume"),
    ("--resume with an empty --out", "resume", "--resume --out {empty}"),
]] + [(f"transfer {name}", param, ["transfer", *argv.split()]) for name, param, argv in [
    ("--p 1", "p", "--p 1"),
    ("--frac 2", "frac", "--frac 2"),
    ("--weak-stop-acc 2", "stop_acc", "--weak-stop-acc 2"),
    ("--weak-d-embed 0", "d_embed", "--weak-d-embed 0"),
    ("--weak-width 0", "width", "--weak-width 0"),
    ("--weak-epochs -1", "epochs", "--weak-epochs -1"),
    ("--depth 0", "depth", "--depth 0"),
    ("--lr -1", "lr", "--lr -1"),
    ("--wd nan", "weight_decay", "--wd nan"),
    ("--scratch-wd -1", "weight_decay", "--scratch-wd -1"),
    ("--weak-wd -1", "weight_decay", "--weak-wd -1"),
    ("--seed -1", "seed", "--seed -1"),
    ("--epochs -1", "epochs", "--epochs -1"),
    ("--eval-every 0", "eval_every", "--eval-every 0"),
]] + [
    ("tune --workers -1", "workers", ["tune", "--workers", "-1", "--table", "{file}.csv"]),
    ("run chapter 99", "chapter", ["run", "99"]),
]

CLI_FAULTS = [
    ("--lr 1e30 (diverges)", "--p 7 --epochs 20 --lr 1e30"),
    ("--lr 1e6 --wd 0 (diverges)", "--p 7 --epochs 50 --lr 1e6 --wd 0"),
]


def classify(action: Callable[[], object], param: str) -> str:
    STARTED["training"] = False
    try:
        action()
    except ValueError as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        named = param.lower() in str(error).lower()
        kind = ("late" if STARTED["training"] and named else "clear") if named else "unclear"
        return f"{kind}: {message[:110]}"
    except RecursionError as error:
        return f"raw RecursionError: {str(error)[:80]}"
    except Exception as error:  # noqa: BLE001 - the point is to see what escapes
        if isinstance(error, OSError) and param.lower() in str(error).lower():
            return f"clear: {type(error).__name__}: {str(error)[:100]}"
        return f"raw {type(error).__name__}: {str(error).splitlines()[0][:100]}"
    return "accepted"


def run_cli(argv: list[str], param: str) -> str:
    file, empty = a_file(), TMP / "empty"
    empty.mkdir(exist_ok=True)
    argv = [a.format(file=file, empty=empty) for a in argv]
    if argv[0] not in ("transfer", "tune", "run"):
        argv = ["train", "--quiet", "--epochs", "3", *argv]
    err = io.StringIO()
    STARTED["training"] = False
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    except Exception as error:  # noqa: BLE001
        return f"raw {type(error).__name__}: {str(error)[:100]}"
    message = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""
    if code == 0:
        return "accepted"
    if param.lower().replace("_", "-") in message.lower() or param.lower() in message.lower():
        return f"{'late' if STARTED['training'] else 'clear'}: exit {code}: {message[:100]}"
    return f"unclear: exit {code}: {message[:100]}"


def run_cli_fault(argv: str) -> str:
    out = TMP / f"out{abs(hash(argv))}"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["train", "--quiet", *argv.split(), "--out", str(out)])
    saved = out / "history.json"
    text = saved.read_text() if saved.exists() else ""
    strict = "NaN" not in text and "Infinity" not in text
    if code != 0 and strict and "diverged" in err.getvalue():
        return f"ok: exit {code}"
    return f"accepted: exit {code}, strict JSON {strict}"


def main() -> int:
    only_failing = "--failing" in sys.argv
    os.environ.setdefault("GROKBOOK_CACHE", "off")
    os.environ.setdefault("GROKBOOK_PROGRESS", "0")
    History.append = _spy(History.append)
    cli.modular_arithmetic, cli.make_model = _spy(cli.modular_arithmetic), _spy(cli.make_model)
    rows = [(f"api: {name}", classify(action, param)) for name, param, action in API]
    rows += [(f"fault: {name}", action()) for name, action in FAULTS]
    rows += [(f"cli: {name}", run_cli(argv, param)) for name, param, argv in CLI]
    rows += [(f"cli fault: {name}", run_cli_fault(argv)) for name, argv in CLI_FAULTS]
    counts: dict[str, int] = {}
    for name, outcome in rows:
        kind = outcome.split(":")[0].split(" ")[0]
        counts[kind] = counts.get(kind, 0) + 1
        if not only_failing or kind not in ("clear", "ok"):
            print(f"{name:48s} {outcome}")
    print(f"\n{len(rows)} cases: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 0 if set(counts) <= {"clear", "ok"} else 1


if __name__ == "__main__":
    sys.exit(main())
