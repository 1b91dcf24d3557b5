import dataclasses

import pytest

from grokbook import experiments, profiles
from grokbook.config import Invalid, RunCfg, replace


def test_every_chapter_defines_every_profile_as_one_typed_value():
    for chapter in profiles.CHAPTERS:
        sizes = {name: profiles.load(chapter, name) for name in profiles.PROFILE_NAMES}
        assert {type(p) for p in sizes.values()} == {type(sizes["book"])}, chapter
        assert all(p.name == name for name, p in sizes.items()), chapter


def test_profile_comes_from_the_argument_then_the_environment_then_book(monkeypatch):
    monkeypatch.delenv("GROKBOOK_PROFILE", raising=False)
    assert profiles.load("grokking").name == "book"
    monkeypatch.setenv("GROKBOOK_PROFILE", "paper")
    assert profiles.load("grokking").p == 113
    assert profiles.load("grokking", "ci").name == "ci"


def test_profiles_are_frozen_values():
    P = profiles.load("grokking", "ci")
    with pytest.raises(dataclasses.FrozenInstanceError):
        P.fnn = None
    assert replace(P, seeds=(5,)).seeds == (5,) and profiles.load("grokking", "ci").seeds != (5,)


def test_the_grokking_chapter_compares_weight_decay_one_with_zero():
    for name in profiles.PROFILE_NAMES:
        grid = profiles.load("grokking", name).wd_grid
        assert 0.0 in grid and 1.0 in grid, name


def test_unknown_names_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown profile 'huge'; known profiles: ci, book, paper"):
        profiles.load("grokking", "huge")
    with pytest.raises(ValueError, match="unknown chapter 'quantum'; chapters with profiles: "
                       "grokking, embeddings, xor"):
        profiles.load("quantum", "ci")
    with pytest.raises(AttributeError, match="width"):
        _ = profiles.load("grokking", "ci").width
    with pytest.raises(Invalid, match="unknown field.*widht.*known fields: d_embed, width"):
        replace(profiles.load("grokking", "ci"), fnn__model__widht=3)


def test_ci_and_paper_differ_from_book_only_where_they_say():
    book = profiles.load("transfer", "book", tuned=False)
    ci = profiles.load("transfer", "ci", tuned=False)
    assert ci.target["add"].optim == book.target["add"].optim  # before tuning, at each size
    assert ci.target["add"].model.width == 64 and book.target["add"].model.width == 128


def _one_epoch(cfg: RunCfg) -> RunCfg:
    """One optimizer step and two evaluations: enough to show that a run starts, at a third
    less than two epochs (the paper's 8-layer Transformer costs seconds per evaluation)."""
    return replace(cfg, budget__epochs=1, budget__eval_every=1)


@pytest.mark.slow
def test_every_paper_profile_starts_on_a_cpu():
    P = profiles.load("grokking", "paper")
    for cfg in (P.fnn, P.transformer):
        assert experiments.train_run(_one_epoch(cfg), 0, progress=False).history.epoch[-1] == 1
    P = profiles.load("embeddings", "paper")
    assert P.runs["fourier"].optim.lr == 0.1  # the paper's
    assert experiments.train_run(_one_epoch(P.runs["fourier"]), 0,
                                 progress=False).history.epoch[-1] == 1
    P = profiles.load("transfer", "paper")
    run = experiments.GrokTransfer(_one_epoch(P.weak["mul"]), _one_epoch(P.target["mul"])).run(
        0, progress=False)
    assert run.model.embed.weight().shape == (P.p, P.target["mul"].model.d_embed)
    P = profiles.load("cross", "paper")
    method = experiments.GrokTransfer(_one_epoch(P.weak), _one_epoch(
        replace(P.target, grad_transform=P.ema)))
    run = method.run(0, progress=False)
    assert len(run.model.blocks) == 8 and run.history.epoch == [0, 1]


@pytest.mark.slow
def test_the_xor_paper_profile_starts_on_a_cpu():
    from grokbook import tasks

    P = replace(profiles.load("xor", "paper"), wide_epochs=1, eval_every=1)
    # the paper's dimension and width (a first layer of 80000 x 2048, what costs memory), on
    # a tenth of its training points and a small test set: one epoch of all 400 took 25 s
    data = tasks.xor_cluster(P.n // 10, 10, P.p, P.eps)
    _, history = experiments.xor_normal_run(P, data, progress=False)
    assert history.epoch == [0, 1]


def test_every_transfer_profile_has_a_weak_model_per_task():
    for name in profiles.PROFILE_NAMES:
        P = profiles.load("transfer", name)
        assert set(P.weak) == set(P.tasks) == {"add", "mul"}
        assert all(0 < w.budget.stop_acc < 0.95 for w in P.weak.values())


def test_a_seed_offset_shifts_every_list_of_seeds(monkeypatch):
    book = profiles.load("transfer", "book")
    shifted = profiles.load("transfer", "book", seed_offset=5)
    assert shifted.seeds == tuple(s + 5 for s in book.seeds)
    assert shifted.random_seeds == tuple(s + 5 for s in book.random_seeds)
    assert shifted.sweep["seeds"] == tuple(s + 5 for s in book.sweep["seeds"])
    assert shifted.ablations["seeds"] == tuple(s + 5 for s in book.ablations["seeds"])
    assert shifted.target == book.target  # nothing else moves
    xor = profiles.load("xor", "ci", seed_offset=2)
    base_xor = profiles.load("xor", "ci")
    assert xor.lemma["seeds"] == tuple(s + 2 for s in base_xor.lemma["seeds"])
    assert xor.data_seeds == tuple(s + 2 for s in base_xor.data_seeds)  # the data move too
    monkeypatch.setenv("GROKBOOK_SEED_OFFSET", "7")
    base = profiles.load("cross", "ci", seed_offset=0).seeds
    assert profiles.load("cross", "ci").seeds == tuple(s + 7 for s in base)
    monkeypatch.setenv("GROKBOOK_SEED_OFFSET", "seven")
    with pytest.raises(ValueError, match="GROKBOOK_SEED_OFFSET must be a non-negative integer"):
        profiles.load("cross", "ci")
    with pytest.raises(ValueError, match="seed_offset must be an integer"):
        profiles.load("cross", "ci", seed_offset=-1)


def test_cross_low_weight_decay_race_holds_what_the_claims_read():
    from grokbook.profiles import cross

    assert set(cross.BOOK.low_wd_methods()) == {"plain", "GrokFast-EMA", "GrokFast-MA"}
    assert list(cross.CI.low_wd_methods()) == ["plain", "GrokFast-MA"]
    for bad in (("GrokFast-MA",), ("plain",), ("plain", "GrokFast-MA", "GrokTransfer"),
                ("plain", "GrokFast-MA", "GrokFast-MA"), ["plain", "GrokFast-MA"]):
        with pytest.raises(ValueError, match="low_wd_compared must start with 'plain'"):
            replace(cross.BOOK, low_wd_compared=bad)
