import math

import pytest

from grokbook.claims import ClaimFailed, check, epochs_or_inf
from grokbook.train import History


def test_a_holding_claim_prints_pass(capsys):
    check("two is even", 2 % 2 == 0, "2")
    assert capsys.readouterr().out == "PASS: two is even\n"


def test_a_failing_claim_prints_fail_and_raises_with_the_figures(capsys):
    with pytest.raises(ClaimFailed, match=r"three is even \(measured: 3 % 2 = 1\)"):
        check("three is even", 3 % 2 == 0, "3 % 2 = 1")
    assert capsys.readouterr().out == "FAIL: three is even\n"


def test_never_is_infinitely_late():
    h = History(epoch=[0, 10], train_acc=[0.0, 1.0], test_acc=[0.0, 0.5])
    assert epochs_or_inf(h) == math.inf
    assert epochs_or_inf(h, "train_acc") == 10
