import pytest

from grokbook import profiles


def test_every_chapter_defines_every_profile_with_the_same_settings():
    for chapter, sizes in profiles.CHAPTERS.items():
        assert set(sizes) == set(profiles.PROFILE_NAMES), chapter
        keys = {name: set(settings) for name, settings in sizes.items()}
        assert len({frozenset(k) for k in keys.values()}) == 1, keys


def test_profile_comes_from_the_argument_then_the_environment_then_book(monkeypatch):
    monkeypatch.delenv("GROKBOOK_PROFILE", raising=False)
    assert profiles.load("grokking").name == "book"
    monkeypatch.setenv("GROKBOOK_PROFILE", "paper")
    assert profiles.load("grokking").p == 113
    assert profiles.load("grokking", "ci").name == "ci"


def test_profiles_are_copies():
    profiles.load("grokking", "ci").fnn["width"] = 1
    assert profiles.load("grokking", "ci").fnn["width"] != 1


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
    with pytest.raises(AttributeError, match="has no setting 'width'"):
        _ = profiles.load("grokking", "ci").width


def test_the_paper_profile_starts_on_a_cpu():
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic
    from grokbook.train import train

    P = profiles.load("grokking", "paper")
    data = modular_arithmetic("add", P.p, P.frac)
    for kind in ("fnn", "transformer"):
        model = make_model(kind, data.vocab_size, data.n_classes, **P[kind])
        settings = {**P[f"{kind}_train"], "epochs": 2}
        history = train(model, data, device="cpu", **settings)
        assert history.epoch == [0, 2]


def test_every_embedding_has_its_hyperparameters_at_every_profile():
    for name in profiles.PROFILE_NAMES:
        P = profiles.load("embeddings", name)
        assert set(P.hyper) == {"one_hot", "binary", "fourier", "text"}
        assert all(set(h) == {"init_scale", "lr", "weight_decay"} for h in P.hyper.values())
    assert profiles.load("embeddings", "paper").hyper["fourier"]["lr"] == 0.1  # the paper's


def test_the_embeddings_paper_profile_starts_on_a_cpu():
    from grokbook.embeddings import FixedEmbedding, fourier
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic
    from grokbook.train import train

    P = profiles.load("embeddings", "paper")
    data = modular_arithmetic("add", P.p, P.frac)
    hyper = P.hyper["fourier"]
    model = make_model("fnn", P.p, P.p, **P.fnn, init_scale=hyper["init_scale"],
                       embedding=FixedEmbedding(fourier(P.p)))
    history = train(model, data, epochs=2, lr=hyper["lr"], weight_decay=hyper["weight_decay"],
                    device="cpu")
    assert history.epoch == [0, 2]


def test_the_xor_paper_profile_starts_on_a_cpu():
    from grokbook import xor

    P = profiles.load("xor", "paper")
    data = xor.xor_cluster(P.n, 10, P.p, P.eps)  # the paper's sizes, a small test set
    wide = xor.TwoLayerReLU(P.p, **P.wide)
    history = xor.fit(wide, data, 1, P.lr, P.weight_decay, eval_every=1, progress=False)
    assert history.epoch == [0, 1]


def test_the_transfer_paper_profile_starts_on_a_cpu():
    from grokbook import transfer
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic
    from grokbook.train import train

    P = profiles.load("transfer", "paper")
    data = modular_arithmetic("mul", P.p, P.frac)
    weak = make_model("fnn", P.p, P.p, **P.weak["mul"])
    assert train(weak, data, **{**P.weak_train, "epochs": 2}, device="cpu").epoch == [0, 2]
    target = transfer.fnn_target(transfer.weak_embedding(weak), P.p, vocab_size=P.p,
                                 init_scale=P.transfer_init, **P.target)
    history = train(target, data, **{**P.transfer_train, "epochs": 2}, device="cpu")
    assert history.epoch == [0, 2]
    assert target.embed.weight().shape == (P.p, P.target["d_embed"])


def test_every_transfer_profile_has_a_weak_model_per_task():
    for name in profiles.PROFILE_NAMES:
        P = profiles.load("transfer", name)
        assert set(P.weak) == set(P.tasks) == {"add", "mul"}
        assert 0 < P.weak_stop_acc < 0.95


def test_the_cross_paper_profile_starts_on_a_cpu():
    from grokbook import transfer
    from grokbook.accelerators import GrokFastEMA
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic
    from grokbook.train import train

    P = profiles.load("cross", "paper")
    data = modular_arithmetic("add", P.p, P.frac)
    weak = make_model("fnn", P.p, P.p, **P.weak)
    train(weak, data, **{**P.weak_train, "epochs": 1}, device="cpu")
    target = transfer.transformer_target(transfer.weak_embedding(weak), P.p, vocab_size=P.p,
                                         init_scale=P.transfer_init, **P.transformer)
    assert len(target.blocks) == 8
    history = train(target, data, **{**P.transfer_train, "epochs": 1, "eval_every": 1},
                    grad_transform=GrokFastEMA(**P.grokfast["ema"]), device="cpu")
    assert history.epoch == [0, 1]
