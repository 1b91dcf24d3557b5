import pytest

from grokbook.stats import Censored, Estimate, surely_at_most, surely_less


def test_a_median_on_a_censored_run_is_a_lower_bound():
    sample = Censored((100, None, None), (1000, 1000, 1000))
    assert sample.k == 1 and sample.n == 3
    assert sample.median() == Estimate(1000, censored=True)
    assert str(sample.median()) == ">1000"


def test_observed_values_sort_before_censored_ones():
    sample = Censored((300, None, 100, 200), (500, 50, 500, 500))
    assert sample.median() == Estimate(250)
    assert sample.quantile(0.0) == Estimate(100)
    assert sample.quantile(1.0).censored


def test_comparisons_are_safe_for_every_value_a_censored_run_might_have():
    assert surely_less(Estimate(100), Estimate(1000, censored=True))
    assert not surely_less(Estimate(1000, censored=True), Estimate(5000))
    assert not surely_less(Estimate(1500), Estimate(1000, censored=True))
    assert surely_at_most(Estimate(500), Estimate(1000, censored=True) * 0.5)
    assert not surely_less(Estimate(1000, True), Estimate(1000, True))


def test_bad_samples_are_errors():
    with pytest.raises(ValueError):
        Censored((), ())
    with pytest.raises(ValueError, match="q must lie"):
        Censored((1,), (2,)).quantile(2)
