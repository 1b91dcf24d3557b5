import numpy as np
import pytest
import torch

from grokbook.bench import main as bench_main
from grokbook.ensemble import Ensemble, StackedAdamW
from grokbook.models import make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import train

FNN = {"d_embed": 8, "width": 32, "depth": 2}
TRANSFORMER = {"d_model": 16, "n_heads": 2, "d_mlp": 32, "n_layers": 2}
COLUMNS = ("train_loss", "train_acc", "test_loss", "test_acc", "weight_norm")


def assert_same_run(alone, member):
    assert alone.epoch == member.epoch
    for column in COLUMNS:
        np.testing.assert_allclose(alone.column(column), member.column(column),
                                   rtol=1e-4, atol=1e-5, err_msg=column)


@pytest.mark.parametrize(("kind", "options"), [("fnn", FNN), ("transformer", TRANSFORMER)])
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
    for k, w in enumerate(singles):
        torch.testing.assert_close(stacked[k].detach(), w.detach())


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
    (lambda: train([make_model("fnn", 7, 7)], modular_arithmetic("add", 7, 0.5), batch_size=4),
     "batch_size is not supported when training an ensemble"),
])
def test_bad_ensembles_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_benchmark_quick_smoke_run(capsys):
    assert bench_main(["--quick"]) == 0
    out = capsys.readouterr().out
    for figure in ("1. Nanda setup", "2. training step", "3. N models", "tiny FNNs",
                   "tiny Transformers", "one stack of 4, ", "2 processes x 1 thread",
                   "best: "):
        assert figure in out
