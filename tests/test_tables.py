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
