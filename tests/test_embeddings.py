import math

import pytest
import torch

from grokbook import embeddings, measures, models
from grokbook.measures import NTKChange
from grokbook.models import FNN, make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import train


@pytest.mark.parametrize("name", ["one_hot", "binary", "fourier"])
def test_tables_have_one_unit_row_per_number(name):
    table = embeddings.make_table(name, 13)
    assert table.shape[0] == 13
    torch.testing.assert_close(table.norm(dim=1), torch.ones(13))
    assert len({tuple(row.tolist()) for row in table}) == 13  # every number distinct


def test_binary_uses_ceil_log2_p_signed_bits():
    table = embeddings.binary(113)
    assert table.shape == (113, 7)
    assert torch.equal(torch.sign(table[5]), torch.tensor([1., -1, 1, -1, -1, -1, -1]))


def test_fourier_makes_addition_a_rotation():
    p, k = 11, 3
    table = embeddings.fourier(p, frequencies=(k,))  # (cos, sin) of each number
    angle = 2 * math.pi * k / p
    rotation = torch.tensor([[math.cos(angle), math.sin(angle)],
                             [-math.sin(angle), math.cos(angle)]])
    for a in range(p):  # the feature of a + 1 is the feature of a, rotated
        torch.testing.assert_close(table[a] @ rotation, table[(a + 1) % p], atol=1e-5, rtol=0)


def test_from_table_checks_the_shape_and_normalises():
    table = embeddings.from_table(torch.arange(1.0, 13.0).view(6, 2), p=6)
    torch.testing.assert_close(table.norm(dim=1), torch.ones(6))
    with pytest.raises(ValueError, match=r"one row per number 0..6 \(shape \(7, d\)\)"):
        embeddings.from_table(torch.ones(6, 2), p=7)
    with pytest.raises(ValueError, match=r"zero rows \[1\]"):
        embeddings.from_table(torch.tensor([[1.0], [0.0]]), p=2)


def test_unknown_embedding_and_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown embedding 'word2vec'; known embeddings: "
                                         "one_hot, binary, fourier"):
        embeddings.make_table("word2vec", 11)
    with pytest.raises(ValueError, match="p must be an integer >= 2"):
        embeddings.one_hot(1)
    with pytest.raises(ValueError, match="frequencies must be positive integers"):
        embeddings.fourier(11, frequencies=(0,))
    with pytest.raises(ValueError, match="table holds NaN or infinite entries"):
        embeddings.from_table(torch.full((7, 3), float("nan")), 7)
    with pytest.raises(ValueError, match="table holds NaN or infinite entries"):
        models.FixedEmbedding(torch.full((7, 3), float("inf")))


def test_fnn_reads_a_fixed_embedding_that_training_leaves_alone():
    table = embeddings.fourier(11)
    model = FNN(11, 11, width=16, depth=3, init_scale=2.0,
                embedding=models.FixedEmbedding(table))
    assert model.layers[0].in_features == 2 * table.shape[1]
    train(model, modular_arithmetic("add", 11, 0.5), epochs=5, lr=0.1, weight_decay=1.0)
    torch.testing.assert_close(model.embed.table, table)
    assert "embed.table" not in dict(model.named_parameters())


def test_fnn_rejects_an_embedding_of_another_vocabulary():
    with pytest.raises(ValueError, match="embedding has 7 rows but vocab_size is 11"):
        FNN(11, 11, embedding=models.FixedEmbedding(embeddings.one_hot(7)))


def direct_kernel(model, probe, n_classes):
    gradients = []
    for x in probe:
        model.zero_grad()
        model(x.unsqueeze(0)).sum().backward()
        gradients.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    g = torch.stack(gradients)
    return g @ g.T / n_classes


def test_ntk_matches_a_direct_computation_and_measures_its_change():
    model = make_model("fnn", 5, 5, seed=0, d_embed=3, width=4, depth=2)
    probe = torch.tensor([[0, 1], [2, 3], [4, 4], [1, 0]])
    ntk = NTKChange(probe, n_classes=5)
    first = direct_kernel(model, probe, 5)
    torch.testing.assert_close(ntk.kernel(model), first)
    assert ntk(model) == 0.0 and ntk(model) == 0.0  # unchanged parameters, unchanged kernel
    with torch.no_grad():
        model.layers[0].weight.mul_(1.5)
    second = direct_kernel(model, probe, 5)
    assert ntk(model) == pytest.approx((second - first).norm().item(), rel=1e-5)


def test_ntk_change_is_a_training_measure():
    data = modular_arithmetic("add", 7, 0.5)
    model = make_model("fnn", 7, 7, d_embed=4, width=8, depth=2)
    history = train(model, data, epochs=20, eval_every=10,
                    measures={"ntk_change": NTKChange(data.x_test[:6], 7)})
    assert history.extras["ntk_change"][0] == 0.0 and history.extras["ntk_change"][1] > 0


def test_the_stored_text_embedding_ships_in_the_package_with_a_row_per_number_name():
    import numpy as np

    table = embeddings.from_table(np.load(embeddings.TEXT_TABLE)[:59], p=59)
    assert table.shape == (59, 384) and torch.isfinite(table).all()
    similarity = table @ table.T
    assert similarity[21, 22] > similarity[21, 55]  # "twenty-one" is nearer "twenty-two"
    text = embeddings.make_table("text", 59)
    assert text.shape[0] == 59 and torch.allclose(text @ text.T, similarity, atol=1e-5)
    with pytest.raises(ValueError, match="p must be at most 113"):
        embeddings.text(127)


def test_row_space_keeps_every_inner_product_in_fewer_coordinates():
    table = embeddings.unit_rows(torch.randn(7, 30, generator=torch.Generator().manual_seed(0)))
    compact = embeddings.row_space(table)
    assert compact.shape == (7, 7)
    torch.testing.assert_close(compact @ compact.T, table @ table.T, atol=1e-5, rtol=1e-5)
    low_rank = torch.cat([table[:, :2], table[:, :2]], dim=1)  # rank 2
    assert embeddings.row_space(low_rank).shape == (7, 2)


def test_principal_components_of_a_circle_explain_all_its_variance():
    coords, explained = measures.principal_components(embeddings.fourier(13, (1,)), k=2)
    assert coords.shape == (13, 2)
    torch.testing.assert_close(explained.sum(), torch.tensor(1.0))
    torch.testing.assert_close(coords.norm(dim=1), torch.ones(13), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="k must be at most"):
        measures.principal_components(embeddings.fourier(13, (1,)), k=3)


def test_relative_ntk_change_divides_by_the_previous_kernel():
    model = make_model("fnn", 5, 5, seed=0, d_embed=3, width=4, depth=2)
    probe = torch.tensor([[0, 1], [2, 3], [4, 4], [1, 0]])
    raw, relative = NTKChange(probe, 5), NTKChange(probe, 5, relative=True)
    first = raw.kernel(model)
    raw(model), relative(model)
    with torch.no_grad():
        model.layers[0].weight.mul_(1.5)
    assert relative(model) == pytest.approx(raw(model) / first.norm().item(), rel=1e-5)


def test_the_fourier_spectrum_finds_the_circle_a_table_is_made_of():
    p = 31
    a = torch.arange(p, dtype=torch.float64)
    circle = torch.stack([torch.cos(2 * torch.pi * 5 * a / p),
                          torch.sin(2 * torch.pi * 5 * a / p)], 1)
    power = measures.fourier_spectrum(circle)
    assert power.shape == (p // 2,)
    assert power[4] == pytest.approx(1.0, abs=1e-6)  # frequency 5 is index 4
    two = torch.cat([circle, torch.cos(2 * torch.pi * 3 * a / p)[:, None]], 1)
    shares = measures.fourier_spectrum(two)
    assert shares.sum() == pytest.approx(1.0)
    assert set(shares.argsort(descending=True)[:2].tolist()) == {2, 4}


def test_the_fourier_spectrum_reads_rows_in_the_given_order():
    from grokbook.tasks import discrete_log_order

    p = 13
    order = discrete_log_order(p)
    log = {value: i for i, value in enumerate(order)}
    # a table that is a circle over the discrete log of each nonzero number (row 0 unused)
    angle = torch.tensor([0.0] + [2 * torch.pi * log[v] / (p - 1) for v in range(1, p)])
    table = torch.stack([angle.cos(), angle.sin()], 1)
    assert measures.fourier_spectrum(table, order)[0] == pytest.approx(1.0, abs=1e-6)
    assert measures.fourier_spectrum(table).max() < 0.9  # in number order: no single circle
    with pytest.raises(ValueError, match="2-D"):
        measures.fourier_spectrum(torch.zeros(5))


def test_frequency_plane_finds_each_circle_of_a_two_circle_table():
    table = embeddings.fourier(59, (5, 7))
    for k in (5, 7):
        xy = measures.frequency_plane(table, k)
        radius = xy.norm(dim=1)
        torch.testing.assert_close(radius, torch.full_like(radius, radius[0].item()))
        step = torch.atan2(xy[1, 1], xy[1, 0]) - torch.atan2(xy[0, 1], xy[0, 0])
        assert torch.isclose(step.abs() % (2 * math.pi), torch.tensor(2 * math.pi * k / 59)) \
            or torch.isclose(2 * math.pi - step.abs() % (2 * math.pi),
                             torch.tensor(2 * math.pi * k / 59))
    with pytest.raises(ValueError, match=r"k must be an integer frequency in 1..29"):
        measures.frequency_plane(table, 30)
