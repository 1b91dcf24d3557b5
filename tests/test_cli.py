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


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--task", "mul", "--p", "12"], "p must be prime for op 'mul'"),
    (["train", "--frac", "1.5"], "frac must lie strictly between 0 and 1"),
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
