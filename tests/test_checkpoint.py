import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from grokbook import checkpoint
from grokbook.accelerators import GrokFastEMA, GrokFastMA
from grokbook.measures import NTKChange
from grokbook.models import make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import TrainingInterrupted, train


def _run(path, *, stop_at=None, resume=False, transform=GrokFastMA, batch_size=None,
         kill=None):
    data = modular_arithmetic("add", 11, 0.5, seed=1)
    model = make_model("fnn", 11, 11, seed=1, d_embed=4, width=16, depth=2)

    def interrupt(history):
        if kill is not None:
            kill(history)
        if stop_at is not None and history.epoch[-1] >= stop_at:
            raise KeyboardInterrupt

    return train(model, data, epochs=60, eval_every=5, lr=1e-2, weight_decay=1.0,
                 warmup_steps=7, batch_size=batch_size, grad_transform=transform(),
                 measures={"ntk": NTKChange(data.x_test[:6], 11)}, callback=interrupt,
                 checkpoint=path, checkpoint_every=10, resume=resume, progress=False)


def _same(a, b):
    return {k: v for k, v in a.to_dict().items() if k != "seconds"} == \
        {k: v for k, v in b.to_dict().items() if k != "seconds"}


@pytest.mark.parametrize("transform, batch_size", [(GrokFastMA, None), (GrokFastEMA, 16)])
def test_a_killed_run_resumes_to_the_identical_history(tmp_path, transform, batch_size):
    whole = _run(tmp_path / "whole.npz", transform=transform, batch_size=batch_size)
    path = tmp_path / "run.npz"
    with pytest.raises(TrainingInterrupted) as caught:
        _run(path, stop_at=35, transform=transform, batch_size=batch_size)
    assert caught.value.history.stopped == "interrupted"
    assert checkpoint.load(path)["epoch"] == 30  # the last periodic save
    resumed = _run(path, resume=True, transform=transform, batch_size=batch_size)
    assert _same(resumed, whole)


def test_a_damaged_checkpoint_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="is not a grokbook checkpoint"):
        checkpoint.load(path)
    with pytest.raises(TypeError, match="cannot store a object"):
        checkpoint.save(tmp_path / "x.npz", {"a": object()})


def test_state_without_state_dict_is_refused(tmp_path):
    class Counter:
        def __init__(self):
            self.n = 0

        def __call__(self, model):
            self.n += 1

    data = modular_arithmetic("add", 7, 0.5)
    with pytest.raises(ValueError, match="grad_transform keeps state but has no state_dict"):
        train(make_model("fnn", 7, 7, d_embed=4, width=8, depth=2), data, epochs=5,
              grad_transform=Counter(), checkpoint=tmp_path / "c.npz", progress=False)


@pytest.mark.slow
def test_ctrl_c_on_the_cli_saves_a_checkpoint_and_resume_finishes_it(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "grokbook.cli", "train", "--p", "23", "--epochs", "3000",
               "--eval-every", "10", "--quiet", "--out", str(out), "--checkpoint-every", "50"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "GROKBOOK_PROGRESS": "0"})
    for _ in range(600):  # wait (at most a minute) for the first checkpoint
        if (out / "checkpoint.npz").exists():
            break
        try:
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted at epoch" in err and "--resume" in err
    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (out / "checkpoint.npz").exists()


def test_a_checkpoint_resumes_only_the_run_that_saved_it(tmp_path):
    path = tmp_path / "run.npz"
    data = modular_arithmetic("add", 11, 0.5, seed=1)
    train(make_model("fnn", 11, 11, d_embed=4, width=16, depth=2), data, epochs=20,
          checkpoint=path, checkpoint_every=10, progress=False)
    with pytest.raises(ValueError, match=r"saved by a run with other settings \(lr: 0.001 "
                       r"then, 0.01 now\); delete it to start afresh"):
        train(make_model("fnn", 11, 11, d_embed=4, width=16, depth=2), data, epochs=20,
              lr=1e-2, checkpoint=path, resume=True, progress=False)
    with pytest.raises(ValueError, match="holds another model or optimizer than this run's"):
        train(make_model("fnn", 11, 11, d_embed=4, width=32, depth=2), data, epochs=20,
              checkpoint=path, resume=True, progress=False)
    with pytest.raises(ValueError, match="checkpoint must name a file"):
        train(make_model("fnn", 11, 11, d_embed=4, width=16, depth=2), data, epochs=2,
              checkpoint=tmp_path, progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="checkpoint folder .* is a file; it must name a folder"):
        train(make_model("fnn", 11, 11, d_embed=4, width=16, depth=2), data, epochs=2,
              checkpoint=tmp_path / "file" / "run.npz", progress=False)


KILLED_RUN = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_checkpoint import _run

def kill(history):
    if history.epoch[-1] >= 45:  # mid-run, 15 epochs after the last checkpoint
        os.kill(os.getpid(), signal.SIGKILL)

_run({path!r}, kill=kill)
"""


def test_a_run_killed_outright_resumes_to_the_identical_history(tmp_path):
    """SIGKILL: no handler runs, no last save; the run resumes from its last periodic
    checkpoint and still ends with the uninterrupted History, bit for bit."""
    whole = _run(tmp_path / "whole.npz")
    path = tmp_path / "killed.npz"
    script = KILLED_RUN.format(tests=str(Path(__file__).parent), path=str(path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "GROKBOOK_PROGRESS": "0"})
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert checkpoint.load(path)["epoch"] == 40
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert _same(_run(path, resume=True), whole)


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "run.npz"
    with pytest.raises(TrainingInterrupted):
        _run(path, stop_at=25)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        _run(path, resume=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]
