import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest

from grokbook import embeddings, plots, profiles
from grokbook.config import ModularCfg, replace
from grokbook.history import History
from grokbook.tasks import modular_arithmetic
from grokbook.widgets import Explorer, embedding_explorer, grokking_explorer


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


def _parts(widget):
    controls, status, _ = widget.children
    return {c.description: c for c in controls.children}, status, controls.children[-1]


def test_the_explorer_trains_live_when_clicked():
    settings = profiles.load("grokking", "ci")
    sliders, status, button = _parts(grokking_explorer(settings, initial=fake(5)))
    sliders["p (prime)"].value = 17
    sliders["epochs"].value = 200
    button.click()
    assert "95% train:" in status.value and "epochs/s" in status.value
    assert not button.disabled


def test_the_base_explorer_asks_subclasses_for_their_parts():
    with pytest.raises(NotImplementedError):
        Explorer(profiles.load("grokking", "ci"))


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
    settings = replace(settings, runs={name: replace(run, data=ModularCfg("add", 17, 0.5))
                                       for name, run in settings.runs.items()})
    sliders, status, button = _parts(embedding_explorer(settings, initial={"one_hot": fake(5)}))
    assert "95% train:" in status.value
    sliders["embedding"].value = "fourier"
    assert sliders["learning rate"].value == pytest.approx(settings.runs["fourier"].optim.lr)
    sliders["epochs"].value = 200
    button.click()
    assert "95% train:" in status.value and "epochs/s" in status.value


def test_the_xor_explorer_trains_normal_and_transferred():
    from grokbook.widgets import xor_explorer

    settings = replace(profiles.load("xor", "ci"), weak_epochs=50, m=64)
    sliders, status, button = _parts(xor_explorer(settings, initial=(fake(5), None, fake(2))))
    sliders["dimension p"].value = 100
    sliders["epochs"].value = 50
    button.click()
    assert "normal: 95% train:" in status.value and "after one step" in status.value


def test_the_transfer_explorer_trains_the_weak_model_then_both_targets():
    from grokbook.widgets import transfer_explorer

    settings = profiles.load("transfer", "ci")
    small = {"data__p": 17}
    settings = replace(settings, weak={t: replace(r, **small, budget__epochs=30)
                                       for t, r in settings.weak.items()},
                       target={t: replace(r, **small) for t, r in settings.target.items()},
                       scratch={t: replace(r, **small) for t, r in settings.scratch.items()})
    widget = transfer_explorer(settings, initial={"GrokTransfer": fake(5), "scratch": fake(5)})
    sliders, status, button = _parts(widget)
    assert status.value.startswith("GrokTransfer: 95% train:")
    sliders["task"].value = "mul"
    sliders["weak d_embed"].value = 3
    sliders["epochs"].value = 200
    button.click()
    assert "GrokTransfer: 95% train:" in status.value and "scratch: 95% train:" in status.value


def test_the_accelerator_race_trains_every_chosen_method():
    from grokbook.widgets import RACERS, accelerator_race

    settings = profiles.load("cross", "ci")
    tiny = {"data__p": 17, "model__d_model": 16, "model__n_heads": 2, "model__d_mlp": 32}
    settings = replace(settings, weak=replace(settings.weak, data__p=17, budget__epochs=30),
                       target=replace(settings.target, **tiny),
                       plain=replace(settings.plain, **tiny))
    sliders, status, button = _parts(accelerator_race(settings, initial={"plain": fake(5)}))
    assert status.value.startswith("plain: 95% train:")
    sliders["epochs"].value = 200
    button.click()
    for method in RACERS:
        assert f"{method}: 95% train:" in status.value
    sliders["methods"].value = ()
    button.click()
    assert "error" in status.value and "choose at least one" in status.value


def test_tuning_heatmaps_mark_censored_cells_and_the_chosen_one():
    from grokbook import tuning

    scores = tuning.scores()
    chosen = {m: tuning.best("cross", "book", "add", m) for m in ("plain", "GrokTransfer")}
    fig = plots.plot_tuning(scores, "cross", "book", "add", ("plain", "GrokTransfer"), chosen)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        texts = [t.get_text() for t in ax.texts]
        assert len(texts) == len(tuning.grid_lrs("cross")) * len(tuning.WEIGHT_DECAYS)
        assert any(t.startswith(">") for t in texts)  # a censored cell is a bound, not a number
        assert len(ax.patches) == 1  # the chosen cell's frame
    plt.close(fig)


def test_tuning_heatmaps_of_several_tasks_are_one_figure_a_row_per_task():
    from grokbook import tuning

    scores = tuning.scores()
    methods = ("plain", "GrokFast-EMA")
    chosen = {"add": {"plain": tuning.best("neuralgrok", "book", "add", "plain")},
              "sq_sub": {m: tuning.best("neuralgrok", "book", "sq_sub", m) for m in methods}}
    fig = plots.plot_tuning_rows(scores, "neuralgrok", "book", chosen, methods,
                                 titles={"add": "a + b", "sq_sub": "a^2 - b"})
    assert len(fig.axes) == 4
    frames = [len(ax.patches) for ax in fig.axes]
    assert frames == [1, 0, 1, 1]  # only the cells given are framed
    assert fig.axes[0].get_ylabel() == "a + b\nweight decay"
    assert fig.axes[2].get_ylabel() == "a^2 - b\nweight decay" and fig.axes[3].get_ylabel() == ""
    tops = [ax.collections[0].norm.vmax for ax in fig.axes]
    assert tops[0] == tops[1] and tops[2] == tops[3]  # one colour scale per row ...
    assert tops[0] != tops[2]  # ... each its own task's
    plt.close(fig)
    with pytest.raises(ValueError, match=r"frames \['TensorNorm'\], which are not among"):
        plots.plot_tuning_rows(scores, "neuralgrok", "book", {"add": {"TensorNorm": (0.01, 1)}},
                               methods)
    with pytest.raises(ValueError, match=r"titles lacks the tasks \['sq_sub'\]"):
        plots.plot_tuning_rows(scores, "neuralgrok", "book", chosen, methods,
                               titles={"add": "a + b"})
    with pytest.raises(ValueError, match="no book rows of chapter 'neuralgrok' on task 'x'"):
        plots.plot_tuning_rows(scores, "neuralgrok", "book", {"x": {}}, methods)
    with pytest.raises(ValueError, match="at least one task"):
        plots.plot_tuning_rows(scores, "neuralgrok", "book", {}, methods)


def test_seed_plot_shows_every_seed_and_the_count():
    from grokbook.stats import Censored

    fig, ax = plt.subplots()
    plots.plot_seed_epochs(ax, {"a": Censored((10.0, None, 30.0), (100.0,) * 3),
                                "b": Censored((5.0, 6.0), (50.0,) * 2)})
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == 5
    assert {t.get_text() for t in ax.texts} == {"2/3", "2/2"}
    xs = sorted(x for c in ax.collections for x, _ in c.get_offsets())
    assert xs == [5.0, 6.0, 10.0, 30.0, 100.0]  # the never-run at its budget
    colours = {tuple(colour) for c in ax.collections if len(c.get_offsets())
               for colour in c.get_facecolor()}
    assert {mpl.colors.to_rgba(plots.method_colour(m)) for m in "ab"} <= colours
    plt.close(fig)


def test_seed_plot_jitters_the_same_way_whatever_ran_before():
    """Seaborn jitters strip plots with NumPy's global generator: the figure fixes it for its
    own drawing, so the same data give the same picture, and leaves the generator as it was."""
    import numpy as np

    from grokbook.stats import Censored

    def offsets():
        fig, ax = plt.subplots()
        plots.plot_seed_epochs(ax, {"a": Censored((10.0, None, 30.0), (100.0,) * 3)})
        out = [c.get_offsets().tolist() for c in ax.collections]
        plt.close(fig)
        return out

    first = offsets()
    np.random.seed(123)  # noqa: NPY002 (the legacy generator is what seaborn uses)
    after_seed = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    assert offsets() == first
    assert np.random.random() == after_seed  # noqa: NPY002


def test_method_colours_are_stable_and_the_style_is_150_dpi():
    assert plots.method_colour("plain") == plots.method_colour("scratch")
    assert plots.method_colour("GrokTransfer") != plots.method_colour("plain")
    assert plots.method_colour("my method") == plots.method_colour("my method")
    assert plots.method_colour("my method") in plots.PALETTE
    plots.use_style()
    assert mpl.rcParams["figure.dpi"] == 150 and mpl.rcParams["savefig.dpi"] == 150


def test_the_explorer_figure_is_an_image_with_alt_text(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    grokking_explorer(profiles.load("grokking", "ci"), initial=fake(5))
    (image,) = shown
    page = image.data
    assert page.startswith('<img src="data:image/png;base64,')
    alt = page.split(' alt="', 1)[1].split('"', 1)[0]
    assert "against epoch" in alt and "95% train" in alt
