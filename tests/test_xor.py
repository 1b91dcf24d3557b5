import math

import pytest
import torch

from grokbook import experiments, measures, models, tasks
from grokbook.train import train


def test_xor_cluster_has_signal_noise_and_xor_labels():
    data = tasks.xor_cluster(2000, 10, p=12, eps=0.25, seed=0)
    x, y = data.x_train, data.y_train
    assert x.shape == (2000, 12) and set(x[:, :2].unique().tolist()) == {-1.0, 1.0}
    assert set(x[:, 2:].unique().tolist()) == {-0.25, 0.25}
    torch.testing.assert_close(y, x[:, 0] * x[:, 1])
    # every coordinate is a fair coin, independent of the label
    assert x.sign().mean(dim=0).abs().max() < 0.1
    assert (x[:, 2:].sign() * y[:, None]).mean(dim=0).abs().max() < 0.1
    same = tasks.xor_cluster(2000, 10, p=12, eps=0.25, seed=0)
    assert torch.equal(same.x_test, data.x_test)


@pytest.mark.parametrize("kwargs, message", [
    ({"p": 2}, "p must be an integer >= 3"),
    ({"eps": -0.1}, "eps must be a finite number >= 0"),
    ({"n_train": 0}, "n_train must be"),
])
def test_bad_xor_inputs_raise_clear_errors(kwargs, message):
    args = {"n_train": 4, "n_test": 4, "p": 5, "eps": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        tasks.xor_cluster(**args)


def test_bad_network_sizes_raise_clear_errors():
    with pytest.raises(ValueError, match="width must be"):
        models.TwoLayerReLU(p=5, width=0, w_init=0.1, a_init=0.1)
    with pytest.raises(ValueError, match="v_init must be a finite number"):
        models.TransferredNet(torch.ones(5, 3), m=4, v_init=0.0)


def test_noise_to_signal_of_a_constructed_matrix():
    weight = torch.zeros(3, 6)
    weight[:, :2] = 2.0  # signal rms 2
    weight[:, 2:] = 0.5  # noise rms 0.5
    assert measures.noise_to_signal(weight) == pytest.approx(0.25)


def test_alignment_of_known_neurons():
    weight = torch.tensor([[3.0, 3.0, 0.1], [-1.0, 1.0, 5.0], [1.0, 0.0, 0.0]])
    cosines = measures.alignment(weight)
    assert cosines.shape == (3, 4)
    assert cosines[0, 0] == pytest.approx(1.0) and cosines[0, 1] == pytest.approx(-1.0)
    assert cosines[1, 3] == pytest.approx(1.0)  # (-, +) direction; noise part ignored
    assert cosines[2, 0] == pytest.approx(1 / math.sqrt(2))


def test_networks_compute_their_formulas():
    net = models.TwoLayerReLU(p=4, width=3, w_init=1.0, a_init=1.0, seed=1)
    x = torch.randn(5, 4)
    expected = torch.relu(x @ net.hidden.weight.T) @ net.output.weight[0]
    torch.testing.assert_close(net(x), expected)
    u = torch.randn(4, 3)
    target = models.TransferredNet(u, m=6, v_init=0.4, seed=0)
    torch.testing.assert_close(target.v.detach().abs(), torch.full((6, 3), 0.4))
    assert [p.shape for p in target.parameters()] == [(6, 3)]  # only V learns
    torch.testing.assert_close(target(x), torch.relu(x @ u @ target.v.T) @ target.a)


def test_logistic_training_learns_an_easy_xor():
    data = tasks.xor_cluster(200, 200, p=4, eps=0.1, seed=0)
    net = models.TwoLayerReLU(p=4, width=32, w_init=0.5, a_init=0.5)
    history = train(net, data, epochs=300, loss="logistic", eval_every=50,
                    optimizer=torch.optim.SGD(net.parameters(), lr=0.5))
    assert history.test_acc[-1] > 0.95 and history.config["loss"] == "logistic"


def test_unknown_loss_is_an_error():
    data = tasks.xor_cluster(4, 4, p=4, eps=0.1)
    with pytest.raises(ValueError, match="unknown loss 'hinge'; known losses: cross_entropy"):
        train(models.TwoLayerReLU(4, 2, 0.1, 0.1), data, loss="hinge")


def test_covered_directions_names_the_directions_neurons_point_at():
    weight = torch.tensor([[1.0, 1.0, 0.0], [-1.0, -1.0, 0.3], [0.9, 1.1, 0.0]])
    assert measures.covered_directions(weight) == ["(+,+)", "(-,-)"]
    assert measures.covered_directions(weight, threshold=0.999) == ["(+,+)", "(-,-)"]


def test_one_step_is_a_single_gradient_step_on_v():
    data = tasks.xor_cluster(50, 50, p=6, eps=0.1, seed=0)
    target = models.TransferredNet(torch.randn(6, 3), m=8, v_init=0.4)
    before = target.v.detach().clone()
    target.v.grad = None
    loss = torch.nn.functional.softplus(-data.y_train * target(data.x_train)).mean()
    (grad,) = torch.autograd.grad(loss, target.v)
    history = experiments.one_step(target, data, step=2.0)
    assert history.epoch == [0, 1]
    torch.testing.assert_close(target.v.detach(), before - 2.0 * grad)
