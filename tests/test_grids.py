"""grokbook.grids and `grokbook sweep`: a grid of runs into a table, resumable, on Dask."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from grokbook import grids
from grokbook.cli import main

TINY = {"p": 11, "frac": 0.6, "epochs": 30, "wd": [0.3, 1.0], "lr": "1e-2,3e-2", "seeds": "0-1"}


def test_values_ranges_and_defaults():
    assert grids.parse_values("seeds", "0-2,5") == [0, 1, 2, 5]
    assert grids.parse_values("lr", "1e-3, 1e-2") == [1e-3, 1e-2]
    grid = grids.grid_of(TINY)
    assert grid["wd"] == [0.3, 1.0] and grid["seeds"] == [0, 1] and grid["task"] == ["add"]
    assert len(grids.cells(grid)) == 8


@pytest.mark.parametrize("settings, message", [
    ({"learning_rate": 1}, "unknown sweep setting"),
    ({"lr": "fast"}, "lr must be float"),
    ({"seeds": "a-b"}, "seeds must be integers"),
    ({"wd": [1, 1.0]}, "wd lists a value twice"),
    ({"model": "cnn"}, "model must be one of fnn, transformer"),
    ({"task": "mul", "p": 12}, "must be prime"),
    ({"lr": -1}, "lr must be"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        grids.cells(grids.grid_of(settings))


def test_a_rerun_trains_only_the_missing_cells(tmp_path):
    out = tmp_path / "sweep.csv"
    grid = grids.grid_of(TINY)
    first = grids.sweep(grid, out, workers=0, progress=False)
    assert first["trained"] == 8 and not first["failed"]
    table = first["table"]
    assert list(table.columns) == list(grids.COLUMNS) and len(table) == 8
    assert out.read_text().startswith("# grokbook sweep table")
    assert grids.sweep(grid, out, workers=0, progress=False)["trained"] == 0
    kept = table[table.seed == 0]
    grids.write(kept.to_dict("records"), out, "test")
    again = grids.sweep(grid, out, workers=0, progress=False)
    assert again["trained"] == 4
    pd.testing.assert_frame_equal(again["table"][again["table"].seed == 0].reset_index(drop=True),
                                  kept.reset_index(drop=True))


def _fails_on_seed_one(cell):
    if cell["seed"] == 1:
        raise RuntimeError("boom")
    return grids.run_cell(cell)


def test_a_failing_cell_is_reported_and_the_others_finish(tmp_path):
    result = grids.sweep(grids.grid_of({**TINY, "wd": 1.0, "lr": 1e-2}), tmp_path / "t.csv",
                         workers=0, progress=False, run=_fails_on_seed_one)
    assert result["trained"] == 1 and len(result["table"]) == 1
    assert len(result["failed"]) == 1 and "boom" in str(result["failed"][0])
    assert "'seed': 1" in str(result["failed"][0])


def test_the_cli_reads_a_yaml_file_and_flags_override_it(tmp_path, capsys):
    config = tmp_path / "grid.yaml"
    config.write_text("p: 11\nfrac: 0.6\nepochs: 20\nlr: [0.01, 0.03]\nseeds: 0-1\n")
    out = tmp_path / "t.csv"
    assert main(["sweep", "--config", str(config), "--lr", "0.01", "--workers", "0",
                 "--out", str(out), "--quiet"]) == 0
    assert len(grids.read(out)) == 2 and set(grids.read(out).lr) == {0.01}
    assert "--lr 0.01 " in out.read_text().splitlines()[1]
    config.write_text("- 1\n- 2\n")
    assert main(["sweep", "--config", str(config), "--out", str(out)]) == 2
    assert "a sweep file must be a mapping" in capsys.readouterr().err


def test_a_sweep_killed_midway_on_a_two_worker_cluster_resumes(tmp_path):
    """2 x 2 grid x 2 seeds on a LocalCluster of 2 workers: kill the whole sweep once the
    table holds a row, run the same command again: the kept rows stay as they were and only
    the missing cells are trained."""
    out = tmp_path / "sweep.csv"
    flags = ["--p", "23", "--frac", "0.5", "--epochs", "300", "--stop-acc", "0",
             "--lr", "1e-2,3e-2", "--wd", "0.3,1", "--seeds", "0-1", "--workers", "2",
             "--stack", "1", "--out", str(out), "--quiet"]
    env = {**os.environ, "GROKBOOK_CACHE": "off"}
    cli = "import sys; from grokbook.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", cli, "sweep", *flags], env=env,
                               start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and len(grids.read(out)) >= 1:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sweep ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = grids.read(out)
    assert 1 <= len(before) <= 8
    result = grids.sweep(grids.grid_of({"p": 23, "frac": 0.5, "epochs": 300, "stop_acc": 0,
                                        "lr": [1e-2, 3e-2], "wd": [0.3, 1.0],
                                        "seeds": [0, 1]}),
                         out, workers=2, progress=False)
    assert result["trained"] == 8 - len(before) and len(result["table"]) == 8
    def seconds(table):
        return {grids._key(row): float(row["seconds"]) for row in table.to_dict("records")}

    after = seconds(result["table"])  # the rows of the killed run are kept as they were
    assert all(after[key] == value for key, value in seconds(before).items())


def test_a_stacked_sweep_measures_what_the_cells_measure_alone(tmp_path):
    """Cells equal but for lr, weight decay and seed train as stacks; on one thread each
    member is its run alone to float32 rounding, so every measured epoch agrees with a sweep of
    single runs (this tiny grid has no run at its tipping point, where rounding could move an
    epoch by an evaluation); only the seconds (the stack's, shared out by steps) and the stack
    column differ."""
    import torch

    grid = grids.grid_of({**TINY, "epochs": 60, "stop_acc": 0.9})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = grids.sweep(grid, tmp_path / "alone.csv", workers=0, progress=False, stack=1)
        stacked = grids.sweep(grid, tmp_path / "stacked.csv", workers=0, progress=False,
                              stack=3)
    finally:
        torch.set_num_threads(threads)
    assert stacked["trained"] == 8 and not stacked["failed"]
    assert sorted(stacked["table"]["stack"]) == [2, 2, 3, 3, 3, 3, 3, 3]  # 8 cells: 3 + 3 + 2
    assert set(alone["table"]["stack"]) == {1}
    same = [c for c in grids.COLUMNS if c not in ("seconds", "stack")]
    pd.testing.assert_frame_equal(alone["table"][same], stacked["table"][same])
    assert (stacked["table"].seconds > 0).all()


def test_the_engine_plans_even_stacks_and_measures_a_size_that_keeps_every_process_busy(capsys):
    from grokbook import engine
    from grokbook.models import make_model
    from grokbook.tasks import modular_arithmetic

    assert engine.plan(5, 4) == [[0, 1, 2], [3, 4]]
    assert engine.plan(8, 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert engine.plan(3, 1) == [[0], [1], [2]] and engine.plan(0, 4) == []
    data = modular_arithmetic("add", 11, 0.5)

    def build(i):
        return make_model("fnn", 11, 11, seed=i, d_embed=4, width=8, depth=2)

    size = engine.stack_size("test-tiny", build, data, runs=16, processes=2)
    assert size in engine.CANDIDATES
    assert engine.stack_size("test-tiny", build, data, runs=3, processes=2) in (1, 2)
    assert engine.stack_size("test-tiny", build, data, runs=1, processes=2) == 1
    with pytest.raises(ValueError, match="candidates must be positive integers"):
        engine.stack_size("test-bad", build, data, runs=2, candidates=(0, 2))
    with pytest.raises(ValueError, match="runs must be a positive integer"):
        engine.stack_size("test-tiny", build, data, runs=0)
    with pytest.raises(ValueError, match="stack must be 'auto' or a positive integer"):
        grids.batches([], stack=0)
    with pytest.raises(SystemExit):
        main(["sweep", "--stack", "none"])
    assert "--stack: must be 'auto' or a positive integer, got 'none'" in capsys.readouterr().err


def test_a_stacked_sweep_resumes_with_only_the_missing_cells(tmp_path):
    """The cells a killed stacked sweep left out are trained again, as stacks, and the rows it
    kept stay as they were."""
    out = tmp_path / "sweep.csv"
    grid = grids.grid_of(TINY)
    first = grids.sweep(grid, out, workers=0, progress=False, stack=4)
    kept = first["table"][first["table"].lr == 0.01]
    grids.write(kept.to_dict("records"), out, "test")
    again = grids.sweep(grid, out, workers=0, progress=False, stack=4)
    assert again["trained"] == 4 and again["failed_cells"] == 0
    table = again["table"]
    pd.testing.assert_frame_equal(table[table.lr == 0.01].reset_index(drop=True),
                                  kept.reset_index(drop=True))
    assert set(table[table.lr == 0.03]["stack"]) == {4}


def test_the_workers_for_a_chapters_runs_come_from_the_environment(monkeypatch):
    import torch

    from grokbook import engine
    from grokbook.sweep import default_workers

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a GPU takes none
    monkeypatch.setenv("GROKBOOK_WORKERS", "3")
    assert engine.workers() == 3
    monkeypatch.setenv("GROKBOOK_WORKERS", "0")
    assert engine.workers() == 0
    monkeypatch.delenv("GROKBOOK_WORKERS")
    assert engine.workers() == default_workers()
    for bad in ("two", "-1", "1.5"):
        monkeypatch.setenv("GROKBOOK_WORKERS", bad)
        with pytest.raises(ValueError, match=f"GROKBOOK_WORKERS must be a non-negative "
                                             f"integer .*got '{bad}'"):
            engine.workers()


def test_a_local_cluster_serves_the_later_sweeps_of_its_process():
    from grokbook import sweep

    two = sweep.local_client(2)
    assert sweep.local_client(2) is two and sweep.local_client(1) is two
    assert sweep.map_cells(abs, [-1, 2, -3], workers=1, progress=False) == [1, 2, 3]
    assert set(sweep._LOCAL) == {2}
