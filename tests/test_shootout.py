"""Chapter 8's shoot-out: its methods and their tuned settings, the bootstrap interval of a
censored median, the leaderboard's ranks with ties, the per-run table in four units, its CSV
round trip, FLOPs per epoch, and a small race end to end."""

import dataclasses
import math

import pandas as pd
import pytest

from grokbook import experiments, leaderboard, profiles, stats, tuning
from grokbook.bench import step_flops
from grokbook.config import FNNCfg, GrokFastCfg, ParityCfg, RunCfg, VectorFNNCfg, replace
from grokbook.history import History
from grokbook.neuralgrok import NeuralGrokCfg, TensorNormCfg
from grokbook.profiles.shootout import (
    CHAPTER5,
    DEFAULT_LR,
    LATER,
    METHODS,
    OWN,
    PARITY,
    SHARED,
    SMALL_INIT,
    TRANSFORMER,
    TRANSFORMER_OPS,
    tuned,
    tuned_cell,
    tuned_here,
)
from grokbook.tasks import OPERATIONS

# ---- the profile -----------------------------------------------------------------------------

def test_every_method_is_chapter_6s_run_changed_in_one_place():
    P = profiles.load("shootout", "book", tuned=False)
    assert P.tasks == ("add", "sub", "mul", "sq_sub", PARITY, TRANSFORMER)
    assert [P.epochs(t) for t in P.tasks[:-1]] == [1500, 1500, 1500, 3000, 1500] == [
        P.base.epochs(t) for t in P.tasks[:-2]] + [P.budget]
    for task in P.tasks[:-1]:
        methods = P.methods(task)
        assert tuple(methods) == METHODS
        base = P.parity if task == PARITY else replace(P.base.run, data__op=task,
                                                       budget__epochs=P.epochs(task))
        assert methods["plain"] == base
        assert methods["wd-only"].optim.lr == DEFAULT_LR
        assert methods["small-init"].model.init_scale == SMALL_INIT
        assert methods["small-init"].model.d_embed == base.model.d_embed
        kinds = {n: type(methods[n].grad_transform) for n in SHARED}
        assert kinds == {"plain": type(None), "GrokFast-EMA": GrokFastCfg,
                         "GrokFast-MA": GrokFastCfg, "TensorNorm": TensorNormCfg,
                         "NeuralGrok": NeuralGrokCfg}
        transfer = methods["GrokTransfer"]
        assert isinstance(transfer, experiments.GrokTransfer)
        assert transfer.target == base and transfer.weak.data == base.data
        if task == PARITY:
            assert transfer.weak == profiles.load("transfer", "book").parity_weak
        else:
            assert isinstance(transfer.weak.model, FNNCfg)
            assert transfer.weak.budget.stop_acc == 0.5
    assert P.method("mul", "GrokTransfer").weak.model.d_embed == 8


def test_parity_is_chapter_4s_network_with_the_races_optimizer_and_budget():
    P = profiles.load("shootout", "book", tuned=False)
    ch4 = profiles.load("transfer", "book", tuned=False).parity_scratch
    plain = P.method(PARITY, "plain")
    assert (plain.data, plain.model, plain.loss) == (ch4.data, ch4.model, ch4.loss)
    assert isinstance(plain.data, ParityCfg) and isinstance(plain.model, VectorFNNCfg)
    assert (plain.optim, plain.budget) == (P.base.run.optim, P.base.run.budget)
    assert P.label(PARITY) == "(40, 3)-parity" and P.title("add") == "a + b mod 59"
    assert tuned_here(PARITY) == tuple(m for m in METHODS if m != "wd-only")
    assert tuned_here("add") == OWN
    with pytest.raises(ValueError, match="unknown task 'xor'"):
        tuned_here("xor")


def test_the_transformer_task_is_chapter_5s_race_with_the_other_methods_added():
    """On the Transformer, plain training, GrokFast and GrokTransfer are chapter 5's runs (same
    configurations, so the run cache shares them); the other methods change its plain run in
    one place each and are tuned on chapter 5's grid and budget."""
    P = profiles.load("shootout", "book")
    ch5 = profiles.load("cross", "book")
    assert P.transformer == profiles.load("cross", "book", tuned=False)
    assert P.epochs(TRANSFORMER) == ch5.plain.budget.epochs
    assert P.title(TRANSFORMER) == "a + b mod 59, 1-layer Transformer"
    for method in CHAPTER5:
        assert P.method(TRANSFORMER, method) == ch5.methods()[method]
    plain = ch5.methods()["plain"]
    assert P.method(TRANSFORMER, "small-init") == replace(
        plain, model__init_scale=plain.model.init_scale * SMALL_INIT,
        **P.optim(TRANSFORMER, "small-init"))
    for method in ("TensorNorm", "NeuralGrok"):
        run = P.method(TRANSFORMER, method)
        assert run.grad_transform == P.base.transform(method)
        assert (run.data, run.model, run.budget) == (plain.data, plain.model, plain.budget)
    wd_only = P.method(TRANSFORMER, "wd-only")
    assert wd_only.optim.lr == DEFAULT_LR and wd_only.grad_transform is None
    assert (DEFAULT_LR, wd_only.optim.weight_decay) == tuning.best(
        "cross", "book", "add", "plain", lrs=(DEFAULT_LR,))
    assert set(tuned_here(TRANSFORMER)) == set(METHODS) - set(CHAPTER5) - {"wd-only"}
    assert tuning.grid_lrs("shootout", TRANSFORMER) == tuning.grid_lrs("cross")
    assert tuning.tuning_budget("shootout", "book", TRANSFORMER) == tuning.tuning_budget(
        "cross", "book", "add")
    for method in tuned_here(TRANSFORMER):
        cells = tuning.scores()
        cells = cells[(cells.chapter == "shootout") & (cells.task == TRANSFORMER)
                      & (cells.method == method)]
        assert sorted(set(cells.lr)) == list(tuning.grid_lrs("cross"))
        assert (cells.seeds == len(tuning.TUNING_SEEDS)).all()
    assert TRANSFORMER not in profiles.load("shootout", "ci").tasks
    assert TRANSFORMER not in profiles.load("shootout", "paper").tasks


def test_the_transformer_on_every_operation_changes_only_the_operation():
    """On a-b, a*b and a^2-b the Transformer's runs are chapter 5's with the operation
    changed (its weak FNN's too), every method but wd-only is tuned here, on chapter 5's grid
    and budget."""
    P = profiles.load("shootout", "book", tuned=False)
    assert set(TRANSFORMER_OPS) == {TRANSFORMER, *LATER} == set(tuning.TRANSFORMER_TASKS)
    assert not set(LATER) & set(P.tasks)
    for task in LATER:
        op = TRANSFORMER_OPS[task]
        assert P.title(task).startswith(OPERATIONS[op].formula)
        assert P.epochs(task) == P.epochs(TRANSFORMER)
        assert tuned_here(task) == tuple(m for m in METHODS if m != "wd-only")
        assert tuning.grid_lrs("shootout", task) == tuning.grid_lrs("cross")
        assert tuning.tuning_budget("shootout", "book", task) == tuning.tuning_budget(
            "cross", "book", "add")
        for method in METHODS:
            on_add, on_op = P.method(TRANSFORMER, method), P.method(task, method)
            if method == "GrokTransfer":
                assert on_op.weak == replace(on_add.weak, data__op=op)
                on_add, on_op = on_add.target, on_op.target
            assert on_op == replace(on_add, data__op=op)
    with pytest.raises(ValueError, match="unknown task 'transformer_div'"):
        P.method("transformer_div", "plain")


def test_tuning_can_be_restricted_to_tasks():
    cells = tuning.cells(("book",), ("shootout",), tasks=("transformer_sub",))
    assert {c.task for c in cells} == {"transformer_sub"}
    assert len(cells) == len(tuned_here("transformer_sub")) * len(
        tuning.grid_lrs("cross")) * len(tuning.WEIGHT_DECAYS) * len(tuning.TUNING_SEEDS)
    assert tuning.cells(("book",), ("shootout",), tasks=("nope",)) == []
    with pytest.raises(ValueError, match="tasks must be None or a tuple of task names"):
        tuning.cells(("book",), ("shootout",), tasks="transformer_sub")  # not a substring test


def test_on_the_other_operations_every_method_reads_this_chapters_rows(monkeypatch):
    asked = []
    monkeypatch.setattr(tuning, "best_cell", lambda *a, **k: asked.append((a, k)))
    for method in METHODS:
        tuned_cell("book", "transformer_sub", method)
    assert asked == [(("shootout", "book", "transformer_sub", "plain"),
                      {"lrs": (DEFAULT_LR,)}) if m == "wd-only"
                     else (("shootout", "book", "transformer_sub", m), {}) for m in METHODS]


def test_every_method_races_on_the_transformer(monkeypatch):
    monkeypatch.setenv("GROKBOOK_CACHE", "off")
    P = profiles.load("shootout", "ci")
    ch5 = P.transformer
    short = dataclasses.replace(ch5, plain=replace(ch5.plain, budget__epochs=20),
                                target=replace(ch5.target, budget__epochs=20),
                                weak=replace(ch5.weak, budget__epochs=20))
    small = dataclasses.replace(P, tasks=(TRANSFORMER,), seeds=(0,), transformer=short)
    table = leaderboard.shootout_table(small, progress=False)
    assert set(table.method) == set(METHODS) and set(table.task) == {TRANSFORMER}
    assert (table.epochs_budget == 20).all() and (table.gflop_budget > 0).all()
    assert table[table.method == "GrokTransfer"].iloc[0].weak_gflop > 0


def test_shared_methods_take_chapter_6s_tuning_and_the_new_ones_their_own():
    for name in ("ci", "book"):
        P = profiles.load("shootout", name)
        ch6 = profiles.load("neuralgrok", name)
        for task in (t for t in P.tasks if t != TRANSFORMER):
            for method in SHARED:
                if method not in tuned_here(task):
                    assert P.method(task, method).optim == ch6.method(task, method).optim
            for method in tuned_here(task):
                run = getattr(P.method(task, method), "target", P.method(task, method))
                assert (run.optim.lr, run.optim.weight_decay) == tuning.best(
                    "shootout", name, task, method)
            wd_only = P.method(task, "wd-only").optim
            assert wd_only.lr == DEFAULT_LR
            assert (DEFAULT_LR, wd_only.weight_decay) == tuning.best(
                "shootout" if task == PARITY else "neuralgrok", name, task, "plain",
                lrs=(DEFAULT_LR,))
    assert tuning.table_profile("shootout", "ci") == "book"
    paper = profiles.load("shootout", "paper")
    assert paper.tuned_optim == () and paper.base.run.model.kind == "transformer"
    assert tuned_cell("paper", "add", "plain") is None


def test_a_method_that_reaches_95_percent_in_no_cell_races_where_it_came_closest():
    """On a^2-b GrokTransfer's median tuning seed reaches 95% test in no cell: every cell
    ties on the censored median and the mean, and the tie-break by final test accuracy keeps
    it off the grid's smallest learning rate and weight decay, where the older rule put it."""
    cell = tuned_cell("book", "sq_sub", "GrokTransfer")
    assert cell.censored and cell.reached == 0
    scores = tuning.scores()
    same = scores[(scores.chapter == "shootout") & (scores.task == "sq_sub")
                  & (scores.method == "GrokTransfer")]
    assert (same["mean"] == cell["mean"]).all()  # a full tie before the final accuracy
    assert cell.final == same.final.max()
    assert (cell.lr, cell.weight_decay) != (min(tuning.grid_lrs("shootout")),
                                            min(tuning.WEIGHT_DECAYS))


def test_the_tuning_grid_of_the_chapter_holds_only_its_own_methods():
    cells = tuning.cells(("book",), ("shootout",))
    assert {c.method for c in cells if c.task not in (PARITY, *TRANSFORMER_OPS)} == set(OWN)
    assert {c.method for c in cells if c.task == PARITY} == set(METHODS) - {"wd-only"}
    assert {c.method for c in cells if c.task == TRANSFORMER} == set(tuned_here(TRANSFORMER))
    grid = len(tuning.grid_lrs("shootout")) * len(tuning.WEIGHT_DECAYS)
    grid_t = len(tuning.grid_lrs("cross")) * len(tuning.WEIGHT_DECAYS)
    assert len(cells) == ((len(OWN) * 4 + len(METHODS) - 1) * grid  # 4 operations, parity
                          + (len(tuned_here(TRANSFORMER)) + len(LATER) * (len(METHODS) - 1))
                          * grid_t
                          ) * 3
    raced = profiles.load("shootout", "book", tuned=False).tasks
    assert tuning.missing(tuning.read(), ("book",), ("shootout",), raced) == []


def test_restricting_the_learning_rate_must_stay_on_the_grid():
    with pytest.raises(ValueError, match="lrs must be learning rates of chapter neuralgrok's grid"):
        tuning.best("neuralgrok", "book", "add", "plain", lrs=(0.5,))
    with pytest.raises(ValueError, match="lrs"):
        tuning.best("neuralgrok", "book", "add", "plain", lrs=())


def test_bad_names_are_clear_errors_and_seeds_shift():
    P = profiles.load("shootout", "ci", seed_offset=7)
    assert P.seeds == tuple(range(7, 12))
    with pytest.raises(ValueError, match="unknown method 'Adam'"):
        P.method("add", "Adam")
    with pytest.raises(ValueError, match="unknown task 'div'"):
        P.method("div", "plain")


# ---- statistics --------------------------------------------------------------------------------

def test_median_interval_is_seeded_and_censored_where_never_runs_reach():
    data = stats.Censored((100, 120, 130, None, 110, 140, None, 90), (1000,) * 8)
    low, high = leaderboard.median_interval(data)
    assert leaderboard.median_interval(data) == (low, high)  # the same draws every time
    assert not low.censored and 90 <= low.value <= 120
    assert high.censored and high.value == 1000  # half the resamples can land on never-runs
    observed = stats.Censored((100, 110, 120, 130, 140), (1000,) * 5)
    low, high = leaderboard.median_interval(observed)
    assert not high.censored and 100 <= low.value <= 120 <= high.value <= 140
    same = leaderboard.median_interval(stats.Censored((7, 7, 7), (10,) * 3))
    assert same == (stats.Estimate(7.0), stats.Estimate(7.0))
    never = leaderboard.median_interval(stats.Censored((None, None), (10, 10)))
    assert never == (stats.Estimate(10, True), stats.Estimate(10, True))
    with pytest.raises(ValueError, match="confidence"):
        leaderboard.median_interval(data, confidence=1.5)
    with pytest.raises(ValueError, match="resamples"):
        leaderboard.median_interval(data, resamples=10)


def _table(values: dict[str, list], budget=1000.0, task="add") -> pd.DataFrame:
    rows = []
    for method, epochs in values.items():
        for seed, e in enumerate(epochs):
            row = {"task": task, "method": method, "seed": seed, "lr": 1e-3,
                   "weight_decay": 1.0, "reached": e is not None,
                   "weak_gflop": 0.0, "final_test_acc": 0.99 if e is not None else 0.02}
            for unit in leaderboard.UNITS:
                row[unit], row[f"{unit}_budget"] = e, budget
            rows.append(row)
    return leaderboard._typed(rows)


def test_ranks_are_shared_where_intervals_overlap():
    table = _table({"fast": [10, 11, 12, 13, 14, 10, 12, 11],
                    "close": [11, 12, 13, 14, 15, 12, 13, 12],
                    "slow": [100, 110, 120, 130, 140, 105, 115, 125],
                    "never": [None] * 8})
    ranked = leaderboard.board(table, "epochs")
    assert list(ranked.index) == ["fast", "close", "slow", "never"]
    assert list(ranked["rank"]) == [1, 1, 3, 4]
    assert ranked.loc["never", "median"] == stats.Estimate(1000.0, True)
    assert ranked.loc["fast", "k"] == 8 and ranked.loc["never", "k"] == 0
    shown = leaderboard.shown(ranked)
    assert shown.loc["never", "median"] == ">1000"
    assert shown.loc["slow", "reached 95%"] == "8 of 8"
    assert shown.loc["slow", "held it to the end"] == "8 of 8"


def test_the_board_counts_the_seeds_that_kept_95_percent_to_their_end():
    table = _table({"steady": [10, 20, 30], "lost": [10, 20, None]})
    table.loc[(table.method == "lost") & (table.seed == 0), "final_test_acc"] = 0.4
    ranked = leaderboard.board(table, "epochs")
    assert ranked.loc["steady", ["k", "held"]].tolist() == [3, 3]
    assert ranked.loc["lost", ["k", "held"]].tolist() == [2, 1]  # the cost still counts it
    assert ranked.loc["lost", "median"] == stats.Estimate(20.0)
    assert leaderboard.shown(ranked).loc["lost", "held it to the end"] == "1 of 3"


def test_board_refuses_mixed_tasks_and_unknown_units():
    table = pd.concat([_table({"a": [1, 2]}), _table({"a": [1, 2]}, task="mul")])
    with pytest.raises(ValueError, match="one task"):
        leaderboard.board(table)
    with pytest.raises(ValueError, match="unit must be one of"):
        leaderboard.board(_table({"a": [1, 2]}), "minutes")


def _run(epochs_to_95, budget=100, weak=None, seed=0, lr=1e-3, weight_decay=1.0):
    h = History(config={"epochs": budget})
    for epoch in range(0, budget + 1, 10):
        test = 1.0 if epochs_to_95 is not None and epoch >= epochs_to_95 else 0.1
        h.append(epoch, 0.1, 1.0 if epoch >= 10 else 0.5, 1.0, test, 1.0)
    h.seconds = budget / 10
    cfg = replace(RunCfg(), optim__lr=lr, optim__weight_decay=weight_decay)
    return experiments.Run(cfg, seed, h, None, "key", weak=weak)


def test_per_run_counts_four_units_and_the_weak_models_cost():
    weak = _run(None, budget=40)
    weak.history.config["steps"] = 40
    runs = {"plain": [_run(50), _run(None, seed=1)],
            "GrokTransfer": [_run(20, weak=weak, lr=3e-2, weight_decay=0.1)]}
    flops = {"plain": (1e9, 0.0), "GrokTransfer": (1e9, 0.5e9)}
    table = leaderboard.per_run(runs, flops, "add")
    plain, never, transfer = (table.iloc[i] for i in range(3))
    assert (plain.epochs, plain.time_gap, plain.gflop) == (50, 40, 50)
    assert not never.reached
    assert math.isnan(never.epochs) and never.epochs_budget == 100
    assert never.gflop_budget == 100 and math.isnan(never.gflop)
    assert transfer.weak_gflop == 20 and transfer.gflop == 20 + 20
    assert transfer.seconds_budget == 10 + 4
    assert (plain.weak_stopped, transfer.weak_stopped) == ("", weak.history.stopped)
    assert plain.final_test_acc == 1.0 and never.final_test_acc == pytest.approx(0.1)
    assert (plain.lr, plain.weight_decay) == (1e-3, 1.0)  # the setting each run trained at
    assert (transfer.lr, transfer.weight_decay) == (3e-2, 0.1)
    with pytest.raises(ValueError, match="flops lacks"):
        leaderboard.per_run(runs, {"plain": (1.0, 0.0)})


def test_tables_round_trip_through_csv_and_bad_ones_are_refused(tmp_path):
    table = _table({"a": [10, None, 30], "b": [1, 2, 3]})
    path = leaderboard.write(table, tmp_path / "s.csv", "grokbook shootout --profile ci")
    assert path.read_text().splitlines()[1] == "# made by: grokbook shootout --profile ci"
    pd.testing.assert_frame_equal(leaderboard.read(path), table)
    assert leaderboard.machine_of(path) is None  # not recorded
    path = leaderboard.write(table, tmp_path / "m.csv", "grokbook shootout", "CPU x: y")
    assert leaderboard.machine_of(path) == "CPU x: y"  # a colon in the value is kept
    pd.testing.assert_frame_equal(leaderboard.read(path), table)
    table.drop(columns=["gflop"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="gflop"):
        leaderboard.read(tmp_path / "bad.csv")
    pd.concat([table, table]).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(ValueError, match="appears twice"):
        leaderboard.read(tmp_path / "twice.csv")
    table.drop(columns=["weak_stopped"]).to_csv(tmp_path / "older.csv", index=False)
    with pytest.raises(ValueError, match=r"\['weak_stopped'\] are missing .* made again"):
        leaderboard.read(tmp_path / "older.csv")  # an older table is refused, not patched
    table.assign(weak_stopped="tired").to_csv(tmp_path / "stop.csv", index=False)
    with pytest.raises(ValueError, match="weak_stopped must be empty or one of"):
        leaderboard.read(tmp_path / "stop.csv")
    for bad in (1.5, float("nan")):
        table.assign(final_test_acc=bad).to_csv(tmp_path / "acc.csv", index=False)
        with pytest.raises(ValueError, match="final_test_acc must be an accuracy between 0 "
                                             "and 1"):
            leaderboard.read(tmp_path / "acc.csv")
    table.drop(columns=["final_test_acc"]).to_csv(tmp_path / "noacc.csv", index=False)
    with pytest.raises(ValueError, match="final_test_acc"):
        leaderboard.read(tmp_path / "noacc.csv")
    table.drop(columns=["lr"]).to_csv(tmp_path / "nolr.csv", index=False)
    with pytest.raises(ValueError, match=r"columns \['lr'\] are missing"):
        leaderboard.read(tmp_path / "nolr.csv")
    for column, bad, rule in (("lr", 0.0, "> 0"), ("lr", float("nan"), "> 0"),
                              ("weight_decay", -0.1, ">= 0"),
                              ("weight_decay", float("inf"), ">= 0")):
        table.assign(**{column: bad}).to_csv(tmp_path / "setting.csv", index=False)
        with pytest.raises(ValueError, match=f"{column} must be a finite number {rule}"):
            leaderboard.read(tmp_path / "setting.csv")
    two = table.copy()
    two.loc[two.index[-1], "weight_decay"] = 3.0  # method b, seed 2: another setting
    two.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(ValueError, match="b on add raced at more than one"):
        leaderboard.read(tmp_path / "two.csv")


def test_the_committed_table_is_the_book_race():
    committed = leaderboard.read(leaderboard.COMMITTED)
    P = profiles.load("shootout", "book")
    assert set(committed.task) == set(P.tasks) and set(committed.method) == set(METHODS)
    assert sorted(set(committed.seed)) == list(P.seeds)
    assert len(committed) == len(P.tasks) * len(METHODS) * len(P.seeds)
    transfer = committed.method == "GrokTransfer"
    assert set(committed.weak_stopped[transfer]) <= {"target", "budget"}
    assert (committed.weak_stopped[~transfer] == "").all()
    assert (committed.final_test_acc[~committed.reached] < 0.95).all()  # never got there
    assert leaderboard.machine_of(leaderboard.COMMITTED).startswith(("CPU ", "GPU "))
    raced = committed.groupby(["task", "method"])[["lr", "weight_decay"]].first()
    for (task, method), setting in raced.iterrows():  # where the tuning table says
        optim = _target(P.method(task, method)).optim
        assert tuple(setting) == (optim.lr, optim.weight_decay), (task, method)


def _target(recipe):
    """The network a recipe trains to the end: GrokTransfer's target, else the run itself."""
    return recipe.target if isinstance(recipe, experiments.GrokTransfer) else recipe


def test_each_raced_operation_of_the_transformer_has_its_own_committed_book_race():
    """The Transformer's other operations are raced one at a time once their tuning is
    complete, each into a table of its own with the command that made it on top, every method
    on the book's seeds; the page reads them and does not re-run them."""
    P = profiles.load("shootout", "book", tuned=False)
    table = tuning.read()
    for task in LATER:
        path = leaderboard.committed(task)
        assert path.name == f"shootout_book_{task}.csv"
        if not path.exists():
            continue  # not raced yet
        assert tuning.missing(table, tasks=(task,)) == []
        made_by = f"# made by: grokbook shootout --profile book --task {task}"
        assert path.read_text().splitlines()[1] == made_by
        assert leaderboard.machine_of(path).startswith(("CPU ", "GPU "))
        race = leaderboard.read(path)
        assert set(race.task) == {task} and set(race.method) == set(METHODS)
        assert sorted(set(race.seed)) == list(P.seeds)
        assert len(race) == len(METHODS) * len(P.seeds)
        transfer = race.method == "GrokTransfer"
        assert set(race.weak_stopped[transfer]) <= {"target", "budget"}
        assert (race.weak_stopped[~transfer] == "").all()
        assert (race.epochs_budget == P.epochs(task)).all()
        assert (race.final_test_acc[~race.reached] < 0.95).all()  # never got there
        raced = race.groupby("method")[["lr", "weight_decay"]].first()
        chosen = tuned(dataclasses.replace(P, tasks=(task,)))  # as grokbook shootout --task
        for method in METHODS:  # the race trained each method where the tuning table says
            optim = _target(chosen.method(task, method)).optim
            assert tuple(raced.loc[method]) == (optim.lr, optim.weight_decay), method
    assert leaderboard.committed() == leaderboard.COMMITTED
    with pytest.raises(ValueError, match="task must be one of"):
        leaderboard.committed(TRANSFORMER)


def test_the_cost_gap_scatter_rings_markers_that_would_hide_one_another():
    """Medians of one task at one point are drawn as concentric rings, the first smallest and
    on top; a marker elsewhere, or of another task at the same point, keeps the plain size."""
    import matplotlib.pyplot as plt

    from grokbook import plots

    committed = leaderboard.read(leaderboard.COMMITTED)
    plain = committed[(committed.task == "add") & (committed.method == "plain")]
    twin = plain.assign(method="GrokFast-MA")  # the same runs under another name
    other_task = plain.assign(task="sub")
    far = plain.assign(method="wd-only", gflop=plain.gflop * 10, gflop_budget=1e6)
    table = pd.concat([plain, twin, other_task, far], ignore_index=True)
    fig, ax = plt.subplots()
    plots.plot_cost_gap(ax, table, "gflop")
    sizes = [float(c.get_sizes()[0]) for c in ax.collections]
    orders = [c.get_zorder() for c in ax.collections]
    plt.close(fig)
    assert sizes == [45, 45 * 2.2, 45, 45]
    assert orders[1] < orders[0]
    # a chain: B near A, C near B but not near A; C still rings B
    near = plain.assign(method="TensorNorm", gflop=plain.gflop * 1.06)
    nearer = plain.assign(method="NeuralGrok", gflop=plain.gflop * 1.12)
    fig, ax = plt.subplots()
    plots.plot_cost_gap(ax, pd.concat([plain, near, nearer], ignore_index=True), "gflop")
    sizes = [float(c.get_sizes()[0]) for c in ax.collections]
    plt.close(fig)
    assert sizes == pytest.approx([45, 45 * 2.2, 45 * 3.4])


def test_the_cost_gap_scatter_names_each_task_and_refuses_more_tasks_than_shapes():
    import matplotlib.pyplot as plt

    from grokbook import plots

    committed = leaderboard.read(leaderboard.COMMITTED)
    plain = committed[(committed.task == "add") & (committed.method == "plain")]
    two = pd.concat([plain, plain.assign(task=TRANSFORMER)], ignore_index=True)
    fig, ax = plt.subplots()
    plots.plot_cost_gap(ax, two, "gflop", labels={TRANSFORMER: "a + b, Transformer"})
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    assert names == ["plain", "a + b", "a + b, Transformer"]
    many = pd.concat([plain.assign(task=f"t{i}") for i in range(len(plots.TASK_MARKERS) + 1)])
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="at most 8 tasks"):
        plots.plot_cost_gap(ax, many, "gflop")
    plt.close(fig)


# ---- FLOPs and a race --------------------------------------------------------------------------

def test_epoch_flops_is_one_full_batch_step_and_counts_the_weak_model():
    P = profiles.load("shootout", "ci")
    plain = P.method("add", "plain")
    model = experiments.build_model(plain, 0)
    data = experiments.make_data(plain.data, 0)
    assert leaderboard.epoch_flops(plain) == (step_flops(model, data), 0.0)
    run_flops, weak_flops = leaderboard.epoch_flops(P.method("add", "GrokTransfer"))
    assert run_flops > step_flops(model, data)  # A @ B costs a product more
    assert 0 < weak_flops < run_flops / 5
    ng, _ = leaderboard.epoch_flops(P.method("add", "NeuralGrok"))
    assert ng > 0.9 * step_flops(model, data)  # a smaller inner split, plus the amplifier
    with pytest.raises(ValueError, match="RunCfg or a GrokTransfer"):
        leaderboard.epoch_flops("plain")


def test_a_small_race_end_to_end(monkeypatch):
    monkeypatch.setenv("GROKBOOK_CACHE", "off")
    P = profiles.load("shootout", "ci")
    short = dataclasses.replace(P, seeds=(0, 1), base=replace(P.base, run=replace(
        P.base.run, budget__epochs=30)))
    table = leaderboard.shootout_table(short, progress=False)
    assert len(table) == len(METHODS) * 2
    assert set(table.method) == set(METHODS) and set(table.seed) == {0, 1}
    assert (table.epochs_budget == 30).all()
    transfer = table[table.method == "GrokTransfer"]
    assert (transfer.weak_gflop > 0).all() and (table[table.method == "plain"].weak_gflop
                                                == 0).all()
    again = leaderboard.shootout_table(short, progress=False)
    pd.testing.assert_frame_equal(table.drop(columns=["seconds", "seconds_budget"]),
                                  again.drop(columns=["seconds", "seconds_budget"]))
    ranked = leaderboard.board(table, "epochs")
    assert set(ranked.index) == set(METHODS) and ranked["rank"].min() == 1


def test_every_method_races_on_parity(monkeypatch):
    """The ci profile races a+b only: every method on a small parity (its own network, a
    logistic loss, a weak model with a 40 x 16 first layer) must still train and be counted."""
    monkeypatch.setenv("GROKBOOK_CACHE", "off")
    P = profiles.load("shootout", "ci")
    short = {"budget__epochs": 20, "data__n_train": 200, "data__n_test": 200}
    small = dataclasses.replace(P, tasks=(PARITY,), seeds=(0,),
                                parity=replace(P.parity, **short),
                                parity_weak=replace(P.parity_weak, **short))
    table = leaderboard.shootout_table(small, progress=False)
    assert set(table.method) == set(METHODS) and set(table.task) == {PARITY}
    assert (table.epochs_budget == 20).all() and (table.gflop_budget > 0).all()
    transfer = table[table.method == "GrokTransfer"].iloc[0]
    assert transfer.weak_gflop > 0


def test_the_leaderboard_widget_reranks_without_training():
    pytest.importorskip("ipywidgets")
    from grokbook.widgets import LeaderboardExplorer

    table = _table({"fast": [10, 11, 12], "slow": [100, 110, None]})
    explorer = LeaderboardExplorer(None, table)
    assert "rank 1: fast" in explorer.status.value
    explorer.controls["unit"].value = "time_gap"
    assert "rank 1" in explorer.status.value
    with pytest.raises(ValueError, match="table of runs"):
        LeaderboardExplorer(None, table.iloc[:0])
    named = LeaderboardExplorer(profiles.load("shootout", "ci"),
                                pd.concat([table, table.assign(task=TRANSFORMER)]))
    assert named.controls["task"].options == (("a + b", "add"),
                                              ("a + b, Transformer", TRANSFORMER))


def test_the_shootout_command_writes_the_table_with_the_command_on_top(tmp_path, monkeypatch,
                                                                      capsys):
    from grokbook import cli

    seen = {}

    def fake_table(P, *, workers, scheduler, progress):
        seen.update(name=P.name, seeds=P.seeds, workers=workers, scheduler=scheduler)
        return _table({"plain": [10, 20], "wd-only": [None, 40]})

    real_table = leaderboard.shootout_table
    monkeypatch.setattr(leaderboard, "shootout_table", fake_table)
    out = tmp_path / "race.csv"
    assert cli.main(["shootout", "--profile", "ci", "--seed-offset", "7", "--workers", "0",
                     "--quiet", "--out", str(out)]) == 0
    assert seen == {"name": "ci", "seeds": tuple(range(7, 12)), "workers": 0,
                    "scheduler": None}
    assert "# made by: grokbook shootout --profile ci --seed-offset 7" in out.read_text()
    assert len(leaderboard.read(out)) == 4 and "4 runs" in capsys.readouterr().out
    assert leaderboard.machine_of(out) == leaderboard.this_machine()  # the line after it
    assert out.read_text().splitlines()[2] == f"# machine: {leaderboard.this_machine()}"
    assert cli.main(["shootout", "--profile", "ci", "--scheduler", "tcp://10.0.0.1:8786",
                     "--quiet", "--out", str(out)]) == 0
    assert leaderboard.machine_of(out) == "the Dask cluster at tcp://10.0.0.1:8786"
    # The real race: a bad scheduler is refused before any run trains.
    monkeypatch.setattr(leaderboard, "shootout_table", real_table)
    assert cli.main(["shootout", "--profile", "ci", "--scheduler", "localhost:8786",
                     "--quiet", "--out", str(tmp_path / "never.csv")]) == 2
    assert "scheduler must be a Dask address" in capsys.readouterr().err
    assert not (tmp_path / "never.csv").exists()


def test_the_shootout_command_can_race_chosen_tasks(tmp_path, monkeypatch, capsys):
    from grokbook import cli

    seen = {}

    def fake_table(P, *, workers, scheduler, progress):
        seen.update(tasks=P.tasks, optim=P.tuned_optim, seeds=P.seeds)
        return _table({"plain": [10, 20]})

    monkeypatch.setattr(leaderboard, "shootout_table", fake_table)
    out = tmp_path / "race.csv"
    assert cli.main(["shootout", "--profile", "book", "--seed-offset", "50", "--task", "sub",
                     "--task", PARITY, "--workers", "0", "--quiet", "--out", str(out)]) == 0
    assert seen["tasks"] == ("sub", PARITY) and seen["seeds"] == tuple(range(50, 58))
    book = profiles.load("shootout", "book")
    assert set(seen["optim"]) == {o for o in book.tuned_optim if o[0] in ("sub", PARITY)}
    assert "--profile book --seed-offset 50 --task sub --task parity" in out.read_text()
    never = str(tmp_path / "never.csv")
    with pytest.raises(SystemExit, match="--task: unknown tasks div at profile book"):
        cli.main(["shootout", "--task", "div", "--out", never])
    with pytest.raises(SystemExit, match="unknown tasks transformer at profile paper"):
        cli.main(["shootout", "--profile", "paper", "--task", TRANSFORMER, "--out", never])
    def unfinished(*args, **kwargs):
        raise ValueError("the tuning table lacks cells of plain on transformer_sub")

    monkeypatch.setattr(tuning, "best_cell", unfinished)
    with pytest.raises(SystemExit, match="finish it first with grokbook tune --profile book "
                                         "--chapter shootout --task transformer_sub"):
        cli.main(["shootout", "--task", "transformer_sub", "--out", never])
    assert not (tmp_path / "never.csv").exists()


def test_the_tune_command_refuses_a_task_the_chapters_do_not_tune(tmp_path):
    from grokbook import cli

    with pytest.raises(SystemExit, match="no tuning cells of div in the chosen chapters"):
        cli.main(["tune", "--chapter", "shootout", "--task", "div",
                  "--table", str(tmp_path / "t.csv")])
    # chapter 8 at ci is tuned from the book's rows: it has no cells of its own
    with pytest.raises(SystemExit, match="no tuning cells of transformer_sub"):
        cli.main(["tune", "--profile", "ci", "--chapter", "shootout", "--task",
                  "transformer_sub", "--table", str(tmp_path / "t.csv")])
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.slow
def test_the_paper_profile_starts_on_a_cpu(monkeypatch):
    """Every method at the paper profile (chapter 6's 2-layer Transformer on mod 97, the
    reference's (128, 128) amplifier), two epochs each, its FLOPs counted. The networks are
    the paper's; a tenth of the table trains them, which is enough to show that they start."""
    monkeypatch.setenv("GROKBOOK_CACHE", "off")
    P = profiles.load("shootout", "paper")
    two = {"budget__epochs": 2, "budget__eval_every": 1}
    short = dataclasses.replace(P, tasks=("add",), seeds=(0,),
                                base=replace(P.base, run=replace(P.base.run, **two,
                                                                 data__frac=0.1)),
                                weak=replace(P.weak, **two))
    table = leaderboard.shootout_table(short, progress=False)
    assert set(table.method) == set(METHODS) and (table.epochs_budget == 2).all()
    assert P.base.run.data.p == 97 and P.base.neuralgrok.hidden == (128, 128)
    transfer = short.method("add", "GrokTransfer")
    assert transfer.target.model.kind == "transformer" and transfer.weak.data.p == 97
