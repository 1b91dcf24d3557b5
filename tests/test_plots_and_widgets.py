import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from grokbook import embeddings, plots, profiles
from grokbook.tasks import modular_arithmetic
from grokbook.train import History
from grokbook.widgets import embedding_explorer, grokking_explorer


def fake(n, stop=None):
    epochs = list(range(0, 10 * n, 10))[:stop]
    k = len(epochs)
    return History(epoch=epochs, train_loss=[1.0] * k, train_acc=[1.0] * k, test_loss=[1.0] * k,
                   test_acc=list(np.linspace(0, 1, k)), weight_norm=[2.0] * k)


def test_training_figure_draws_seeds_of_different_lengths():
    plots.use_style()
    fig = plots.training_figure([fake(20), fake(20, stop=12)], title="t")
    acc = fig.axes[0]
    assert acc.get_xscale() == "log"
    assert {line.get_label() for line in acc.get_lines()} >= {"train", "test"}
    plt.close(fig)


def test_heatmap_and_task_table_draw():
    fig, (a, b) = plt.subplots(1, 2)
    plots.plot_heatmap(a, np.array([[1.0, np.nan]]), [0.0], [0.3, 0.5], "wd", "frac")
    assert [t.get_text() for t in a.texts] == ["1", "never"]
    plots.plot_task_table(modular_arithmetic("add", 7, 0.5), b)
    plt.close(fig)


def test_the_explorer_trains_live_when_clicked():
    settings = profiles.load("grokking", "ci")
    settings["fnn_train"]["epochs"] = 200
    widget = grokking_explorer(settings, initial=fake(5))
    controls, status, _ = widget.children
    sliders = {c.description: c for c in controls.children}
    sliders["p (prime)"].value = 17
    sliders["epochs"].value = 200
    button = controls.children[-1]
    button.click()
    assert "95% train:" in status.value and "epochs/s" in status.value
    assert not button.disabled


def test_embedding_pictures_show_pca_and_similarity():
    fig, (pca, similarity) = plt.subplots(1, 2)
    plots.plot_embedding(pca, embeddings.fourier(17), title="fourier")
    assert "PC 1" in pca.get_xlabel() and "%" in pca.get_xlabel()
    plots.plot_similarity(similarity, embeddings.one_hot(17))
    image = similarity.get_images()[0].get_array()
    assert np.allclose(image, np.eye(17))
    plt.close(fig)


def test_the_embedding_explorer_follows_the_chosen_embedding_and_trains():
    settings = profiles.load("embeddings", "ci")
    tables = {name: embeddings.make_table(name, 17) for name in ("one_hot", "fourier")}
    widget = embedding_explorer(settings, tables, initial={"one_hot": fake(5)})
    controls, status, _ = widget.children
    sliders = {c.description: c for c in controls.children}
    assert "95% train:" in status.value
    sliders["embedding"].value = "fourier"
    assert sliders["learning rate"].value == pytest.approx(settings.hyper["fourier"]["lr"])
    assert status.value == "press Train"
    sliders["epochs"].value = 200
    controls.children[-1].click()
    assert "95% train:" in status.value and "epochs/s" in status.value


def test_the_embedding_explorer_rejects_tables_of_different_sizes():
    tables = {"one_hot": embeddings.one_hot(17), "fourier": embeddings.fourier(19)}
    with pytest.raises(ValueError, match="same p"):
        embedding_explorer(profiles.load("embeddings", "ci"), tables)
    with pytest.raises(ValueError, match="at least one table"):
        embedding_explorer(profiles.load("embeddings", "ci"), {})
    assert torch.is_tensor(tables["one_hot"])


def test_the_xor_explorer_trains_normal_and_transferred():
    from grokbook.widgets import xor_explorer

    settings = profiles.load("xor", "ci")
    settings.update(weak_epochs=50, m=64)
    widget = xor_explorer(settings, initial=(fake(5), fake(2)))
    controls, status, _ = widget.children
    sliders = {c.description: c for c in controls.children}
    sliders["dimension p"].value = 100
    sliders["epochs"].value = 50
    controls.children[-1].click()
    assert "normal: 95% train:" in status.value and "after one step" in status.value


def test_the_transfer_explorer_trains_the_weak_model_then_both_targets():
    from grokbook.widgets import transfer_explorer

    settings = profiles.load("transfer", "ci")
    settings.update(p=17, weak_train={"epochs": 30, "lr": 1e-2, "weight_decay": 0.1,
                                      "eval_every": 10})
    widget = transfer_explorer(settings, initial={"GrokTransfer": fake(5), "scratch": fake(5)})
    controls, status, _ = widget.children
    sliders = {c.description: c for c in controls.children}
    assert status.value.startswith("GrokTransfer: 95% train:")
    sliders["task"].value = "mul"
    sliders["weak d_embed"].value = 3
    sliders["epochs"].value = 200
    controls.children[-1].click()
    assert "weak model:" in status.value
    assert "GrokTransfer: 95% train:" in status.value and "scratch: 95% train:" in status.value


def test_the_accelerator_race_trains_every_chosen_method():
    from grokbook.widgets import RACERS, accelerator_race

    settings = profiles.load("cross", "ci")
    settings.update(p=17, weak_train={"epochs": 30, "lr": 1e-2, "weight_decay": 0.1,
                                      "eval_every": 10},
                    transformer={"d_model": 16, "n_heads": 2, "d_mlp": 32, "n_layers": 1})
    widget = accelerator_race(settings, initial={"plain": fake(5)})
    controls, status, _ = widget.children
    sliders = {c.description: c for c in controls.children}
    assert status.value.startswith("plain: 95% train:")
    sliders["epochs"].value = 200
    controls.children[-1].click()
    for method in RACERS:
        assert f"{method}: 95% train:" in status.value
    sliders["methods"].value = ()
    controls.children[-1].click()
    assert "error" in status.value and "choose at least one" in status.value
