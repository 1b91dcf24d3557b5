import numpy as np
import pytest
import torch

from grokbook.accelerators import GrokFastEMA, GrokFastMA
from grokbook.bench import main as bench_main
from grokbook.ensemble import Ensemble, StackedAdamW
from grokbook.models import VectorFNN, make_model
from grokbook.neuralgrok import TensorNormalization
from grokbook.tasks import modular_arithmetic, sparse_parity
from grokbook.train import train

FNN = {"d_embed": 8, "width": 32, "depth": 2}
TRANSFORMER = {"d_model": 16, "n_heads": 2, "d_mlp": 32, "n_layers": 2}
ONE_LAYER = {**TRANSFORMER, "n_layers": 1}  # keys looked up per token (Block.last_from_table)
COLUMNS = ("train_loss", "train_acc", "test_loss", "test_acc", "weight_norm")


def assert_same_run(alone, member, rtol=1e-4, atol=1e-5):
    """A stack member's History is its run alone's to float32 rounding. Not to the bit: that
    holds on some CPUs only (the AVX-512 CPU this book was written on), while on an
    AMD EPYC with AVX2 a batched matrix product or a stacked GrokFast filter rounds differently
    from the single one (last digits of a loss, from the first epochs on)."""
    assert alone.epoch == member.epoch
    for column in COLUMNS:
        np.testing.assert_allclose(alone.column(column), member.column(column),
                                   rtol=rtol, atol=atol, err_msg=column)


@pytest.mark.parametrize(("kind", "options"), [("fnn", FNN), ("transformer", TRANSFORMER),
                                               ("transformer", ONE_LAYER)])
def test_each_member_matches_the_same_configuration_trained_alone(kind, options):
    # Settings away from the edge of stability, where float rounding would be amplified.
    seeds, lrs, wds, scales = [0, 1, 2], [3e-3, 1e-3, 3e-3], [1.0, 0.1, 0.0], [1.0, 0.5, 1.5]
    datas = [modular_arithmetic("add", 17, 0.5, seed=s) for s in seeds]

    def build(i):
        return make_model(kind, 17, 17, seed=seeds[i], init_scale=scales[i], **options)

    settings = {"epochs": 30, "eval_every": 3, "warmup_steps": 5}
    members = train([build(i) for i in range(3)], datas, lr=lrs, weight_decay=wds, **settings)
    for i in range(3):
        alone = train(build(i), datas[i], lr=lrs[i], weight_decay=wds[i], **settings)
        assert_same_run(alone, members[i])
        assert members[i].config["lr"] == pytest.approx(lrs[i])


def test_trained_parameters_are_written_back_into_the_models():
    data = modular_arithmetic("add", 13, 0.5)
    models = [make_model("fnn", 13, 13, seed=s, **FNN) for s in (0, 1)]
    alone = make_model("fnn", 13, 13, seed=1, **FNN)
    train(models, data, epochs=10, lr=1e-2)
    train(alone, data, epochs=10, lr=1e-2)
    for a, b in zip(models[1].parameters(), alone.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_members_stop_recording_on_their_own():
    data = modular_arithmetic("add", 31, 0.6, seed=0)
    models = [make_model("fnn", 31, 31, seed=0, d_embed=16, width=64, depth=2) for _ in range(2)]
    fast, slow = train(models, data, epochs=1500, lr=1e-2, weight_decay=[1.0, 0.0],
                       eval_every=10, stop_acc=0.9, stop_patience=2)
    assert fast.epoch[-1] < 1500 and fast.test_acc[-1] >= 0.9
    assert slow.epoch[-1] == 1500 and slow.test_acc[-1] < 0.9
    assert fast.config["steps"] == fast.epoch[-1] and slow.config["steps"] == 1500


def test_same_seeds_same_ensemble_histories():
    data = modular_arithmetic("add", 13, 0.5)
    runs = [train([make_model("fnn", 13, 13, seed=s, **FNN) for s in (0, 1)], data, epochs=20)
            for _ in range(2)]
    for a, b in zip(*runs):
        for column in COLUMNS:
            assert a.column(column) == b.column(column)


def test_stacked_adamw_is_pytorchs_adamw_per_member():
    torch.manual_seed(0)
    weights = torch.randn(3, 4, 5)
    stacked = weights.clone().requires_grad_(True)
    optimizer = StackedAdamW([stacked], torch.tensor([0.1, 0.01, 0.001]),
                             torch.tensor([0.0, 1.0, 5.0]))
    singles = [weights[k].clone().requires_grad_(True) for k in range(3)]
    references = [torch.optim.AdamW([w], lr=lr, weight_decay=wd, betas=(0.9, 0.98))
                  for w, lr, wd in zip(singles, [0.1, 0.01, 0.001], [0.0, 1.0, 5.0])]
    for _ in range(5):
        gradient = torch.randn(3, 4, 5)
        stacked.grad = gradient.clone()
        optimizer.step()
        for k, (w, reference) in enumerate(zip(singles, references)):
            w.grad = gradient[k].clone()
            reference.step()
    for k, w in enumerate(singles):  # the same arithmetic: to the bit
        torch.testing.assert_close(stacked[k].detach(), w.detach(), rtol=0, atol=0)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Ensemble([]), "at least one model"),
    (lambda: Ensemble([make_model("fnn", 7, 7, width=8), make_model("fnn", 7, 7, width=9)]),
     "must share one architecture"),
    (lambda: train([make_model("fnn", 7, 7)] * 2, modular_arithmetic("add", 7, 0.5),
                   lr=[0.1, 0.2, 0.3]), r"lr must be one number or one per member \(2\)"),
    (lambda: train([make_model("fnn", 7, 7)] * 2, [modular_arithmetic("add", 7, 0.5)],
                   epochs=1), r"one data set or one per member \(2\)"),
    (lambda: train([make_model("fnn", 7, 7)] * 2, [modular_arithmetic("add", 7, f)
                                                   for f in (0.5, 0.6)], epochs=1),
     "equal train and test sizes"),
    (lambda: train([make_model("fnn", 7, 7)] * 2, modular_arithmetic("add", 7, 0.5),
                   optimizer=torch.optim.SGD(make_model("fnn", 7, 7).parameters(), lr=0.1)),
     r"optimizer is not supported when training a stack of models \(a stack trains with its "
     "own per-member AdamW"),
    (lambda: train([make_model("fnn", 7, 7)] * 2, modular_arithmetic("add", 7, 0.5),
                   checkpoint="run.npz"), "checkpoint is not supported when training a stack"),
    (lambda: train([make_model("fnn", 7, 7)] * 2, modular_arithmetic("add", 7, 0.5),
                   grad_transform=TensorNormalization()),
     "grad_transform: a TensorNormalization acts on one model's gradients and cannot serve a "
     "stack"),
    (lambda: train([make_model("fnn", 7, 7)] * 2, modular_arithmetic("add", 7, 0.5),
                   seed=[0, 1, 2]), r"seed must be one number or one per member \(2\)"),
    (lambda: train(make_model("fnn", 7, 7), modular_arithmetic("add", 7, 0.5), seed=[0, 1]),
     "seed must be an integer in 0"),
    (lambda: train([], modular_arithmetic("add", 7, 0.5)),
     "model must be a model or a non-empty list of models"),
    (lambda: train(make_model("fnn", 7, 7), modular_arithmetic("add", 7, 0.5),
                   grad_transform=GrokFastEMA(lamb=[1.0, 2.0])),
     "lamb holds 2 values, one per member of a stack, but this filter serves a single FNN"),
    (lambda: train([make_model("fnn", 7, 7)] * 3, modular_arithmetic("add", 7, 0.5),
                   grad_transform=GrokFastMA(lamb=[1.0, 2.0])),
     "but this filter serves a stack of 3 members"),
])
def test_bad_ensembles_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_benchmark_quick_smoke_run(capsys):
    assert bench_main(["--quick"]) == 0
    out = capsys.readouterr().out
    for figure in ("1. Nanda setup", "2. training step", "3. N models", "tiny FNNs",
                   "tiny Transformers", "one stack of 4, ", "2 processes x 1 thread",
                   "engine: 2 x 1 thread",
                   "best: "):
        assert figure in out


def _parity_model(seed: int) -> VectorFNN:
    torch.manual_seed(seed)
    return VectorFNN(12, 1, d_embed=16, width=32, depth=2)


# Each option of a single run, given to a stack of three members that differ in seed (and so in
# init, data split and minibatch order): every member must follow its run alone.
STACK_OPTIONS = {
    "minibatches": {"batch_size": 50, "seed": [3, 4, 5], "epochs": 12},
    "logistic loss": {"loss": "logistic", "epochs": 40},
    "GrokFast EMA": {"grad_transform": GrokFastEMA, "epochs": 40},
    "GrokFast MA": {"grad_transform": lambda: GrokFastMA(window=5), "epochs": 40},
    "measures and callback": {  # the callback stops each member at its own epoch
        "measures": {"first weight": lambda m: next(m.parameters()).flatten()[0].item()},
        "callback": lambda h: h.epoch[-1] >= 20 + 5 * h.config["seed"], "epochs": 40},
}


@pytest.mark.parametrize("option", list(STACK_OPTIONS))
def test_every_option_of_a_single_run_works_for_a_stack(option):
    options = dict(STACK_OPTIONS[option])
    seeds = options.pop("seed", [0, 1, 2])
    transform = options.pop("grad_transform", None)
    if option == "logistic loss":
        datas = [sparse_parity(n_bits=12, k=3, n_train=200, n_test=100, seed=s) for s in range(3)]
        build = _parity_model
    else:
        datas = [modular_arithmetic("add", 17, 0.5, seed=s) for s in range(3)]
        build = lambda i: make_model("fnn", 17, 17, seed=i, **FNN)  # noqa: E731
    settings = {"lr": 3e-3, "eval_every": 4, "warmup_steps": 3, "progress": False, **options}
    stack = train([build(i) for i in range(3)], datas, seed=seeds,
                  grad_transform=transform() if transform else None, **settings)
    for i in range(3):
        alone = train(build(i), datas[i], seed=seeds[i],
                      grad_transform=transform() if transform else None, **settings)
        assert_same_run(alone, stack[i])
        assert stack[i].stopped == alone.stopped
        for name in alone.extras:
            np.testing.assert_allclose(alone.extras[name], stack[i].extras[name], rtol=1e-4)


def test_members_that_stop_leave_the_stack_and_keep_their_parameters():
    # The members stop at epochs 50, 150 and 250 (their callbacks say so); a GrokFast filter
    # keeps state per member, so each departure must drop exactly that member's part of it.
    data = modular_arithmetic("add", 17, 0.6, seed=0)
    build = lambda s: make_model("fnn", 17, 17, seed=s, **FNN)  # noqa: E731
    settings = {"lr": 3e-3, "weight_decay": 1.0, "epochs": 300, "progress": False,
                "callback": lambda h: h.epoch[-1] >= 50 + 100 * h.config["seed"]}
    models = [build(s) for s in range(3)]
    stack = train(models, data, seed=[0, 1, 2], grad_transform=GrokFastMA(window=20),
                  **settings)
    assert [h.epoch[-1] for h in stack] == [50, 150, 250]
    assert [h.config["steps"] for h in stack] == [50, 150, 250]
    for i in range(3):
        model = build(i)
        alone = train(model, data, seed=i, grad_transform=GrokFastMA(window=20), **settings)
        assert_same_run(alone, stack[i])
        assert stack[i].stopped == alone.stopped == "callback"
        for a, b in zip(models[i].parameters(), model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_members_epoch_of_95_percent_agrees_with_its_run_alone_on_8_seeds():
    """On chapter 1's FNN at the ci size, each of 8 seeds (own init, own split) reaches 95% test
    within two evaluation intervals of the same seed trained alone, and the stack repeats bit for
    bit. On one thread a member's recorded numbers are its run alone's to float32 rounding."""
    from grokbook.experiments import build_model, make_data, train_options
    from grokbook.measures import epochs_to
    from grokbook.profiles.grokking import CI

    cfg, seeds = CI.fnn, range(8)
    settings = {**train_options(cfg), "stop_acc": 0.95, "progress": False}
    datas = [make_data(cfg.data, s) for s in seeds]
    stack = train([build_model(cfg, s) for s in seeds], datas, **settings)
    alone = [train(build_model(cfg, s), datas[s], **settings) for s in seeds]
    reached = [(epochs_to(a), epochs_to(m)) for a, m in zip(alone, stack)]
    assert all(a is not None for a, _ in reached), reached  # the check can fail: it measures
    assert all(m is not None and abs(a - m) <= 2 * cfg.budget.eval_every
               for a, m in reached), reached
    again = train([build_model(cfg, s) for s in seeds], datas, **settings)
    for a, b in zip(stack, again):
        for column in COLUMNS:
            assert a.column(column) == b.column(column)
    if torch.get_num_threads() == 1:  # as under `make test`; more threads split work otherwise
        for a, m in zip(alone, stack):
            assert_same_run(a, m, rtol=1e-5)


@pytest.mark.parametrize("kind", ["fnn", "transformer", "one-layer transformer"])
def test_on_one_thread_a_member_is_its_run_alone_to_float_rounding(kind):
    """Same gradients (the batched forward and backward, to float32 rounding) and PyTorch's
    AdamW arithmetic (StackedAdamW), with warm-up, minibatches and a GrokFast filter; the
    stack itself repeats bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        options = {"fnn": FNN, "transformer": TRANSFORMER}.get(kind, ONE_LAYER)
        datas = [modular_arithmetic("add", 17, 0.5, seed=s) for s in range(3)]
        model_kind = "fnn" if kind == "fnn" else "transformer"
        build = lambda s: make_model(model_kind, 17, 17, seed=s, **options)  # noqa: E731
        settings = {"epochs": 12, "lr": [1e-2, 3e-3, 1e-3], "weight_decay": [1.0, 0.0, 3.0],
                    "warmup_steps": 5, "batch_size": 64, "eval_every": 3, "progress": False}
        stack = train([build(s) for s in range(3)], datas, seed=[0, 1, 2],
                      grad_transform=GrokFastEMA(), **settings)
        again = train([build(s) for s in range(3)], datas, seed=[0, 1, 2],
                      grad_transform=GrokFastEMA(), **settings)
        for s in range(3):
            alone = train(build(s), datas[s], seed=s, grad_transform=GrokFastEMA(),
                          **{**settings, "lr": settings["lr"][s],
                             "weight_decay": settings["weight_decay"][s]})
            assert_same_run(alone, stack[s], rtol=1e-5, atol=0)
            for column in COLUMNS:
                assert again[s].column(column) == stack[s].column(column), column
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("transform", ["NeuralGrok", "TensorNormalization"])
def test_single_model_transforms_serve_a_stack_one_per_member(transform):
    """NeuralGrok (its meta step included) and per-tensor normalisation, one per member via
    PerMember, each member on its own inner split: on one thread each member is its run alone
    to float32 rounding, and a member that stops takes its transform out of the stack."""
    from grokbook.ensemble import PerMember
    from grokbook.neuralgrok import NeuralGrokCfg, TensorNormCfg

    def build(s):
        data = modular_arithmetic("add", 17, 0.6, seed=s)
        if transform == "NeuralGrok":
            return NeuralGrokCfg(outer_frac=0.1, meta_every=2).build(data, seed=s)
        return data, TensorNormCfg().build()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = {"epochs": 30, "eval_every": 5, "lr": 3e-3, "progress": False,
                    "callback": lambda h: h.epoch[-1] >= 10 + 10 * h.config["seed"]}
        parts = [build(s) for s in range(3)]
        stack = train([make_model("fnn", 17, 17, seed=s, **FNN) for s in range(3)],
                      [data for data, _ in parts], seed=[0, 1, 2],
                      grad_transform=PerMember([t for _, t in parts]), **settings)
        assert [h.epoch[-1] for h in stack] == [10, 20, 30]
        for s in range(3):
            data, alone_transform = build(s)
            alone = train(make_model("fnn", 17, 17, seed=s, **FNN), data, seed=s,
                          grad_transform=alone_transform, **settings)
            assert_same_run(alone, stack[s], rtol=1e-5, atol=0)
            if transform == "NeuralGrok":
                np.testing.assert_allclose(parts[s][1].outer_losses,
                                           alone_transform.outer_losses, rtol=1e-5)
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="PerMember holds 3 transforms, but the stack has 2"):
        train([make_model("fnn", 17, 17, seed=s, **FNN) for s in range(2)], parts[0][0],
              grad_transform=PerMember([build(s)[1] for s in range(3)]), epochs=1)


def test_a_frozen_parameter_stays_frozen_in_a_stack_as_alone():
    """PyTorch's AdamW leaves a parameter without a gradient as it is; so does the stack's."""
    data = modular_arithmetic("add", 17, 0.5, seed=0)

    def build(s):
        model = make_model("fnn", 17, 17, seed=s, **FNN)
        model.embed.weight.requires_grad_(False)
        return model

    models = [build(0), build(1)]
    stack = train(models, data, epochs=20, lr=1e-2, progress=False)
    torch.testing.assert_close(models[1].embed.weight, build(1).embed.weight, rtol=0, atol=0)
    alone = train(build(1), data, epochs=20, lr=1e-2, progress=False)
    assert_same_run(alone, stack[1])
