import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grokbook.files import dumps, loads
from grokbook.history import History


def run(n=3, **more):
    return History(epoch=list(range(0, 10 * n, 10)), train_loss=[1.0] * n,
                   train_acc=list(np.linspace(0, 1, n)), test_loss=[2.0] * n,
                   test_acc=list(np.linspace(0, 0.96, n)), weight_norm=[3.0] * n,
                   config={"epochs": 10 * (n - 1)}, **more)


def test_first_epoch_is_none_when_never_reached():
    h = run(3)
    assert h.first_epoch("test_acc", 0.95) == 20
    assert h.first_epoch("test_acc", 0.99) is None
    assert h.budget == 20


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_a_history_round_trips_strictly_with_non_finite_values(tmp_path, suffix):
    h = run(3, stopped="diverged")
    h.train_loss[-1] = math.nan
    h.test_loss[-1] = math.inf
    h.extras["r"] = [1.0, -math.inf, 0.5]
    loaded = History.load(h.save(tmp_path / f"run{suffix}"))
    assert math.isnan(loaded.train_loss[-1]) and loaded.test_loss[-1] == math.inf
    assert loaded.extras["r"][1] == -math.inf and loaded.stopped == "diverged"
    if suffix == ".json":
        json.loads((tmp_path / "run.json").read_text(), parse_constant=pytest.fail)


@pytest.mark.parametrize("content, message", [
    ("{}", "missing keys"),
    ('{"version": 1}', "missing keys"),
    ("[1, 2]", "expected a JSON object"),
    ("[" * 100000 + "]" * 100000, "not valid JSON"),
    ('{"a": NaN}', "not valid JSON"),
])
def test_loading_anything_else_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        History.load(path)


def test_loading_checks_types_lengths_and_version(tmp_path):
    good = run(3).to_dict()
    for change, message in (({"epoch": ["abc", 1, 2]}, "epoch must hold"),
                            ({"test_acc": [0.1]}, "unequal length"),
                            ({"version": 99}, "schema version 99"),
                            ({"stopped": "bored"}, "stopped must be one of"),
                            ({"epoch": [0, 20, 10]}, "epoch must be strictly increasing"),
                            ({"epoch": "abc"}, "epoch must be a list"),
                            ({"train_acc": [True, 0.5, 1.0]}, "train_acc must be a number"),
                            ({"extras": {"x": [1.0]}}, "unequal length"),
                            ({"seconds": "soon"}, "seconds must be a number"),
                            ({"config": []}, "config must be an object"),
                            ({"more": 1}, r"unknown keys \['more'\]")):
        path = tmp_path / "h.json"
        path.write_text(json.dumps({**good, **change}))
        with pytest.raises(ValueError, match=message):
            History.load(path)


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    path = run(3).save(tmp_path / "h.json")
    before = path.read_bytes()
    broken = run(3)
    broken.config["thing"] = object()  # cannot be written as JSON
    with pytest.raises(TypeError):
        broken.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["h.json"]  # no temporary left behind


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1,
                max_size=20))
def test_any_column_of_floats_round_trips(values):
    n = len(values)
    h = History(epoch=list(range(n)), train_loss=values, train_acc=[0.0] * n,
                test_loss=[0.0] * n, test_acc=[0.0] * n, weight_norm=[0.0] * n)
    back = History.from_dict(loads(dumps(h.to_dict())))
    assert np.array_equal(np.array(back.train_loss), np.array(values), equal_nan=True)


def test_a_full_disk_mid_write_leaves_the_previous_result(tmp_path, monkeypatch):
    import errno
    import os

    path = run(3).save(tmp_path / "h.json")
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    for suffix in (".json", ".npz"):
        target = tmp_path / f"h{suffix}"
        with pytest.raises(OSError, match="No space left"):
            run(5).save(target)
    assert path.read_bytes() == before and not (tmp_path / "h.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.json"]


def test_a_read_only_folder_or_a_file_in_the_way_leaves_the_previous_result(tmp_path,
                                                                           monkeypatch):
    import errno
    import os

    path = run(3).save(tmp_path / "h.json")
    before = path.read_bytes()

    def read_only(*_):
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", read_only)
        with pytest.raises(OSError, match="Read-only file system"):
            run(5).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["h.json"]
    with pytest.raises(NotADirectoryError, match="a part of its folder is a file"):
        run(3).save(path / "inside.json")


@given(st.integers(1, 12), st.lists(st.floats(0, 1), min_size=1, max_size=4), st.booleans(),
       st.sampled_from(["budget", "target", "diverged"]))
def test_any_history_round_trips_through_both_formats(n, accs, extra, stopped):
    import tempfile
    from pathlib import Path

    history = run(n, stopped=stopped, seconds=1.5)
    history.test_acc = [accs[i % len(accs)] for i in range(n)]
    if extra:
        history.extras["ntk"] = [float(i) / 3 for i in range(n)]
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".json", ".npz"):
            back = History.load(history.save(Path(folder) / f"h{suffix}"))
            assert back == history
