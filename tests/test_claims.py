import pytest

from grokbook.claims import ClaimFailed, check


def test_a_holding_claim_prints_pass(capsys):
    check("two is even", 2 % 2 == 0, "2")
    assert capsys.readouterr().out == "PASS: two is even\n"


def test_a_failing_claim_prints_fail_and_raises_with_the_figures(capsys):
    with pytest.raises(ClaimFailed, match=r"three is even \(measured: 3 % 2 = 1\)"):
        check("three is even", 3 % 2 == 0, "3 % 2 = 1")
    assert capsys.readouterr().out == "FAIL: three is even\n"


def test_claims_are_logged_with_their_figures_when_asked(tmp_path, monkeypatch):
    import json

    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("GROKBOOK_CLAIMS_LOG", str(log))
    check("two is even", True, {"k": 8})
    with pytest.raises(ClaimFailed):
        check("three is even", False, "3")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == [{"claim": "two is even", "holds": True, "figures": "{'k': 8}"},
                     {"claim": "three is even", "holds": False, "figures": "3"}]


def test_a_long_claim_wraps_to_the_column(capsys):
    claim = "a claim long enough that it would run past the book's text column " * 3
    check(claim, True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and lines[0].startswith("PASS: ")
    assert all(len(line) <= 88 for line in lines)
    assert all(line.startswith("      ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == f"PASS: {claim}".strip()
