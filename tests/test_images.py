"""The polygon-counting pictures, the small ResNet and the run that joins them (chapter 7)."""

import math

import numpy as np
import pytest
import torch

from grokbook import experiments, foresight, profiles
from grokbook.config import (
    FNNCfg,
    Invalid,
    ModularCfg,
    OptimCfg,
    PolygonCfg,
    ResNetCfg,
    RunCfg,
    from_dict,
    to_dict,
)
from grokbook.history import History
from grokbook.images import label_count, polygon_cell, polygon_counting
from grokbook.models import FNN, SmallResNet
from grokbook.train import check_inputs, train


def test_an_empty_cell_is_black_and_a_polygon_is_lines_on_black():
    assert not polygon_cell(0, 12).any()
    cell = polygon_cell(5, 12)
    assert cell.shape == (12, 12) and cell.dtype == np.float32
    assert 0 <= cell.min() and cell.max() <= 1
    assert 0.05 < cell.mean() < 0.6  # lines, not a filled square
    assert cell[0].sum() < cell[6].sum()  # a margin above the top vertex; the centre is drawn


def test_more_sides_draw_more_ink():
    ink = [polygon_cell(s, 16).sum() for s in range(3, 13)]
    assert ink == sorted(ink)  # every extra side adds a spoke


def test_every_combination_appears_once_with_its_sum_of_sides_as_label():
    data = polygon_counting(max_sides=4, cell=8, frac=0.5, seed=3)
    shapes = torch.cat([data.shapes_train, data.shapes_test])
    assert len(shapes) == 3 ** 4 and len({tuple(r.tolist()) for r in shapes}) == 3 ** 4
    assert set(shapes.flatten().tolist()) == {0, 3, 4}
    assert torch.equal(torch.cat([data.y_train, data.y_test]), label_count(shapes))
    assert data.x_train.shape == (round(0.5 * 81), 1, 16, 16)
    assert data.n_classes == 17 and int(data.y_train.max()) < data.n_classes


def test_a_picture_is_its_four_cells_top_left_first():
    data = polygon_counting(max_sides=4, cell=8, frac=0.5, seed=0)
    shapes, x = data.shapes_train[0].tolist(), data.x_train[0, 0]
    cells = [x[:8, :8], x[:8, 8:], x[8:, :8], x[8:, 8:]]
    for sides, cell in zip(shapes, cells):
        assert np.array_equal(cell.numpy(), polygon_cell(sides, 8))


def test_the_same_seed_gives_the_same_split_another_seed_another():
    a, b = polygon_counting(4, 8, 0.5, seed=1), polygon_counting(4, 8, 0.5, seed=1)
    c = polygon_counting(4, 8, 0.5, seed=2)
    assert torch.equal(a.shapes_train, b.shapes_train) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.shapes_train, c.shapes_train)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_sides": 13}, "max_sides must be an integer in 3..12"),
    ({"max_sides": 2}, "max_sides must be an integer in 3..12"),
    ({"cell": 4}, "cell must be an integer in 8..64"),
    ({"frac": 1.0}, "frac must be a number in"),
    ({"frac": 0.001}, "leaves 0 for training"),
    ({"seed": -1}, "seed"),
])
def test_bad_picture_settings_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        polygon_counting(**{"max_sides": 4, "cell": 8, "frac": 0.5, **kwargs})


def test_a_cell_with_one_or_two_sides_is_refused():
    with pytest.raises(ValueError, match="sides must be 0"):
        polygon_cell(2, 8)


def test_the_resnet_reads_pictures_and_scales_its_initialization():
    model = SmallResNet(17, width=4)
    assert model(torch.zeros(3, 1, 16, 16)).shape == (3, 17)
    torch.manual_seed(0)
    base = SmallResNet(17, width=4)
    torch.manual_seed(0)
    scaled = SmallResNet(17, width=4, init_scale=3.0)
    for a, b in zip(base.parameters(), scaled.parameters()):
        torch.testing.assert_close(3.0 * a, b)
    with pytest.raises(ValueError, match="width must be a multiple of 4"):
        SmallResNet(17, width=6)
    with pytest.raises(ValueError, match="pictures of shape"):
        model(torch.zeros(3, 16, 16))


def test_a_picture_model_and_picture_data_must_meet():
    pictures = polygon_counting(4, 8, 0.5)
    with pytest.raises(ValueError, match="reads integer tokens"):
        check_inputs(FNN(5, 5, d_embed=2, width=4, depth=1), pictures)
    tokens = experiments.make_data(ModularCfg("add", 5, 0.5), 0)
    with pytest.raises(ValueError, match="reads pictures"):
        check_inputs(SmallResNet(5, width=4), tokens)


def test_picture_settings_are_checked_and_round_trip():
    run = RunCfg(data=PolygonCfg(4, 8, 0.5), model=ResNetCfg(4, 2.0))
    assert from_dict(to_dict(run)) == run
    with pytest.raises(Invalid, match="ResNetCfg for PolygonCfg"):
        RunCfg(data=PolygonCfg(4, 8, 0.5), model=FNNCfg())
    with pytest.raises(Invalid, match="ResNetCfg for PolygonCfg"):
        RunCfg(data=ModularCfg(), model=ResNetCfg())
    with pytest.raises(Invalid, match="ResNetCfg.width must be a multiple of 4"):
        ResNetCfg(width=10)
    with pytest.raises(Invalid, match="PolygonCfg.cell must be an integer in 8..64"):
        PolygonCfg(cell=100)
    with pytest.raises(Invalid, match="loss must be 'cross_entropy'"):
        RunCfg(data=PolygonCfg(4, 8, 0.5), model=ResNetCfg(4), loss="logistic")
    with pytest.raises(Invalid, match="ntk_probe"):
        RunCfg(data=PolygonCfg(4, 8, 0.5), model=ResNetCfg(4), ntk_probe=4)


def test_a_short_picture_run_learns_and_repeats_bit_for_bit():
    cfg = RunCfg(data=PolygonCfg(4, 8, 0.5), model=ResNetCfg(4),
                 optim=OptimCfg(lr=5e-3, weight_decay=0.1))
    data = experiments.make_data(cfg.data, 0)
    histories = [train(experiments.build_model(cfg, 0), data, epochs=40, eval_every=10,
                       lr=5e-3, weight_decay=0.1, progress=False) for _ in range(2)]
    assert histories[0].train_loss == histories[1].train_loss
    assert histories[0].train_acc[-1] > 0.5 > histories[0].train_acc[0]


def test_no_groktransfer_target_for_pictures():
    cfg = RunCfg(data=PolygonCfg(4, 8, 0.5), model=ResNetCfg(4))
    with pytest.raises(ValueError, match="no target for pictures"):
        experiments.build_model(cfg, 0, a=torch.zeros(3, 2))


def _history(train_acc, test_acc):
    h = History()
    for i, (a, b) in enumerate(zip(train_acc, test_acc)):
        h.epoch.append(10 * i)
        h.train_acc.append(a)
        h.test_acc.append(b)
    return h


def test_gap_table_reads_memorization_and_best_accuracies():
    table = foresight.gap_table({
        "early": {0: _history([0.5, 1.0, 0.98], [0.1, 0.2, 0.15])},
        "never": {1: _history([0.3, 0.6, 0.5], [0.2, 0.4, 0.3])}})
    early, never = table.iloc[0], table.iloc[1]
    assert (early["run"], early["seed"], early["memorized"]) == ("early", 0, 10)
    assert early["test at memorized"] == 0.2 and early["best train"] == 1.0
    assert early["best test"] == 0.2 and math.isclose(early["gap"], 0.8)
    assert math.isnan(never["memorized"]) and math.isnan(never["test at memorized"])
    assert math.isclose(never["gap"], 0.2)


@pytest.mark.parametrize("name", profiles.PROFILE_NAMES)
def test_every_profile_has_both_initializations_and_valid_pictures(name):
    P = profiles.load("progress", name)
    assert P.image_scales[0] == 1.0 and P.image_scales[-1] > 1.0
    assert P.image_run(3.0).model.init_scale == 3.0
    assert isinstance(P.images.data, PolygonCfg)
