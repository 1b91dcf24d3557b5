"""Chapter 7's measures, data coverage split, progress runs, foresight analysis and widget."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from grokbook import experiments, foresight, measures, profiles
from grokbook.config import (
    BudgetCfg,
    CoverageCfg,
    FNNCfg,
    Invalid,
    ModularCfg,
    OptimCfg,
    RunCfg,
    replace,
)
from grokbook.history import History
from grokbook.tasks import coverage_split, held_out, modular_arithmetic


def circle(p, k, radius=1.0):
    angles = 2 * math.pi * k * torch.arange(p, dtype=torch.float64) / p
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def test_med_of_a_line_and_of_a_circle():
    line = torch.arange(7, dtype=torch.float64)[:, None] * torch.tensor([[3.0, 4.0]])
    assert measures.med(line) == pytest.approx(5.0)
    # wrap-around adds the pair (6, 0), 30 apart: (6 * 5 + 30) / 7
    assert measures.med(line, wrap=True) == pytest.approx(60 / 7)
    ring = circle(11, 1)
    chord = 2 * math.sin(math.pi / 11)
    assert measures.med(ring) == pytest.approx(chord)
    assert measures.med(ring, wrap=True) == pytest.approx(chord)


def test_relative_med_ignores_scale_and_sees_order():
    ring = circle(11, 1)
    assert measures.relative_med(3 * ring) == pytest.approx(measures.relative_med(ring))
    assert measures.relative_med(ring) < 0.5  # neighbours close on a low-frequency circle
    assert measures.relative_med(circle(11, 5)) > 1.4  # far apart on a high frequency
    with pytest.raises(ValueError, match="table must be a 2-D tensor"):
        measures.med(torch.zeros(5))


def test_norm_spread_is_zero_for_equal_norms_and_the_cv_otherwise():
    assert measures.norm_spread(circle(9, 2, radius=4.0)) == pytest.approx(0.0, abs=1e-12)
    table = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    assert measures.norm_spread(table) == pytest.approx(0.5)  # std 1 / mean 2


def test_gini_and_participation_ratio_at_their_extremes():
    assert measures.gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert measures.gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert measures.participation_ratio([1, 1, 1, 1]) == pytest.approx(0.25)
    assert measures.participation_ratio([0, 0, 0, 5]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shares must be"):
        measures.gini([1, -1])


def test_key_frequencies_take_the_fewest_that_hold_the_share():
    assert measures.key_frequencies([0.1, 0.5, 0.3, 0.1], share=0.8) == [2, 3]
    assert measures.key_frequencies([0.1, 0.5, 0.3, 0.1], share=0.5) == [2]
    spectrum = measures.fourier_spectrum(torch.cat([circle(13, 3), circle(13, 5)], dim=1))
    assert sorted(measures.key_frequencies(spectrum)) == [3, 5]
    with pytest.raises(ValueError, match="share must be"):
        measures.key_frequencies([1.0], share=0)


def fourier_logits(p, freqs, scale=8.0):
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    answers = (a + b) % p
    c = torch.arange(p)
    logits = sum(torch.cos(2 * math.pi * k * ((a + b)[:, None] - c[None, :]) / p)
                 for k in freqs) * scale
    return logits.double(), answers


def test_restricted_and_excluded_loss_on_a_pure_fourier_circuit():
    p, freqs = 13, [2, 5]
    logits, answers = fourier_logits(p, freqs)
    full = float(torch.nn.functional.cross_entropy(logits, answers))
    assert measures.restricted_loss(logits, answers, p, freqs) == pytest.approx(full, rel=1e-5)
    train = torch.arange(len(answers)) % 3 == 0
    # without its key frequencies the circuit leaves constant logits: the loss of a guess
    assert measures.excluded_loss(logits, answers, p, freqs, train) == pytest.approx(
        math.log(p))
    # keeping a frequency the circuit does not use leaves only the class means
    assert measures.restricted_loss(logits, answers, p, [1]) == pytest.approx(math.log(p))
    with pytest.raises(ValueError, match="freqs must be integer frequencies"):
        measures.restricted_loss(logits, answers, p, [7])


@pytest.mark.parametrize("op", ["add", "mul"])
def test_the_key_frequency_part_is_the_least_squares_projection(op):
    """Computed by Gram-Schmidt (the same bits in every process), it is the projection that
    least squares gives, also where the answers' waves are not orthogonal (a*b: 0 is the
    answer of 2p - 1 pairs)."""
    p, freqs = 13, [2, 5, 6]
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    answers = ((a + b) if op == "add" else (a * b)).flatten() % p
    logits = torch.randn(p * p, p, generator=torch.Generator().manual_seed(0))
    waves = measures._answer_waves(answers, p, freqs)
    centred = logits.double() - logits.double().mean(dim=0)
    expected = waves @ torch.linalg.lstsq(waves, centred).solution
    part = measures.key_frequency_part(logits, answers, p, freqs)
    assert torch.allclose(part, expected, atol=1e-12)
    doubled = measures.key_frequency_part(logits, answers, p, freqs + freqs)
    assert torch.allclose(doubled, expected, atol=1e-12)  # a repeated wave adds nothing


def test_progress_measures_on_a_model_are_all_finite():
    data = modular_arithmetic("add", 11, 0.5, seed=0)
    model = experiments.build_model(RunCfg(data=ModularCfg("add", 11, 0.5),
                                           model=FNNCfg(d_embed=8, width=16, depth=2)), 0)
    values = measures.ProgressMeasures(data, [1, 2])(model)
    assert set(values) == set(measures.PROGRESS_MEASURES)
    assert all(math.isfinite(v) for v in values.values())
    part = dataclasses.replace(data, x_test=data.x_test[:5], y_test=data.y_test[:5])
    with pytest.raises(ValueError, match="whole table"):
        measures.ProgressMeasures(part, [1])


def test_coverage_split_holds_the_region_out_and_separates_the_operands():
    for holdout in ("square", "strip"):
        data = coverage_split("add", 13, 0.3, holdout, 4, seed=1)
        a, b = data.x_train[:, 0], data.x_train[:, 1] - 13
        assert bool((b >= 0).all()) and bool((data.x_train[:, 1] >= 13).all())
        assert not bool(held_out(a, b, holdout, 4).any())
        assert len(data.y_train) == round(0.3 * 169)
        assert len(data.y_train) + len(data.y_test) == 169
        assert data.vocab_size == 26
        assert bool((data.y_train == (a + b) % 13).all())
    strip = coverage_split("add", 13, 0.3, "strip", 4, seed=1)
    assert not bool((strip.x_train[:, 0] <= 4).any())  # the strip's tokens are never trained


def test_the_coverage_control_holds_nothing_out_with_the_same_tokens():
    """The control of the coverage runs: the same separate tokens and the same share of the
    table for training, drawn from all of it."""
    control = coverage_split("add", 13, 0.3, "none", 0, seed=1)
    assert len(control.y_train) == round(0.3 * 169)
    assert len(control.y_train) + len(control.y_test) == 169
    assert control.vocab_size == 26 and bool((control.x_train[:, 1] >= 13).all())
    assert not bool(held_out(torch.arange(13), torch.arange(13), "none", 0).any())
    P = profiles.load("progress", "ci")
    data = P.coverage_run(None).data
    assert (data.holdout, data.k) == ("none", 0)
    assert (data.op, data.p, data.frac) == (P.coverage.data.op, P.coverage.data.p,
                                            P.coverage.data.frac)


def test_bad_coverage_settings_are_named():
    with pytest.raises(ValueError, match="k must lie in 0..11"):
        coverage_split("add", 13, 0.3, "square", 12)
    with pytest.raises(ValueError, match="holdout must be one of"):
        coverage_split("add", 13, 0.3, "ring", 3)
    with pytest.raises(ValueError, match="k must be 0 when holdout is 'none'"):
        coverage_split("add", 13, 0.3, "none", 3)
    with pytest.raises(Invalid, match="leaves only"):
        CoverageCfg("add", 13, 0.6, "strip", 8)
    with pytest.raises(Invalid, match="holdout must be"):
        CoverageCfg("add", 13, 0.3, "ring", 3)


def tiny(data, epochs=60):
    return RunCfg(data=data, model=FNNCfg(d_embed=8, width=16, depth=2),
                  optim=OptimCfg(lr=1e-2, weight_decay=1.0, warmup_steps=3),
                  budget=BudgetCfg(epochs, eval_every=10))


def test_an_unused_token_feels_only_weight_decay(disk_cache):
    cfg = tiny(CoverageCfg("add", 11, 0.3, "strip", 3))
    run = experiments.train_run(cfg, 0)
    start = measures.embedding_rows(experiments.build_model(cfg, 0), 11)
    end = measures.embedding_rows(run.model, 11)
    factor = foresight.decay_factor(1e-2, 1.0, 60, 3)
    assert torch.allclose(end[:4].double(), factor * start[:4].double(), rtol=1e-5)
    assert not torch.allclose(end[4:].double(), factor * start[4:].double(), rtol=1e-2)


def test_progress_run_measures_every_evaluation_and_is_cached(disk_cache):
    cfg = tiny(ModularCfg("add", 11, 0.5))
    run = experiments.progress_run(cfg, 3)
    h = run.history
    for name in measures.PROGRESS_MEASURES:
        assert len(h.extras[name]) == len(h.epoch)
    assert len(h.extras["circle_x_10"]) == len(h.epoch) and "copy" not in h.extras
    again = experiments.progress_run(cfg, 3)
    assert again.cached and again.history.extras == h.extras
    plain = experiments.train_run(cfg, 3)  # the same training, bit for bit
    assert plain.history.train_loss == h.train_loss
    with pytest.raises(ValueError, match="modular task with a learned embedding"):
        experiments.progress_run(replace(cfg, model__embedding="one_hot"), 0)


def sigmoid_history(centre, n=101):
    epochs = list(range(0, 10 * n, 10))
    t = np.array(epochs, dtype=float)
    rise = 1 / (1 + np.exp(-(t - centre) / 20))
    return History(epoch=epochs, train_loss=list(np.full(n, 1e-3)), train_acc=[1.0] * n,
                   test_loss=list(10 ** (1 - 3 * rise)), test_acc=list(rise),
                   weight_norm=list(5 - rise),
                   extras={"early": list(1 / (1 + np.exp(-(t - centre + 200) / 20))),
                           "flat": [1.0] * n,
                           "excluded_loss": list(1 + np.abs(t - 300) / 100)})


def test_transition_lead_and_tracking_on_known_curves():
    h = sigmoid_history(600)
    assert foresight.jump(h) == 600
    assert foresight.transition(h, "early") in (400, 410)  # half-way, to the interval
    assert foresight.transition(h, "flat") is None
    assert foresight.tracking(h, "early") == pytest.approx(-1.0)
    table = foresight.leads([h], [7], measures=("early", "flat"))
    assert table.set_index("measure").loc["early", "lead"] in (190, 200)
    assert math.isnan(table.set_index("measure").loc["flat", "lead"])
    summary = foresight.summary(table)
    assert summary.index[0] == "early" and summary.loc["early", "moved first"] == "1 of 1"


def test_phases_from_the_measures():
    phases = foresight.phases(sigmoid_history(600))
    assert phases["circuit formation"] == 300  # the excluded loss's minimum
    assert 500 <= phases["cleanup"] <= 600 and phases["done"] > 600


def test_pair_accuracy_maps_every_pair():
    data = coverage_split("add", 7, 0.4, "square", 2, seed=0)
    model = experiments.build_model(tiny(CoverageCfg("add", 7, 0.4, "square", 2)), 0)
    grid = foresight.pair_accuracy(model, data)
    assert grid.shape == (7, 7) and not np.isnan(grid).any()


def test_the_profiles_load_and_keep_the_strip_possible():
    for name in ("ci", "book", "paper"):
        P = profiles.load("progress", name)
        for hold in ("square", "strip"):
            for k in P.coverage_ks:
                assert P.coverage_run(hold, k).data.k == k
        assert len(P.seeds) >= (8 if name != "ci" else 5)


def test_the_scrubber_draws_and_follows_its_controls():
    from grokbook.widgets import ProgressScrubber

    h = sigmoid_history(600, n=20)
    extras = {name: [0.5] * 20 for name in foresight.WATCHED if name not in ("train_loss",
                                                                             "weight_norm")}
    extras.update({f"circle_{xy}_{a}": [float(a)] * 20 for a in range(5) for xy in "xy"})
    h.extras.update(extras)
    scrubber = ProgressScrubber(profiles.load("progress", "ci"), {0: h, 1: h})
    scrubber.controls["measure"].value = "gini"
    scrubber.controls["epoch"].value = 150
    assert "epoch 150" in scrubber.status.value and "gini" in scrubber.status.value
    with pytest.raises(ValueError, match="initial must map seeds"):
        ProgressScrubber(profiles.load("progress", "ci"), {})


def test_the_paper_profile_starts_on_a_cpu(disk_cache):
    P = profiles.load("progress", "paper")
    for cfg in (P.transformer, P.coverage_run("strip", P.coverage_ks[-1])):
        short = replace(cfg, budget__epochs=2, budget__eval_every=1)
        run = (experiments.progress_run(short, 0) if cfg is P.transformer
               else experiments.train_run(short, 0))
        assert len(run.history.epoch) == 3 and math.isfinite(run.history.train_loss[-1])
