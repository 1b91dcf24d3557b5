import copy
import math

import pytest
import torch
import torch.nn.functional as F

from grokbook import checkpoint
from grokbook.config import from_dict, to_dict
from grokbook.measures import RawGradientEntropy, absolute_gradient_entropy
from grokbook.models import make_model
from grokbook.neuralgrok import (
    Amplifier,
    NeuralGrok,
    NeuralGrokCfg,
    TensorNormalization,
    split_outer,
    step_costs,
)
from grokbook.tasks import modular_arithmetic
from grokbook.train import TrainingInterrupted, train

P = 11


def tiny_data(seed=0):
    return modular_arithmetic("add", P, 0.5, seed=seed)


def tiny_model(seed=0):
    return make_model("fnn", P, P, seed=seed, d_embed=8, width=16, depth=2)


def with_gradients(model, data):
    """``model`` with the raw gradient of its training loss in ``.grad``."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(data.x_train), data.y_train).backward()
    return model


def transform_for(data, seed=0, **options):
    split = split_outer(data, 0.05, seed)
    return split.inner, NeuralGrok(split.outer_x, split.outer_y, seed=seed, **options)


# ---- the amplifier ------------------------------------------------------------------------------

@pytest.mark.parametrize("c", [0.2, 1.0, 3.5])
def test_each_transformed_tensor_has_norm_c(c):
    amplifier = Amplifier((8, 4), c=c)
    for shape in [(1,), (7,), (5, 3), (2, 3, 4)]:
        g = torch.randn(shape, generator=torch.Generator().manual_seed(len(shape)))
        out = amplifier(g)
        assert out.shape == g.shape
        assert out.norm().item() == pytest.approx(c, rel=1e-5)


def test_the_output_is_the_entry_weight_times_the_entry_then_normalised():
    amplifier = Amplifier((8,), c=0.2, seed=3)
    g = torch.randn(40, generator=torch.Generator().manual_seed(0)) * 1e-2
    # the softmax runs over the tensor's entries (an early reference version took it over a
    # size-1 axis, which makes every weight 1): its weights sum to 1 over the entries
    weights = torch.softmax(amplifier.scores(g), dim=0)
    assert weights.sum().item() == pytest.approx(1.0, rel=1e-5)
    expected = torch.exp(amplifier.scores(g)) * g
    torch.testing.assert_close(amplifier(g), 0.2 * expected / expected.norm())


def test_weight_is_relative_to_the_reference_value():
    amplifier = Amplifier((16,), seed=1)
    values = torch.linspace(-1, 1, 11)
    w = amplifier.weight(values)
    assert (w > 0).all()
    assert amplifier.weight([0.0]).item() == pytest.approx(1.0)
    assert amplifier.weight([0.5], reference=0.5).item() == pytest.approx(1.0)
    ratio = torch.exp(amplifier.scores(values[3:4]) - amplifier.scores(values[7:8]))
    torch.testing.assert_close(w[3] / w[7], ratio[0])


def test_a_zero_gradient_stays_zero_and_its_meta_gradient_is_finite():
    amplifier = Amplifier((8,))
    zeros = torch.zeros(6)
    assert torch.equal(amplifier(zeros), zeros)
    (amplifier(zeros).sum() + amplifier(torch.ones(3)).sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in amplifier.parameters())


def test_the_same_seed_builds_the_same_amplifier():
    a, b, c = Amplifier((8, 8), seed=5), Amplifier((8, 8), seed=5), Amplifier((8, 8), seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.mlp[0].weight, c.mlp[0].weight)


# ---- the gradient transform ---------------------------------------------------------------------

def test_the_inner_step_replaces_each_gradient_then_clips():
    data = tiny_data()
    model = with_gradients(tiny_model(), data)
    raw = [p.grad.clone() for p in model.parameters()]
    _, transform = transform_for(data, c=2.0, max_norm=None)
    transform(model)  # the first call: no meta step
    assert transform.outer_losses == []
    for g, p in zip(raw, model.parameters()):
        torch.testing.assert_close(p.grad, transform.amplifier(g))
        assert p.grad.norm().item() == pytest.approx(2.0, rel=1e-5)
    model = with_gradients(tiny_model(), data)
    _, clipped = transform_for(data, c=2.0, max_norm=1.0)
    clipped(model)
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert total.item() == pytest.approx(1.0, rel=1e-4)


def test_meta_steps_run_after_steps_T_2T_and_so_on():
    data = tiny_data()
    model = tiny_model()
    _, transform = transform_for(data, meta_every=3)
    for _ in range(7):
        transform(with_gradients(model, data))
    assert len(transform.outer_losses) == 2  # at calls 4 and 7: after real steps 3 and 6
    assert transform.calls == 7


def test_the_meta_step_changes_only_the_amplifier():
    data = tiny_data()
    model = with_gradients(tiny_model(), data)
    parameters = copy.deepcopy(list(model.parameters()))
    grads = [p.grad.clone() for p in model.parameters()]
    _, transform = transform_for(data, meta_weight_decay=0.0)
    before = copy.deepcopy(transform.amplifier.state_dict())
    outer = transform.meta_step(model)
    assert math.isfinite(outer)
    for old, p, g in zip(parameters, model.parameters(), grads):
        assert torch.equal(old, p)
        assert torch.equal(g, p.grad)
    # the outer loss reaches the amplifier's weights (no weight decay to move them otherwise).
    # Its last bias adds the same score to every entry, which the softmax ignores: that
    # gradient is zero up to rounding, and whether rounding moves the bias depends on the CPU.
    weights = [k for k, _ in transform.amplifier.named_parameters() if k.endswith("weight")]
    grads = dict(transform.amplifier.named_parameters())
    assert all(grads[k].grad.abs().sum() > 0 for k in weights)
    largest = max(float(grads[k].grad.abs().max()) for k in weights)
    assert float(transform.amplifier.mlp[-1].bias.grad.abs().max()) < 1e-3 * largest
    after = transform.amplifier.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in weights)


def test_the_learned_weights_vary_across_entries_and_change_with_meta_steps():
    # An early reference version took the softmax over a size-1 axis: every weight was 1 and the
    # amplifier learned nothing. Here the weights of one tensor's entries differ, and meta steps
    # change how the weight depends on the gradient's value (not just by a constant factor).
    data = tiny_data()
    model = tiny_model()
    inner, transform = transform_for(data, meta_every=1, meta_weight_decay=0.0)
    values = torch.linspace(-0.05, 0.05, 9)
    start = transform.weight(values)
    train(model, inner, epochs=30, lr=1e-2, weight_decay=0.1, grad_transform=transform,
          progress=False, device="cpu")
    assert len(transform.outer_losses) == 29
    learned = transform.weight(values)
    assert (learned.max() / learned.min()).item() > 1 + 1e-3
    assert not torch.allclose(learned, start, rtol=1e-5, atol=0)
    # the weights the forward pass applies, read off its output: out_i / g_i = k w_i
    grad = with_gradients(model, inner).layers[0].weight.grad.flatten()
    with torch.no_grad():
        applied = (transform.amplifier(grad) / grad)[grad.abs() > 1e-6]
    assert (applied.max() / applied.min()).item() > 1 + 1e-4


def _run(seed, epochs=25, **options):
    data = tiny_data(seed)
    inner, transform = NeuralGrokCfg(meta_every=2, outer_frac=0.05).build(data, seed)
    history = train(tiny_model(seed), inner, epochs=epochs, lr=1e-2, weight_decay=0.1,
                    eval_every=5, grad_transform=transform, progress=False, device="cpu",
                    **options)
    return history, transform


def _same_history(a, b):
    return {k: v for k, v in a.to_dict().items() if k != "seconds"} == \
        {k: v for k, v in b.to_dict().items() if k != "seconds"}


def test_the_same_seed_gives_the_same_run_bit_for_bit():
    (h1, t1), (h2, t2), (h3, _) = _run(0), _run(0), _run(1)
    assert _same_history(h1, h2)
    assert t1.outer_losses == t2.outer_losses
    s1, s2 = t1.amplifier.state_dict(), t2.amplifier.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not _same_history(h1, h3)


def test_the_state_dict_round_trips_through_a_checkpoint_file(tmp_path):
    data = tiny_data()
    model = tiny_model()
    _, transform = transform_for(data, meta_every=1)
    for _ in range(3):
        transform(with_gradients(model, data))
    checkpoint.save(tmp_path / "t.npz", {"t": transform.state_dict()})
    _, copied = transform_for(data, meta_every=1)
    copied.load_state_dict(checkpoint.load(tmp_path / "t.npz")["t"])
    twin = copy.deepcopy(model)
    for _ in range(2):  # both go on identically: amplifier, meta optimizer, counter
        transform(with_gradients(model, data))
        copied(with_gradients(twin, data))
        assert all(torch.equal(a.grad, b.grad) for a, b in zip(model.parameters(),
                                                               twin.parameters()))
    assert copied.outer_losses == transform.outer_losses
    assert copied.calls == transform.calls == 5


def test_an_interrupted_run_resumes_to_the_identical_history(tmp_path):
    path = tmp_path / "run.npz"

    def stop(history):
        if history.epoch[-1] >= 15:
            raise KeyboardInterrupt

    whole, _ = _run(0, epochs=30)
    with pytest.raises(TrainingInterrupted):
        _run(0, epochs=30, checkpoint=path, checkpoint_every=10, callback=stop)
    resumed, _ = _run(0, epochs=30, checkpoint=path, checkpoint_every=10, resume=True)
    assert _same_history(resumed, whole)


def test_a_transform_refuses_a_second_model():
    data = tiny_data()
    _, transform = transform_for(data)
    transform(with_gradients(tiny_model(), data))
    with pytest.raises(ValueError, match="already belongs to another model"):
        transform(with_gradients(tiny_model(), data))
    other = make_model("fnn", P, P, d_embed=4, width=8, depth=2)
    _, fresh = transform_for(data)
    fresh.load_state_dict(transform.state_dict())
    with pytest.raises(ValueError, match="already belongs to another model"):
        fresh(with_gradients(other, data))


def test_a_short_neuralgrok_run_trains_and_its_loss_falls():
    history, transform = _run(0, epochs=60)
    assert history.stopped == "budget"
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert len(transform.outer_losses) == 29
    assert all(math.isfinite(v) for v in transform.outer_losses)


def test_tensor_normalization_rescales_each_tensor_then_clips():
    data = tiny_data()
    model = with_gradients(tiny_model(), data)
    raw = [p.grad.clone() for p in model.parameters()]
    TensorNormalization(c=0.3, max_norm=None)(model)
    for g, p in zip(raw, model.parameters()):
        torch.testing.assert_close(p.grad, 0.3 * g / g.norm())
    model = with_gradients(tiny_model(), data)
    TensorNormalization(c=1.0, max_norm=0.5)(model)
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert total.item() == pytest.approx(0.5, rel=1e-4)


# ---- the data split -----------------------------------------------------------------------------

def test_split_outer_gives_the_reference_fractions():
    data = modular_arithmetic("add", 97, 0.5, seed=0)
    split = split_outer(data, 0.01, seed=0)
    n = len(data.y_train) + len(data.y_test)
    assert len(split.outer_y) == round(0.01 * n) == 94
    assert len(split.inner.y_train) == len(data.y_train) - 94
    assert torch.equal(split.inner.x_test, data.x_test)
    rows = {tuple(r) for r in data.x_train.tolist()}
    inner = {tuple(r) for r in split.inner.x_train.tolist()}
    outer = {tuple(r) for r in split.outer_x.tolist()}
    assert not inner & outer and inner | outer == rows
    again = split_outer(data, 0.01, seed=0)
    assert torch.equal(again.outer_x, split.outer_x)
    assert not torch.equal(split_outer(data, 0.01, seed=1).outer_x, split.outer_x)


def test_the_cfg_builds_inner_data_and_a_transform_and_round_trips():
    cfg = NeuralGrokCfg(hidden=[16, 8], c=0.5)
    assert cfg.hidden == (16, 8)
    assert from_dict(to_dict(cfg)) == cfg
    inner, transform = cfg.build(tiny_data(), seed=2)
    assert transform.amplifier.hidden == (16, 8) and transform.amplifier.c == 0.5
    assert len(inner.y_train) + len(transform.outer_y) == len(tiny_data().y_train)


# ---- bad settings -------------------------------------------------------------------------------

OUTER = (torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("options, message", [
    ({"c": 0}, r"c must be a finite number in \(0, inf\), got 0"),
    ({"c": -1.0}, "c must be"),
    ({"c": float("inf")}, "c must be a finite number"),
    ({"c": float("nan")}, "c must be a finite number"),
    ({"meta_every": 0}, "meta_every must be a positive integer, got 0"),
    ({"meta_every": 1.5}, "meta_every must be a positive integer"),
    ({"meta_every": True}, "meta_every must be a positive integer"),
    ({"hidden": (0,)}, r"hidden must be a non-empty sequence of positive integers \(the hidden "
                       r"layers' widths\), got \(0,\)"),
    ({"hidden": (32, -1)}, "hidden must be a non-empty sequence of positive integers"),
    ({"hidden": ()}, "hidden must be a non-empty sequence of positive integers"),
    ({"hidden": 32}, "hidden must be a non-empty sequence of positive integers"),
    ({"hidden": (8.0,)}, "hidden must be a non-empty sequence of positive integers"),
    ({"virtual_lr": 0.0}, "virtual_lr must be"),
    ({"virtual_lr": float("nan")}, "virtual_lr must be"),
    ({"meta_lr": -1e-4}, "meta_lr must be"),
    ({"meta_weight_decay": -1.0}, "meta_weight_decay must be"),
    ({"meta_betas": (0.9,)}, "meta_betas must be two numbers"),
    ({"meta_betas": (0.9, 1.0)}, "meta_betas must be"),
    ({"max_norm": 0.0}, "max_norm must be"),
    ({"seed": -1}, "seed must be"),
])
def test_bad_settings_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        NeuralGrok(*OUTER, **options)


def test_bad_outer_data_and_loss_are_clear_errors():
    empty = (torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="the outer split must hold at least one example"):
        NeuralGrok(*empty)
    with pytest.raises(ValueError, match="same number of examples, got 2 and 1"):
        NeuralGrok(OUTER[0], OUTER[1][:1])
    with pytest.raises(ValueError, match="outer_x must hold finite values"):
        NeuralGrok(torch.tensor([[0.0, float("nan")]]), torch.tensor([1.0]), "logistic")
    with pytest.raises(ValueError, match="loss must be one of 'cross_entropy', 'logistic'"):
        NeuralGrok(*OUTER, "hinge")
    data = tiny_data()
    with pytest.raises(ValueError, match="leaves an empty outer split"):
        split_outer(data, 1e-4)
    with pytest.raises(ValueError, match="nothing would be left to train on"):
        split_outer(data, 0.6)
    with pytest.raises(ValueError, match=r"outer_frac must be a finite number in \(0, 1\)"):
        split_outer(data, 0.0)


def test_bad_cfg_fields_name_the_field():
    with pytest.raises(ValueError, match=r"NeuralGrokCfg.c must be a finite number in \(0, inf"):
        NeuralGrokCfg(c=0.0)
    with pytest.raises(ValueError, match="NeuralGrokCfg.meta_every must be a positive integer"):
        NeuralGrokCfg(meta_every=0)
    with pytest.raises(ValueError, match="NeuralGrokCfg.hidden must be"):
        NeuralGrokCfg(hidden=(0,))
    with pytest.raises(ValueError, match="TensorNormalization|c must be"):
        TensorNormalization(c=-1.0)


# ---- absolute gradient entropy ------------------------------------------------------------------

def test_age_of_hand_made_gradients():
    n = 12
    uniform = [torch.full((3, 2), 1 / n), torch.full((6,), 1 / n)]
    assert absolute_gradient_entropy(uniform) == pytest.approx(math.log(n))
    assert absolute_gradient_entropy([7.0 * g for g in uniform], normalize=True) == \
        pytest.approx(math.log(n))
    one_hot = torch.zeros(n)
    one_hot[4] = -1.0
    assert absolute_gradient_entropy([one_hot]) == 0.0
    assert absolute_gradient_entropy([3 * one_hot], normalize=True) == 0.0
    zeros = [torch.zeros(4), torch.zeros(2, 2)]
    assert absolute_gradient_entropy(zeros) == 0.0
    assert absolute_gradient_entropy(zeros, normalize=True) == 0.0
    assert absolute_gradient_entropy([torch.tensor([0.5, 0.0]), None]) == \
        pytest.approx(0.5 * math.log(2))
    assert math.isnan(absolute_gradient_entropy([torch.tensor([float("nan"), 1.0])]))
    with pytest.raises(ValueError, match="at least one tensor"):
        absolute_gradient_entropy([None])


def test_age_is_size_times_spread_minus_size_log_size():
    g = torch.randn(50, generator=torch.Generator().manual_seed(0)).double()
    total = g.abs().sum().item()
    spread = absolute_gradient_entropy([g], normalize=True)
    assert absolute_gradient_entropy([g]) == pytest.approx(total * spread
                                                           - total * math.log(total))


def test_raw_gradient_entropy_measures_the_raw_gradient_and_leaves_grad_alone():
    data = tiny_data()
    model = with_gradients(tiny_model(), data)
    expected = absolute_gradient_entropy([p.grad for p in model.parameters()])
    TensorNormalization()(model)  # a transformed gradient in .grad must not matter
    kept = [p.grad.clone() for p in model.parameters()]
    measure = RawGradientEntropy(data.x_train, data.y_train)
    with torch.no_grad():  # as train() calls measures
        assert measure(model) == pytest.approx(expected, rel=1e-6)
    assert all(torch.equal(k, p.grad) for k, p in zip(kept, model.parameters()))
    assert measure.state_dict() == {}
    with pytest.raises(ValueError, match="unknown loss"):
        RawGradientEntropy(data.x_train, data.y_train, "hinge")


# ---- cost ---------------------------------------------------------------------------------------

def test_step_costs_reports_seconds_and_flops_of_each_piece():
    costs = step_costs(tiny_model(), tiny_data(), NeuralGrokCfg(outer_frac=0.05), repeats=1)
    assert set(costs) == {"plain step", "amplify", "meta step"}
    for row in costs.values():
        assert row["seconds"] > 0 and row["flops"] > 0
    assert costs["meta step"]["flops"] > costs["amplify"]["flops"]
