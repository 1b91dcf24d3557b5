import contextlib
import importlib
import types

import pytest
import torch

from grokbook import measures
from grokbook.models import VectorFNN, make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import History, train

# The ci profile's FNN on a+b mod 31: groks in about a second.
SETTINGS = {"d_embed": 16, "width": 64, "depth": 2}


def run(epochs=200, seed=0, **options):
    data = modular_arithmetic("add", 31, 0.6, seed=seed)
    model = make_model("fnn", 31, 31, seed=seed, **SETTINGS)
    return train(model, data, **{"epochs": epochs, "lr": 1e-2, "weight_decay": 1.0, "seed": seed,
                                 **options})


def test_a_small_fnn_groks_memorizing_first_and_generalizing_much_later():
    history = run(epochs=1500, eval_every=10)
    stats = measures.summary(history)
    assert stats["epochs_to_train"] is not None and stats["epochs_to_test"] is not None
    assert stats["epochs_to_test"] >= 3 * stats["epochs_to_train"]
    assert history.test_acc[-1] > 0.95
    plateau = history.epoch.index(stats["epochs_to_train"]) + 5
    assert history.test_acc[plateau] < 0.5  # a real plateau, not slow joint progress


def test_weight_decay_zero_does_not_generalize_in_the_same_budget():
    data = modular_arithmetic("add", 31, 0.6, seed=0)
    model = make_model("fnn", 31, 31, seed=0, **SETTINGS)
    history = train(model, data, epochs=800, lr=1e-2, weight_decay=0.0, eval_every=20)
    assert history.train_acc[-1] == 1.0 and history.test_acc[-1] < 0.5


def test_history_records_every_eval_and_the_last_epoch():
    history = run(epochs=25, eval_every=10)
    assert history.epoch == [0, 10, 20, 25]
    assert history.config["steps"] == 25
    assert len(history.train_loss) == len(history.test_acc) == len(history.weight_norm) == 4
    assert history.seconds > 0


@pytest.mark.parametrize("batch_size", [None, 64])
def test_same_seed_gives_the_same_history_bit_for_bit(batch_size):
    a, b = (run(epochs=30, batch_size=batch_size) for _ in range(2))
    for column in ("train_loss", "train_acc", "test_loss", "test_acc", "weight_norm"):
        assert a.column(column) == b.column(column)
    assert a.test_loss != run(epochs=30, batch_size=batch_size, seed=1).test_loss


def test_full_batch_train_metrics_match_a_separate_evaluation():
    data = modular_arithmetic("add", 31, 0.6, seed=0)
    model = make_model("fnn", 31, 31, seed=0, **SETTINGS)
    history = train(model, data, epochs=7, eval_every=7)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(data.x_train), data.y_train).item()
    assert history.train_loss[-1] == pytest.approx(loss, rel=1e-6)


def test_minibatches_take_several_steps_per_epoch():
    history = run(epochs=3, batch_size=100, eval_every=1)
    assert history.config["steps"] == 3 * 6  # 577 examples in batches of 100
    assert history.epoch == [0, 1, 2, 3]


def test_stop_acc_stops_once_test_accuracy_holds():
    history = run(epochs=3000, eval_every=10, stop_acc=0.9, stop_patience=3)
    assert history.epoch[-1] < 3000
    assert all(acc >= 0.9 for acc in history.test_acc[-3:])
    assert history.test_acc[-4] < 0.9 or len(history) == 3


def test_callback_sees_each_evaluation_and_can_stop():
    seen = []

    def callback(history):
        seen.append(history.epoch[-1])
        return history.epoch[-1] >= 20

    history = run(epochs=100, eval_every=10, callback=callback)
    assert seen == [0, 10, 20] and history.epoch == [0, 10, 20]


def test_grad_transform_runs_between_backward_and_step():
    data = modular_arithmetic("add", 31, 0.6)
    model = make_model("fnn", 31, 31, **SETTINGS)
    before = [p.detach().clone() for p in model.parameters()]

    def zero(model):
        for p in model.parameters():
            assert p.grad is not None
            p.grad.zero_()

    train(model, data, epochs=1, lr=0.1, weight_decay=0.5, grad_transform=zero)
    for old, new in zip(before, model.parameters()):  # only weight decay moved the weights
        torch.testing.assert_close(new.detach(), old * (1 - 0.1 * 0.5))


def test_extra_measures_are_recorded():
    norm = {"embed_norm": lambda model: model.embed.weight.norm()}
    history = run(epochs=20, eval_every=10, measures=norm)
    assert len(history.extras["embed_norm"]) == 3
    assert history.column("embed_norm") == history.extras["embed_norm"]


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_history_round_trips_through_disk(tmp_path, suffix):
    history = run(epochs=20, eval_every=10, measures={"one": lambda m: 1.0})
    loaded = History.load(history.save(tmp_path / f"run{suffix}"))
    assert loaded == history


@pytest.mark.parametrize(("options", "message"), [
    ({"epochs": -1}, "epochs must be a non-negative integer"),
    ({"eval_every": 0}, "eval_every must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be None"),
    ({"stop_acc": 1.5}, r"stop_acc must be a finite number in \(0, 1\]"),
    ({"stop_patience": 0}, "stop_patience must be a positive integer"),
    ({"warmup_steps": -5}, "warmup_steps must be a non-negative integer"),
    ({"lr": float("inf")}, r"lr must be a finite number in \(0, 1e\+30\], got inf"),
    ({"lr": 1e300}, "lr must be a finite number"),
    ({"lr": -1e-3}, "lr must be a finite number"),
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"weight_decay": -1.0}, "weight_decay must be a finite number"),
    ({"betas": (0.9, 1.0)}, r"betas must be a finite number in \[0, 1\)"),
    ({"betas": (0.9,)}, "betas must be two numbers"),
    ({"seed": 2**70}, "seed must be an integer in 0"),
    ({"seed": 1.5}, "seed must be an integer in 0"),
    ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"batch_size": True}, "batch_size must be None"),
    ({"optimizer": "adam"}, "optimizer must be a torch.optim.Optimizer"),
    ({"measures": [len]}, "measures must be a dict"),
    ({"measures": {"x": 5}}, r"measures\['x'\] must be callable"),
    ({"grad_transform": 5}, "grad_transform must be callable"),
    ({"callback": "stop"}, "callback must be callable"),
    ({"checkpoint": "/", "resume": True}, "checkpoint must name a file"),
    ({"checkpoint_every": 0, "checkpoint": "c.npz"}, "checkpoint_every must be a positive"),
])
def test_bad_training_settings_raise_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        run(**options)


def test_history_rejects_unknown_formats_and_columns(tmp_path):
    with pytest.raises(ValueError, match="must end in .json or .npz"):
        History().save(tmp_path / "run.txt")
    with pytest.raises(KeyError, match="no column 'speed'"):
        History().column("speed")
    with pytest.raises(ValueError, match="no column 'speed'"):  # a bad argument, like others
        measures.epochs_to(History(), "speed")


def _parity(**options):
    from grokbook.tasks import sparse_parity
    return sparse_parity(6, 2, 16, 16, **options)


@pytest.mark.parametrize(("model", "data", "options", "message"), [
    (lambda: make_model("fnn", 7, 7, d_embed=4, width=8, depth=2), _parity, {"loss": "logistic"},
     "FNN reads integer tokens, but data.x_train holds torch.float32 vectors"),
    (lambda: VectorFNN(2, 7, 4, 8, 2),
     lambda: modular_arithmetic("add", 7, 0.5), {}, "VectorFNN reads real vectors"),
    (lambda: VectorFNN(6, 1, 4, 8, 2), _parity, {},
     "loss 'cross_entropy' needs integer class labels"),
    (lambda: make_model("fnn", 7, 7, d_embed=4, width=8, depth=2),
     lambda: modular_arithmetic("add", 7, 0.5), {"loss": "logistic"},
     "loss 'logistic' needs real labels"),
    (lambda: make_model("fnn", 7, 7, d_embed=4, width=8, depth=2), lambda: None, {},
     "data must have tensors x_train, y_train, x_test, y_test"),
    (lambda: make_model("fnn", 7, 7, d_embed=4, width=8, depth=2),
     lambda: [modular_arithmetic("add", 7, 0.5)], {}, "data must be one data set for one model"),
])
def test_a_model_that_cannot_read_the_data_is_refused_before_training(model, data, options,
                                                                      message):
    with pytest.raises(ValueError, match=message):
        train(model(), data(), epochs=2, progress=False, **options)


def test_a_run_too_large_for_memory_is_refused_with_its_estimate(monkeypatch):
    from grokbook import checks

    monkeypatch.setattr(checks, "available_memory", lambda device=None: 10 * 2**20)  # 10 MiB
    data = modular_arithmetic("add", 97, 0.5)
    model = make_model("fnn", 97, 97, d_embed=16, width=64, depth=2)  # 23k parameters: fits
    with pytest.raises(ValueError, match=r"training 1 x FNN on 4,704 examples at once needs "
                       r"about .* GiB .*GROKBOOK_MEMORY_CHECK=off"):
        train(model, data, epochs=1, progress=False)
    with pytest.raises(ValueError, match="training 3 x FNN"):
        train([model, make_model("fnn", 97, 97, 1, d_embed=16, width=64, depth=2),
               make_model("fnn", 97, 97, 2, d_embed=16, width=64, depth=2)], data, epochs=1,
              progress=False)
    monkeypatch.setenv("GROKBOOK_MEMORY_CHECK", "off")
    assert len(train(model, data, epochs=1, progress=False)) == 2


def test_the_memory_estimate_counts_a_per_token_table_once(monkeypatch):
    """A one-layer Transformer computes its keys once per token (models.Block.last_from_table):
    the memory estimate grows per example with what each example adds, not with the table,
    so its slope stays below the two-layer model's, which computes them per example."""
    train_module = importlib.import_module("grokbook.train")  # the package exports train()

    needed = []
    monkeypatch.setattr(train_module, "check_memory",
                        lambda n, what, device=None: needed.append(n))
    data = modular_arithmetic("add", 97, 0.5)
    slopes = {}
    for layers in (1, 2):
        model = make_model("transformer", 97, 97, d_model=32, n_heads=4, d_mlp=64,
                           n_layers=layers)
        for rows in (1000, 2000):
            train_module.check_run_memory(model, data, batch_rows=rows)
        slopes[layers] = (needed[-1] - needed[-2]) / 1000
    assert 0 < slopes[1] < slopes[2], slopes


@pytest.mark.parametrize(("options", "message"), [
    ({"lr": [1e-2, -1.0]}, "lr must be a finite number"),
    ({"lr": [1e-2, float("nan")]}, "lr must be a finite number"),
    ({"weight_decay": [1.0, -0.5]}, "weight_decay must be a finite number"),
    ({"warmup_steps": -1}, "warmup_steps must be a non-negative integer"),
    ({"betas": (1.5, 0.9)}, r"betas must be a finite number in \[0, 1\)"),
    ({"seed": -1}, "seed must be an integer in 0"),
    ({"device": "tpu"}, "device must be one of"),
    ({"data": modular_arithmetic("add", 11, 0.5)}, "the model reads only tokens 0..6"),
    ({"data": [modular_arithmetic("add", 7, 0.5), None]}, "data.1. must have tensors"),
    ({"data": [modular_arithmetic("add", 7, 0.5)] * 3}, "one per member .2., got 3"),
])
def test_a_stack_gets_the_same_checks_as_a_single_run(options, message):
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic

    options = {"data": modular_arithmetic("add", 7, 0.5), **options}
    models = [make_model("fnn", 7, 7, seed=s, d_embed=4, width=8, depth=2) for s in (0, 1)]
    with pytest.raises(ValueError, match=message):
        train(models, epochs=3, progress=False, **options)


def test_cuda_without_a_gpu_is_a_readable_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="asks for a CUDA GPU, but this machine has none"):
        run(device="cuda")


def test_a_model_built_for_fewer_tokens_is_refused_before_training():
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic

    with pytest.raises(ValueError, match="the model reads only tokens 0..4"):
        train(make_model("fnn", 5, 5, d_embed=4, width=8, depth=2),
              modular_arithmetic("add", 7, 0.5), epochs=3, progress=False)


@pytest.mark.parametrize("options", [{"lr": 1e6, "weight_decay": 0.0}, {"lr": 1e30}])
def test_divergence_stops_the_run_and_says_so(options):
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic

    history = train(make_model("fnn", 7, 7, d_embed=4, width=8, depth=2),
                    modular_arithmetic("add", 7, 0.5), epochs=200, eval_every=10,
                    progress=False, **options)
    assert history.stopped == "diverged" and history.epoch[-1] < 200


def test_ctrl_c_keeps_what_the_run_measured():
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic
    from grokbook.train import TrainingInterrupted

    def interrupt(history):
        if len(history) == 3:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as caught:
        train(make_model("fnn", 7, 7, d_embed=4, width=8, depth=2),
              modular_arithmetic("add", 7, 0.5), epochs=100, eval_every=10, progress=False,
              callback=interrupt)
    assert caught.value.history.stopped == "interrupted"
    assert caught.value.history.epoch == [0, 10, 20]


def _denormals(model) -> int:
    tiny = torch.finfo(torch.float32).tiny  # float32's smallest normal number
    return sum(int(((p != 0) & (p.abs() < tiny)).sum()) for p in model.parameters())


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush")
@pytest.mark.parametrize("flush", [True, False])
def test_training_on_one_thread_flushes_denormals_and_restores_the_setting(flush, monkeypatch):
    """An input coordinate that is always 0 gives its weights no gradient, and weight decay 5
    at lr 0.1 halves them each step, into denormals, which x86 CPUs compute with many times
    slower. Training on one thread flushes them to zero (checked: without the flush they do
    appear) and restores the caller's setting after; on two threads it leaves it alone."""
    train_module = importlib.import_module("grokbook.train")  # grokbook.train: also a function
    if not flush:
        monkeypatch.setattr(train_module, "flushing_denormals", contextlib.nullcontext)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train_into_denormals(train_module, flush)
    finally:
        torch.set_num_threads(threads)
    if flush:
        torch.set_num_threads(2)
        try:
            seen = []
            run(epochs=10, eval_every=5,
                callback=lambda h: seen.append(train_module.denormals_flushed()))
            assert seen == [False] * 3
        finally:
            torch.set_num_threads(threads)


def _train_into_denormals(train_module, flush):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    x[:, 0] = 0.0
    y = (x[:, 1] > 0).long()
    data = types.SimpleNamespace(x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])
    model = VectorFNN(6, 2, d_embed=4, width=8, depth=2)
    seen, counts = [], []

    def look(history):
        seen.append(train_module.denormals_flushed())
        counts.append(_denormals(model))

    assert not train_module.denormals_flushed()
    train(model, data, epochs=200, lr=0.1, weight_decay=5.0, eval_every=5, callback=look)
    assert not train_module.denormals_flushed()
    assert seen == [flush] * 41
    assert (max(counts) == 0) == flush
    torch.set_flush_denormal(True)
    try:
        run(epochs=5)
        assert train_module.denormals_flushed()
    finally:
        torch.set_flush_denormal(False)
