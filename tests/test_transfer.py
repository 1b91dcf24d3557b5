import pytest
import torch

from grokbook import models, transfer
from grokbook.cli import main
from grokbook.models import make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import train


def test_low_rank_embedding_is_a_times_b_and_both_learn():
    a = torch.randn(7, 3)
    embedding = transfer.LowRankEmbedding(a, d_target=5, seed=0)
    tokens = torch.tensor([[0, 6], [3, 3]])
    torch.testing.assert_close(embedding(tokens), embedding.weight()[tokens])
    torch.testing.assert_close(embedding.a.detach(), a)
    assert embedding.b.abs().max() <= 1 / 3 ** 0.5  # nn.Linear(3, 5)'s default bound
    assert {name for name, _ in embedding.named_parameters()} == {"a", "b"}
    frozen = transfer.LowRankEmbedding(a, d_target=5, freeze_a=True)
    assert {name for name, _ in frozen.named_parameters()} == {"b"}


def test_the_target_keeps_the_weak_embedding_as_it_was():
    data = modular_arithmetic("add", 11, 0.5)
    weak = make_model("fnn", 11, 11, d_embed=3, width=8, depth=2)
    train(weak, data, epochs=5, progress=False)
    a = transfer.weak_embedding(weak)
    assert a.shape == (11, 3)
    target = transfer.fnn_target(a, 11, d_embed=6, width=16, depth=3, init_scale=0.3)
    torch.testing.assert_close(target.embed.a.detach(), a)  # init_scale scales B, not A
    assert target.embed.embedding_dim == 6
    history = train(target, data, epochs=5, progress=False)
    assert len(history) == 2 and not torch.equal(target.embed.a.detach(), a)


def test_weak_embedding_of_vector_and_transformer_models():
    net = models.TwoLayerReLU(p=6, width=3, w_init=0.1, a_init=0.1)
    assert transfer.weak_embedding(net).shape == (6, 3)
    transformer = make_model("transformer", 11, 11, d_model=8, n_heads=2, d_mlp=16)
    assert transfer.weak_embedding(transformer).shape == (11, 8)  # "=" dropped
    a = torch.randn(11, 3)
    target = transfer.transformer_target(a, 11, d_model=8, n_heads=2, d_mlp=16)
    torch.testing.assert_close(transfer.weak_embedding(target), a @ target.embed.b)


def test_transfer_errors_are_clear():
    with pytest.raises(ValueError, match="has no embedding to transfer"):
        transfer.weak_embedding(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="embedding has 11 rows but vocab_size is 13"):
        transfer.fnn_target(torch.randn(11, 3), 13, vocab_size=13, d_embed=4)
    with pytest.raises(ValueError, match="must be 2-D"):
        transfer.LowRankEmbedding(torch.randn(3), d_target=4)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: transfer.LowRankEmbedding(torch.full((7, 3), float("nan")), 4),
     "the weak embedding A holds NaN or infinite entries: the weak model diverged"),
    (lambda: transfer.fnn_target(torch.full((7, 3), float("inf")), 7, d_embed=4, width=8),
     "the weak embedding A holds NaN or infinite entries"),
    (lambda: transfer.LowRankEmbedding(torch.ones(7, 3), 4, init_scale=float("inf")),
     "init_scale must be a finite number"),
    (lambda: transfer.LowRankEmbedding(torch.ones(7, 3), 4, seed=-1),
     "seed must be an integer in 0"),
    (lambda: transfer.random_like(torch.full((3, 3), float("nan"))),
     "a holds NaN or infinite entries"),
    (lambda: transfer.random_like(torch.ones(3, 3), seed=1.5), "seed must be an integer in 0"),
])
def test_a_diverged_or_bad_weak_embedding_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_random_like_keeps_shape_and_size():
    a = torch.randn(9, 4) * 3
    r = transfer.random_like(a, seed=1)
    assert r.shape == a.shape and r.norm().item() == pytest.approx(a.norm().item(), rel=1e-5)
    assert not torch.allclose(r, a)


def test_cli_transfer_prints_the_comparison(capsys):
    code = main(["transfer", "--p", "11", "--frac", "0.5", "--epochs", "20",
                 "--weak-epochs", "20", "--width", "16", "--d-embed", "8", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "weak model (d_embed 6, width 16)" in out and "GrokTransfer" in out
    assert "scratch" in out and "wall time: weak + GrokTransfer" in out


def test_cli_transfer_rejects_a_bad_fraction(capsys):
    assert main(["transfer", "--frac", "1.5", "--quiet"]) == 2
    assert "ModularCfg.frac must be a finite number in (0, 1)" in capsys.readouterr().err


def test_sparse_parity_labels_are_the_product_of_the_first_k_bits():
    from grokbook.tasks import sparse_parity

    data = sparse_parity(n_bits=10, k=3, n_train=200, n_test=50, seed=0)
    torch.testing.assert_close(data.y_train, data.x_train[:, :3].prod(dim=1))
    assert set(data.x_test.unique().tolist()) == {-1.0, 1.0} and data.x_test.shape == (50, 10)
    with pytest.raises(ValueError, match="k must be at most n_bits"):
        sparse_parity(n_bits=3, k=4)


def test_a_digits_groktransfer_target_reads_the_weak_first_layer():
    from grokbook.config import BudgetCfg, DigitsCfg, RunCfg, VectorFNNCfg
    from grokbook.experiments import GrokTransfer, run_method

    small = DigitsCfg(n_train=60, n_test=40)
    weak = RunCfg(data=small, model=VectorFNNCfg(d_embed=4, width=8, depth=2),
                  budget=BudgetCfg(3, eval_every=1))
    target = RunCfg(data=small, model=VectorFNNCfg(d_embed=16, width=16, depth=4),
                    budget=BudgetCfg(4, eval_every=2))
    run = run_method(GrokTransfer(weak, target), 0, progress=False)
    assert run.model.embed.a.shape == (64, 4) and run.model(torch.zeros(2, 64)).shape == (2, 10)
    assert run.weak.history.epoch == [0, 1, 2, 3] and run.history.epoch == [0, 2, 4]


def test_vector_transfer_feeds_the_weak_first_layer_to_the_target():
    from grokbook.models import VectorFNN
    from grokbook.tasks import sparse_parity

    data = sparse_parity(n_bits=8, k=2, n_train=64, n_test=32)
    weak = VectorFNN(8, d_embed=4, width=4, depth=2)
    train(weak, data, epochs=5, loss="logistic", progress=False)
    a = transfer.weak_embedding(weak)
    assert a.shape == (8, 4)
    target = transfer.vector_target(a, d_embed=16, width=32, depth=3)
    x = data.x_test[:5]
    torch.testing.assert_close(target.embed(x), x @ a @ target.embed.b)
    history = train(target, data, epochs=5, loss="logistic", progress=False)
    assert history.epoch == [0, 5]
    with pytest.raises(ValueError, match="embedding has 8 rows but d_in is 9"):
        transfer.vector_target(a, d_in=9)


def test_a_weak_fnn_embedding_initialises_a_transformer():
    data = modular_arithmetic("add", 11, 0.5)
    weak = make_model("fnn", 11, 11, d_embed=3, width=8, depth=2)
    a = transfer.weak_embedding(weak)
    target = transfer.transformer_target(a, 11, d_model=8, n_heads=2, d_mlp=16, init_scale=0.5)
    weight = target.embed.weight().detach()
    assert weight.shape == (12, 8) and torch.equal(weight[-1], torch.zeros(8))  # "=" row
    torch.testing.assert_close(weight[:11], a @ target.embed.b.detach())
    history = train(target, data, epochs=4, eval_every=2, progress=False)
    assert history.epoch == [0, 2, 4]
    with pytest.raises(ValueError, match="weak embedding has 11 rows but the target's"):
        transfer.transformer_target(a, 13, vocab_size=13, d_model=8, n_heads=2, d_mlp=16)


def test_a_transferred_target_trains_the_same_twice():
    # A @ B's lookup must have a deterministic backward (advanced indexing's has not, on CPU)
    data = modular_arithmetic("add", 23, 0.5, seed=1)
    a = torch.randn(23, 4, generator=torch.Generator().manual_seed(0))
    losses = []
    for _ in range(2):
        target = transfer.fnn_target(a, 23, seed=1, vocab_size=23, d_embed=16, width=32)
        history = train(target, data, epochs=60, lr=1e-2, weight_decay=0.1, progress=False)
        losses.append(history.train_loss + history.test_loss)
    assert losses[0] == losses[1]


def test_merge_keeps_the_function_and_makes_the_embedding_one_matrix():
    a = torch.randn(11, 3, generator=torch.Generator().manual_seed(0))
    target = transfer.fnn_target(a, 11, seed=0, vocab_size=11, d_embed=8, width=16)
    x = torch.tensor([[1, 2], [3, 10]])
    before = target(x)
    transfer.merge(target)
    assert isinstance(target.embed, torch.nn.Embedding) and target.embed.weight.requires_grad
    assert torch.allclose(target(x), before)
    with pytest.raises(ValueError, match="no A @ B embedding"):
        transfer.merge(target)


def test_a_run_followed_by_another_reads_as_one_run():
    data = modular_arithmetic("add", 11, 0.5, seed=0)
    model = make_model("fnn", 11, 11, seed=0, d_embed=4, width=8)
    first = train(model, data, epochs=20, eval_every=10, progress=False)
    second = train(model, data, epochs=30, eval_every=10, progress=False)
    both = first.followed_by(second)
    assert both.epoch == [0, 10, 20, 30, 40, 50]
    assert both.test_acc == first.test_acc + second.test_acc[1:]
    assert both.seconds == first.seconds + second.seconds
