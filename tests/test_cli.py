import json
import subprocess
import sys

import pytest

from grokbook.cli import main
from grokbook.train import train


def test_train_prints_the_summary_and_saves_the_history(capsys, tmp_path):
    code = main(["train", "--p", "23", "--frac", "0.6", "--epochs", "50", "--quiet",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    for line in ("95% train accuracy:", "95% test accuracy:", "time gap:", "wall time:"):
        assert line in out
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["epoch"][-1] == 50 and saved["config"]["p"] == 23


def test_train_a_transformer(capsys):
    assert main(["train", "--model", "transformer", "--p", "11", "--epochs", "5", "--quiet"]) == 0
    assert "transformer" in capsys.readouterr().out


@pytest.mark.parametrize(("grokfast", "kind"), [("ema", "GrokFastEMA"), ("ma", "GrokFastMA"),
                                               ("none", "NoneType")])
def test_train_passes_the_chosen_grokfast_filter_to_the_loop(capsys, monkeypatch, grokfast,
                                                             kind):
    import grokbook.cli

    seen = []

    def spy(*args, grad_transform=None, **options):
        seen.append(type(grad_transform).__name__)
        return train(*args, grad_transform=grad_transform, **options)

    monkeypatch.setattr(grokbook.cli, "train", spy)
    assert main(["train", "--p", "11", "--epochs", "5", "--quiet", "--grokfast", grokfast]) == 0
    assert seen == [kind]
    assert ("GrokFast-" in capsys.readouterr().out) == (grokfast != "none")


def test_train_neuralgrok_trains_on_the_inner_split(capsys, monkeypatch, tmp_path):
    import grokbook.cli
    from grokbook.neuralgrok import NeuralGrok

    seen = []

    def spy(model, data, *args, grad_transform=None, **options):
        seen.append((grad_transform, len(data.y_train)))
        return train(model, data, *args, grad_transform=grad_transform, **options)

    monkeypatch.setattr(grokbook.cli, "train", spy)
    argv = ["train", "--p", "23", "--epochs", "4", "--eval-every", "2", "--quiet", "--neuralgrok",
            "--ng-c", "0.5", "--ng-every", "2", "--out", str(tmp_path)]
    assert main(argv) == 0
    (transform, n_inner), = seen
    assert isinstance(transform, NeuralGrok) and transform.amplifier.c == 0.5
    assert transform.meta_every == 2 and len(transform.outer_y) == round(0.01 * 23 * 23) == 5
    assert "NeuralGrok (c 0.5, T 2): 259 inner + 5 outer examples" in capsys.readouterr().out
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["config"]["n_train"] == n_inner == 259  # of 264
    assert saved["config"]["neuralgrok"]["c"] == 0.5


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--task", "mul", "--p", "12"], "p must be prime for op 'mul'"),
    (["train", "--frac", "1.5"], "ModularCfg.frac must be a finite number in (0, 1)"),
    (["run", "99"], "unknown chapter '99'; chapters: 01_grokking"),
])
def test_bad_input_exits_2_with_a_clear_message(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--task", "pow"], ["run", "1", "--profile", "big"]])
def test_unknown_choices_are_rejected_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["train"], ["run"], ["bench"]])
def test_help_of_the_installed_command(command):
    result = subprocess.run([sys.executable, "-m", "grokbook.cli", *command, "--help"],
                            capture_output=True, text=True, check=True)
    assert "usage: grokbook" in result.stdout


def test_every_commands_help_reads_as_written():
    """A description is printed as written, a help string %-formatted: neither may show a
    doubled "%%" or an unformatted "%(default)s"."""
    from grokbook.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.choices and a.dest == "command").choices
    for name, command in {"grokbook": parser, **commands}.items():
        text = command.format_help()
        assert "%%" not in text and "%(" not in text, name


def test_cache_info_and_clear(tmp_path, monkeypatch, capsys):
    from grokbook.cli import main as cli

    monkeypatch.setenv("GROKBOOK_CACHE", "off")
    assert cli(["cache", "info"]) == 0
    assert "the run cache is off" in capsys.readouterr().out
    monkeypatch.setenv("GROKBOOK_CACHE", str(tmp_path / "c"))
    assert cli(["cache", "info"]) == 0
    assert f"{tmp_path / 'c'}: 0 runs" in capsys.readouterr().out
    assert cli(["cache", "clear"]) == 0
    assert "removed 0 cached runs" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--lr", "inf"], "lr must be a finite number"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--wd", "-1"], "weight_decay must be a finite number"),
    (["--init-scale", "inf"], "init_scale must be a finite number"),
    (["--eval-every", "0"], "eval_every must be a positive integer"),
    (["--stop-acc", "2"], "stop_acc must be a finite number"),
    (["--seed", str(2**70)], "seed must be an integer"),
    (["--device", "tpu"], "device must be one of"),
    (["--p", "50000"], "needs about 93"),
    (["--p", "1"], "p must be an integer >= 2"),
    (["--wd", "nan"], "--wd: OptimCfg.weight_decay must be a finite number"),
    (["--lr", "inf"], "--lr: OptimCfg.lr must be a finite number in (0, 1e+30], got inf"),
    (["--batch-size", "0"], "--batch-size: batch_size must be a positive integer, got 0"),
    (["--checkpoint-every", "-1"], "--checkpoint-every: checkpoint_every must be a positive"),
    (["--task", "mul", "--p", "12"], "--task/--p: p must be prime for op 'mul'"),
    (["--frac", "0"], "--frac: ModularCfg.frac must be a finite number in (0, 1), got 0.0"),
    (["--device", "cuda:7"], "--device: device 'cuda:7'"),
    (["--resume"], "--resume needs --out"),
    (["--neuralgrok", "--ng-c", "0"], "--ng-c: NeuralGrokCfg.c must be a finite number in (0, "),
    (["--neuralgrok", "--ng-every", "0"], "--ng-every: NeuralGrokCfg.meta_every must be a pos"),
    (["--ng-every", "2"], "--ng-c and --ng-every set NeuralGrok: give --neuralgrok"),
    (["--neuralgrok", "--grokfast", "ma"], "--neuralgrok and --grokfast are two gradient"),
])
def test_bad_train_arguments_are_refused_before_training(argv, message, capsys, monkeypatch):
    import grokbook.cli

    def no_data(*_, **__):
        raise AssertionError("the data were built before the arguments were checked")

    monkeypatch.setattr(grokbook.cli, "modular_arithmetic", no_data)
    monkeypatch.setattr(grokbook.cli, "make_model", no_data)
    assert main(["train", "--quiet", "--epochs", "1", *argv]) == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_writable_folder_checked_before_training(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["train", "--quiet", "--p", "7", "--epochs", "1", "--out", str(a_file)]) == 2
    assert "is a file; it must name a folder" in capsys.readouterr().err
    assert main(["train", "--quiet", "--p", "7", "--epochs", "1",
                 "--out", str(a_file / "below")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_divergence_exits_non_zero_and_saves_strict_json(tmp_path, capsys):
    import json

    code = main(["train", "--quiet", "--p", "7", "--epochs", "50", "--lr", "1e6", "--wd", "0",
                 "--out", str(tmp_path)])
    assert code == 3
    assert "training diverged" in capsys.readouterr().err
    saved = json.loads((tmp_path / "history.json").read_text(), parse_constant=pytest.fail)
    assert saved["stopped"] == "diverged"


def test_a_full_disk_or_ctrl_c_anywhere_is_one_line_not_a_traceback(tmp_path, capsys,
                                                                     monkeypatch):
    import errno
    import os

    import grokbook.cli
    from grokbook.history import History
    from grokbook.train import TrainingInterrupted

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        code = main(["train", "--quiet", "--p", "7", "--epochs", "2", "--out", str(tmp_path)])
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "grokbook: error: [Errno 28] No space left on device"

    def interrupted(*_, **__):
        raise TrainingInterrupted(History())

    monkeypatch.setattr(grokbook.cli.experiments, "race", interrupted)
    monkeypatch.setenv("GROKBOOK_CACHE", str(tmp_path / "cache"))
    assert main(["transfer", "--quiet", "--p", "7"]) == 130
    assert capsys.readouterr().err.strip() == ("grokbook: interrupted; the run cache keeps a "
                                               "checkpoint: the same command resumes from it")
