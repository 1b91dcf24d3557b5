import pytest
import torch
from torch import nn

from grokbook.accelerators import GrokFastEMA, GrokFastMA
from grokbook.models import make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import train


def apply(transform, gradients):
    """Feed a sequence of gradients for one parameter through ``transform``; return outputs."""
    layer = nn.Linear(3, 2, bias=False)
    outputs = []
    for g in gradients:
        layer.weight.grad = g.clone()
        transform(layer)
        outputs.append(layer.weight.grad.clone())
    return outputs


GRADIENTS = [torch.randn(2, 3, generator=torch.Generator().manual_seed(i)) for i in range(6)]


def test_ema_filter_matches_the_formula():
    alpha, lamb = 0.9, 2.0
    outputs = apply(GrokFastEMA(alpha, lamb), GRADIENTS)
    mu = GRADIENTS[0]
    torch.testing.assert_close(outputs[0], GRADIENTS[0] + lamb * mu)
    for g, out in zip(GRADIENTS[1:], outputs[1:]):
        mu = alpha * mu + (1 - alpha) * g
        torch.testing.assert_close(out, g + lamb * mu)


@pytest.mark.parametrize("warmup", [True, False])
def test_ma_filter_matches_the_formula(warmup):
    window, lamb = 3, 5.0
    outputs = apply(GrokFastMA(window, lamb, warmup=warmup), GRADIENTS)
    for t, (g, out) in enumerate(zip(GRADIENTS, outputs)):
        past = GRADIENTS[max(0, t - window + 1): t + 1]
        if warmup and len(past) < window:
            torch.testing.assert_close(out, g)
        else:
            torch.testing.assert_close(out, g + lamb * torch.stack(past).mean(0))


def test_filters_plug_into_the_training_loop_and_change_the_run():
    data = modular_arithmetic("add", 13, 0.5)
    plain, fast = (train(make_model("fnn", 13, 13, d_embed=8, width=16, depth=2), data,
                         epochs=10, grad_transform=transform)
                   for transform in (None, GrokFastEMA()))
    assert plain.train_loss[0] == fast.train_loss[0]
    assert plain.train_loss[-1] != fast.train_loss[-1]


def test_bad_filter_settings_raise_clear_errors():
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \[0, 1\)"):
        GrokFastEMA(alpha=1.0)
    with pytest.raises(ValueError, match="window must be a positive integer"):
        GrokFastMA(window=0)
    for make in (GrokFastEMA, GrokFastMA):
        with pytest.raises(ValueError, match="lamb must be a finite number"):
            make(lamb=float("nan"))


def test_a_filter_refuses_a_second_model():
    import torch

    from grokbook.models import make_model

    for make in (GrokFastEMA, GrokFastMA):
        gf = make()
        for width in (8, 16):
            model = make_model("fnn", 7, 7, d_embed=4, width=width, depth=2)
            model(torch.tensor([[1, 2]])).sum().backward()
            if width == 8:
                gf(model)
            else:
                with pytest.raises(ValueError, match="make a new filter for each run"):
                    gf(model)


def test_train_refuses_a_filter_of_another_model_before_the_first_step():
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic
    from grokbook.train import train

    data = modular_arithmetic("add", 7, 0.5)
    for make in (GrokFastEMA, GrokFastMA):
        gf = make()
        train(make_model("fnn", 7, 7, d_embed=4, width=8, depth=2), data, epochs=2,
              grad_transform=gf, progress=False)
        seen = []
        with pytest.raises(ValueError, match="grad_transform: this GrokFast filter already"):
            train(make_model("fnn", 7, 7, d_embed=4, width=16, depth=2), data, epochs=2,
                  grad_transform=gf, callback=seen.append, progress=False)
        assert seen == []  # refused before the first evaluation


def test_ma_running_sum_stays_exact_over_a_long_run():
    window, lamb = 7, 5.0
    gradients = [torch.randn(2, 3, generator=torch.Generator().manual_seed(100 + i))
                 for i in range(300)]
    outputs = apply(GrokFastMA(window, lamb), gradients)
    for t in range(window - 1, len(gradients)):
        expected = gradients[t] + lamb * torch.stack(gradients[t - window + 1: t + 1]).mean(0)
        torch.testing.assert_close(outputs[t], expected)
