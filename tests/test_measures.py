import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grokbook import measures
from grokbook.train import History


def history(train, test, step=10):
    n = len(train)
    return History(epoch=[i * step for i in range(n)], train_loss=[0.0] * n, train_acc=train,
                   test_loss=[0.0] * n, test_acc=test, weight_norm=[1.0] * n)


def test_epochs_to_and_time_gap():
    h = history([0.1, 0.96, 1.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.95, 1.0])
    assert measures.epochs_to(h, "train_acc") == 10
    assert measures.epochs_to(h, "test_acc") == 30
    assert measures.epochs_to(h, "test_acc", 0.4) == 20
    assert measures.time_gap(h) == 20


def test_never_reaching_the_threshold_is_none():
    h = history([0.1, 1.0], [0.0, 0.2])
    assert measures.epochs_to(h, "test_acc") is None
    assert measures.time_gap(h) is None
    assert measures.summary(h)["time_gap"] is None


def test_weight_norm_of_known_weights():
    layer = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
    assert measures.weight_norm(layer) == pytest.approx(5.0)
    assert measures.weight_norm(torch.nn.Sequential(layer, layer)) == pytest.approx(5.0)


def test_aligned_holds_stopped_runs_at_their_last_value():
    long = history([0.1, 0.5, 1.0, 1.0], [0.0, 0.2, 0.6, 0.9])
    short = history([0.2, 1.0], [0.1, 0.99])
    epochs, values = measures.aligned([long, short], "test_acc")
    assert epochs.tolist() == [0, 10, 20, 30]
    np.testing.assert_array_equal(values, [[0.0, 0.2, 0.6, 0.9], [0.1, 0.99, 0.99, 0.99]])
    with pytest.raises(ValueError, match="at least one History"):
        measures.aligned([], "test_acc")


def test_summary_reports_the_final_state():
    h = history([0.5, 1.0], [0.1, 0.3])
    stats = measures.summary(h)
    assert stats["final_test_acc"] == 0.3 and stats["epochs"] == 10
    assert not math.isnan(stats["seconds"])


def test_describe_says_when_a_run_fit_and_generalized():
    h = history([0.1, 0.96, 1.0, 1.0], [0.0, 0.0, 0.5, 0.97])
    h.config["steps"], h.seconds = 30, 0.5
    assert measures.describe(h) == ("95% train: epoch 10 | 95% test: epoch 30 | "
                                    "time gap: 20 | 60 epochs/s")
    assert "95% test: never | time gap: -" in measures.describe(history([1.0], [0.1]))


def test_seconds_to_scales_the_wall_time_by_the_epochs_it_took():
    history = History(epoch=[0, 10, 20, 40], train_loss=[1.0] * 4, train_acc=[1.0] * 4,
                      test_loss=[1.0] * 4, test_acc=[0.0, 0.5, 0.96, 1.0],
                      weight_norm=[1.0] * 4, seconds=8.0)
    assert measures.seconds_to(history) == pytest.approx(4.0)
    assert measures.seconds_to(history, 0.99) == pytest.approx(8.0)
    history.test_acc[:] = [0.0] * 4
    assert measures.seconds_to(history) is None



@settings(max_examples=40, deadline=None)
@given(rows=st.integers(3, 30), cols=st.integers(1, 6), seed=st.integers(0, 1000))
def test_a_spectrum_is_a_distribution_over_frequencies(rows, cols, seed):
    import torch

    from grokbook.measures import fourier_spectrum

    table = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    shares = fourier_spectrum(table)
    assert shares.shape == (rows // 2,)
    assert (shares >= 0).all() and abs(float(shares.sum()) - 1.0) < 1e-5


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_the_time_gap_is_test_minus_train_or_none(accs):
    from grokbook.history import History
    from grokbook.measures import time_gap

    n = len(accs)
    h = History(epoch=[10 * i for i in range(n)], train_loss=[0.0] * n,
                train_acc=[1.0] * n, test_loss=[0.0] * n, test_acc=accs, weight_norm=[1.0] * n)
    gap = time_gap(h)
    first = next((10 * i for i, a in enumerate(accs) if a >= 0.95), None)
    assert gap == (None if first is None else first)


def test_a_summary_of_no_evaluations_is_a_clear_error():
    with pytest.raises(ValueError, match="history has no evaluations"):
        measures.summary(History())
