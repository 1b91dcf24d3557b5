"""Chapter 6's settings, its tuning rows and its widget: every method on every task from one
base run, tuned from the committed table on the same grid, a tuning cell that reproduces, and
the race widget."""

import math

import pytest
import torch

from grokbook import experiments, profiles, tuning
from grokbook.config import GrokFastCfg, replace
from grokbook.neuralgrok import NeuralGrokCfg, TensorNormCfg
from grokbook.profiles.neuralgrok import METHODS, PAPER_TABLE_1, TASKS


def test_every_method_is_the_base_run_with_its_transform_on_its_task():
    P = profiles.load("neuralgrok", "book", tuned=False)
    for task in TASKS:
        methods = P.methods(task)
        assert tuple(methods) == METHODS
        kinds = {name: type(cfg.grad_transform) for name, cfg in methods.items()}
        assert kinds == {"plain": type(None), "GrokFast-EMA": GrokFastCfg,
                         "GrokFast-MA": GrokFastCfg, "TensorNorm": TensorNormCfg,
                         "NeuralGrok": NeuralGrokCfg}
        for cfg in methods.values():
            assert cfg.data.op == task and cfg.model == P.run.model
            assert cfg.optim == P.run.optim  # before tuning
            assert cfg.budget == replace(P.run, budget__epochs=P.epochs(task)).budget
    assert P.neuralgrok.c == P.tensor_norm.c and P.neuralgrok.max_norm == P.tensor_norm.max_norm
    assert set(PAPER_TABLE_1) == set(TASKS)


def test_ci_shares_the_books_models_data_and_tuning_but_not_its_seeds():
    book, ci = (profiles.load("neuralgrok", name) for name in ("book", "ci"))
    assert ci.run.model == book.run.model and ci.run.data == book.run.data
    assert len(book.seeds) == 8 and len(ci.seeds) == 5
    assert set(ci.tuned_optim) <= set(book.tuned_optim)  # ci races three of the four tasks
    assert ci.tasks == book.tasks[:3] and book.tasks == TASKS
    assert tuning.table_profile("neuralgrok", "ci") == "book"


def test_changes_apply_after_tuning_and_bad_names_are_clear_errors():
    P = profiles.load("neuralgrok", "ci")
    cfg = P.method("add", "NeuralGrok", grad_transform=replace(P.neuralgrok, c=1.0),
                   budget__epochs=7)
    assert cfg.grad_transform.c == 1.0 and cfg.budget.epochs == 7
    assert cfg.optim == P.method("add", "NeuralGrok").optim
    with pytest.raises(ValueError, match="unknown task 'div'"):
        P.method("div", "plain")
    with pytest.raises(ValueError, match="unknown method 'Adam'"):
        P.method("add", "Adam")


def test_the_chapter_reads_every_methods_setting_from_the_table():
    for name in ("ci", "book"):
        P = profiles.load("neuralgrok", name)
        for task in P.tasks:
            for method in METHODS:
                optim = P.method(task, method).optim
                assert (optim.lr, optim.weight_decay) == tuning.best("neuralgrok", name, task,
                                                                     method)
    paper = profiles.load("neuralgrok", "paper")
    assert paper.tuned_optim == () and paper.method("add", "plain").optim.lr == 1e-3


def test_every_method_is_tuned_on_the_same_grid_budget_and_seeds():
    table = tuning.read()
    rows = table[table.chapter == "neuralgrok"]
    assert set(rows.profile) == {"book"}
    for (task, method), cell in rows.groupby(["task", "method"]):
        grid = len(tuning.grid_lrs("neuralgrok")) * len(tuning.WEIGHT_DECAYS)
        assert len(cell) == grid * 3, (task, method)
        assert set(cell.seed) == set(tuning.TUNING_SEEDS)
        assert set(cell.budget) == {tuning.tuning_budget("neuralgrok", "book", task)}
    assert {(t, m) for t, m in rows[["task", "method"]].itertuples(index=False)} == {
        (t, m) for t in TASKS for m in METHODS}


def test_an_offset_reaching_the_tuning_seeds_is_refused():
    with pytest.raises(ValueError, match="tuning seeds"):
        profiles.load("neuralgrok", "book", seed_offset=min(tuning.TUNING_SEEDS) - 5)
    shifted = profiles.load("neuralgrok", "ci", seed_offset=3)
    assert shifted.c_seeds == tuple(s + 3 for s in profiles.load("neuralgrok", "ci").c_seeds)


def test_a_neuralgrok_cell_of_the_table_reproduces():
    """The tuned NeuralGrok cell on a+b, re-run here (about a second): the same epoch to 95%
    test on the machine that made it (same torch, same kernels, one thread), within two
    evaluation intervals elsewhere."""
    table = tuning.read()
    lr, wd = tuning.best("neuralgrok", "book", "add", "NeuralGrok")
    row = table[(table.profile == "book") & (table.chapter == "neuralgrok")
                & (table.task == "add") & (table.method == "NeuralGrok") & (table.lr == lr)
                & (table.weight_decay == wd)].iloc[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = tuning.run_cell(tuning.Cell("book", "neuralgrok", "add", "NeuralGrok",
                                            float(lr), float(wd), int(row.seed)))
    finally:
        torch.set_num_threads(threads)
    assert not math.isnan(row.epoch_95) and again["epoch_95"] is not None
    same_machine = (row.torch == torch.__version__ and row.device == "cpu"
                    and row.cpu_capability == torch.backends.cpu.get_cpu_capability())
    eval_every = profiles.load("neuralgrok", "book").run.budget.eval_every
    assert abs(again["epoch_95"] - row.epoch_95) <= (0 if same_machine else 2 * eval_every)


def test_the_paper_profile_starts_on_a_cpu():
    P = profiles.load("neuralgrok", "paper")
    cfg = P.method("sq_sub", "NeuralGrok", budget__epochs=2, budget__eval_every=1)
    assert cfg.grad_transform.hidden == (128, 128) and cfg.data.p == 97
    run = experiments.train_run(cfg, 0, progress=False)
    assert run.history.epoch == [0, 1, 2]


def _parts(widget):
    controls_box, status, _ = widget.children
    *controls, button = controls_box.children
    return {c.description: c for c in controls}, status, button


def test_the_race_widget_retunes_on_a_change_and_trains_both_methods():
    from grokbook.widgets import neuralgrok_race

    P = profiles.load("neuralgrok", "ci")
    P = replace(P, run=replace(P.run, data__p=17))
    controls, status, button = _parts(neuralgrok_race(P))
    tuned = P.method("mul", "GrokFast-EMA").optim
    for name in ("method 1 learning rate", "method 2 learning rate"):  # never clipped
        slider = controls[name]
        assert slider.base ** slider.max >= max(tuning.grid_lrs("neuralgrok"))
    controls["task"].value = "mul"
    controls["method 1"].value = "GrokFast-EMA"
    assert controls["method 1 learning rate"].value == pytest.approx(tuned.lr)
    assert controls["method 1 weight decay"].value == pytest.approx(tuned.weight_decay)
    controls["epochs"].value = 200
    button.click()
    assert "GrokFast-EMA: 95% train:" in status.value
    assert "TensorNorm: 95% train:" in status.value
    controls["method 1"].value = "TensorNorm"
    button.click()
    assert "error" in status.value and "two different" in status.value
    book = profiles.load("neuralgrok", "book")
    controls = _parts(neuralgrok_race(book))[0]
    assert controls["epochs"].value == book.epochs("add") == 1500
    controls["task"].value = "sq_sub"
    assert controls["epochs"].value == book.epochs("sq_sub") == 3000  # twice as long
    controls["epochs"].value = 400
    controls["method 1"].value = "plain"
    assert controls["epochs"].value == 400  # a method's change keeps the epochs
