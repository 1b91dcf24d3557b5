import pytest

from grokbook import tables
from grokbook.history import History


def _run(train_at, test_at, epochs=100):
    history = History(config={"epochs": epochs})
    for epoch in range(0, epochs + 1, 10):
        train = float(train_at is not None and epoch >= train_at)
        test = float(test_at is not None and epoch >= test_at)
        history.append(epoch, 1 - train, train, 1 - test, test, 1.0)
    return history


def test_seeds_table_counts_medians_and_never_runs():
    table = tables.seeds_table({"fast": [_run(10, 20), _run(10, 40), _run(10, 30)],
                                "slow": [_run(10, None), _run(20, 90), _run(10, None)]})
    assert list(table.index) == ["fast", "slow"] and table.index.name == "method"
    fast, slow = table.loc["fast"], table.loc["slow"]
    assert fast["reached 95% test"] == "3/3" and fast["median epochs"] == "30"
    assert fast["epochs per seed"] == "20, 40, 30" and fast["time gap per seed"] == "10, 30, 20"
    assert slow["reached 95% test"] == "1/3" and slow["median epochs"].startswith(">")
    assert slow["epochs per seed"] == "never, 90, never"
    assert "median time gap" not in tables.seeds_table({"x": [_run(10, 20)]}, time_gap=False)


def test_tuned_cells_lists_each_methods_best_cell():
    from grokbook import tuning

    table = tables.tuned_cells("transfer", ("book", "ci"), ("add", "mul"),
                               ("scratch", "GrokTransfer"))
    assert len(table) == 8
    row = table.loc[("ci", "mul", "scratch")]
    assert (row.lr, row["weight decay"]) == tuning.best("transfer", "ci", "mul", "scratch")
    assert row.budget == tuning.BUDGETS[("transfer", "ci")]
    assert row["tuning seeds reached"].endswith(f"/{len(tuning.TUNING_SEEDS)}")
    assert set(table["lr at the grid's edge"]) <= {"", "largest", "smallest"}
    assert tuning.grid_edge(max(tuning.LRS), tuning.grid_lrs("neuralgrok")) == ""
    assert tuning.grid_edge(1.0, tuning.grid_lrs("neuralgrok")) == "largest"
    assert tuning.grid_edge(1e-3, tuning.grid_lrs("neuralgrok")) == "smallest"
    assert tuning.grid_edge(1e-3, tuning.grid_lrs("cross")) == ""
    assert tuning.grid_edge(3e-4, tuning.grid_lrs("cross")) == "smallest"
    note = tuning.edge_note("cross", "book", ("add",), "Why.")
    assert note.endswith(" Why.") and "goes on to 0.1 and down to 0.0003" in note
    # Each grid extended beyond LRS: what the extension changed, counted from the table.
    for chapter, tasks in (("neuralgrok", ("add", "sub", "mul")),
                           ("transfer", ("add", "mul", "digits")), ("cross", ("add",))):
        note = tuning.edge_note(chapter, "book", tasks)
        before, tuned = tuning.edge_counts(chapter, "book", tasks, tuning.LRS)
        assert f"{before} of the {tuned} tuned cells above sat on the smallest or the " \
            f"largest" in note and f"goes on to {max(tuning.grid_lrs(chapter))}" in note
        assert ("and down to" in note) == (chapter == "cross")  # only chapter 5 goes below
        moved = sum(tuning.best(chapter, "book", t, m)
                    != tuning.best(chapter, "book", t, m, lrs=tuning.LRS)
                    for t, m in tuning.methods(chapter, "book") if t in tasks)
        assert (f"The extension moved {moved} of the {tuned} best cells" in note if moved
                else "The extension moved no best cell." in note)
        # chapter 6's extension moved best cells; chapters 4 and 5's only runners-up
        assert moved > 0 if chapter == "neuralgrok" else moved == 0
    assert "nothing is tuned" in tuning.edge_note("transfer", "paper", ("add",), "Why.")


class _Snapshot:
    """A GrokTransfer run as snapshot_table reads it: the target's history and its weak run."""

    def __init__(self, weak_acc, train_at, test_at, epochs=100):
        weak = History(config={"epochs": 50})
        weak.append(50, 1.0, 0.5, 1.0, weak_acc, 1.0)
        self.weak = type("WeakRun", (), {"history": weak})()
        self.history = _run(train_at, test_at, epochs)


def test_snapshot_tables_count_gaps_and_rank_correlation():
    runs = {(0, 100): _Snapshot(0.01, 10, None), (1, 100): _Snapshot(0.02, 10, 90),
            (0, 200): _Snapshot(0.4, 10, 40), (1, 200): _Snapshot(0.6, 10, 20)}
    table = tables.snapshot_table(runs)
    assert list(table["weak epochs"]) == [100, 100, 200, 200]
    assert list(table.reached) == [False, True, True, True]
    assert table["time gap"].isna().tolist() == [True, False, False, False]
    gaps = tables.snapshot_gaps(table)
    assert gaps[100].values == (None, 80) and gaps[200].values == (30, 10)
    summary = tables.snapshot_summary(table)
    assert summary.loc[100, "targets that reached 95% test"] == "1/2"
    assert summary.loc[100, "median time gap"].startswith(">")
    assert summary.loc[200, "time gap per seed"] == "30, 10"
    rho, p_value = tables.snapshot_correlation(table)
    # more accuracy, shorter gap; a never-run ranked last
    assert rho == pytest.approx(-1.0) and 0 <= p_value <= 1
    text = tables.snapshot_findings(table)
    assert "on 2 seeds" in text and "after 200 epochs" in text and "-1.00" in text
    flipped = tables.snapshot_table({(0, 100): _Snapshot(0.1, 10, 20),
                                     (0, 200): _Snapshot(0.9, 10, None)})
    assert tables.snapshot_correlation(flipped)[0] == pytest.approx(1.0)  # it can go up too


def test_plot_snapshots_draws_never_runs_on_the_budget_line():
    import matplotlib.pyplot as plt

    from grokbook import plots

    table = tables.snapshot_table({(0, 100): _Snapshot(0.01, 10, None),
                                   (0, 200): _Snapshot(0.5, 10, 30)})
    fig = plots.plot_snapshots(table)
    weak_ax, gap_ax = fig.axes
    assert len(weak_ax.lines) == 1  # one seed
    never = [c for c in gap_ax.collections if len(c.get_offsets())
             and c.get_offsets()[0][1] == 100]
    assert len(never) == 1 and never[0].get_offsets()[0][0] == 0.01
    plt.close(fig)
