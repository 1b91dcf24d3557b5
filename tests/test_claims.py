import pytest

from grokbook.claims import ClaimFailed, check


def test_a_holding_claim_prints_pass(capsys):
    check("two is even", 2 % 2 == 0, "2")
    assert capsys.readouterr().out == "PASS: two is even\n"


def test_a_failing_claim_prints_fail_and_raises_with_the_figures(capsys):
    with pytest.raises(ClaimFailed, match=r"three is even \(measured: 3 % 2 = 1\)"):
        check("three is even", 3 % 2 == 0, "3 % 2 = 1")
    assert capsys.readouterr().out == "FAIL: three is even\n"
