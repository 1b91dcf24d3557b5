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


def test_paired_ratio_floor_pairs_seeds_and_never_overstates_the_ratio():
    from grokbook.stats import Censored, paired_ratio_floor

    a = Censored((220.0, 110.0, 80.0, 90.0, 90.0), (1000.0,) * 5)
    b = Censored((160.0, 170.0, 80.0, 170.0, 90.0), (1000.0,) * 5)
    assert paired_ratio_floor(a, b) == 1.0  # the medians alone (90 vs 160) say 0.56
    never_a = Censored((None, 100.0, 100.0), (500.0, 500.0, 500.0))
    never_b = Censored((None, 200.0, None), (500.0, 500.0, 500.0))
    # a never: its budget, 500 / 200 = 2.5 on seed 1 (true ratio higher); b never: 0
    assert paired_ratio_floor(never_a, Censored((100.0, 100.0, 50.0), (500.0,) * 3)) == 2.0
    assert paired_ratio_floor(Censored((100.0, 50.0, 100.0), (500.0,) * 3), never_b) == 0.0
    with pytest.raises(ValueError, match="same seeds"):
        paired_ratio_floor(a, never_b)
