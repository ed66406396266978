"""harness.stats against textbook values and independent formulas."""

from __future__ import annotations

from math import comb, sqrt

import pytest

from harness.stats import Z_95, binomial_two_sided_p, majority_vote, mcnemar_exact, sign_test, wilson_interval

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
# method 3 (Wilson score interval without continuity correction).
NEWCOMBE_WILSON = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE_WILSON)
def test_wilson_matches_newcombe_table(k, n, low, high):
    got_low, got_high = wilson_interval(k, n)
    assert got_low == pytest.approx(low, abs=6e-5)
    assert got_high == pytest.approx(high, abs=6e-5)


@pytest.mark.parametrize(("k", "n"), [(3, 15), (14, 15), (7, 10), (50, 100)])
def test_wilson_bounds_solve_the_score_equation(k, n):
    # The Wilson bounds are the p where |p_hat - p| / sqrt(p(1-p)/n) equals z.
    p_hat = k / n
    for p in wilson_interval(k, n):
        assert abs(p_hat - p) / sqrt(p * (1 - p) / n) == pytest.approx(Z_95, rel=1e-9)


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(15, 15)[1] == 1.0
    assert wilson_interval(0, 15)[0] == 0.0
    low, high = wilson_interval(15, 15)
    assert 0.79 < low < 0.80  # 15/15 is not "certainly 100%"
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def _two_sided_by_pmf(k: int, n: int) -> float:
    """Independent definition: total probability of outcomes no more likely than the observed one."""
    pmf = [comb(n, i) / 2**n for i in range(n + 1)]
    return min(1.0, sum(p for p in pmf if p <= pmf[k] * (1 + 1e-12)))


@pytest.mark.parametrize(("k", "n"), [(0, 5), (0, 6), (2, 12), (5, 10), (1, 9), (7, 20), (13, 40)])
def test_binomial_p_matches_pmf_definition(k, n):
    assert binomial_two_sided_p(k, n) == pytest.approx(_two_sided_by_pmf(k, n), rel=1e-12)


def test_mcnemar_textbook_cases():
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 5 fixes, nothing regressed: not < 0.05
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)  # 6 regressions, none fixed: < 0.05
    assert mcnemar_exact(2, 10) == pytest.approx(2 * (1 + 12 + 66) / 4096)  # 0.0386
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pairs: no evidence of any difference
    assert mcnemar_exact(4, 1) == mcnemar_exact(1, 4)  # two-sided: symmetric


def test_sign_test_drops_ties_and_matches_mcnemar():
    diffs = [1.0, 0.5, 0.0, 0.0, -2.0, 3.0, 0.1, 0.2, 0.0]
    assert sign_test(diffs) == pytest.approx(binomial_two_sided_p(1, 6))
    assert sign_test([0.0, 0.0]) == 1.0
    assert sign_test([-1.0] * 7) == pytest.approx(mcnemar_exact(7, 0))


def test_majority_vote():
    assert majority_vote([True, True, False]) is True
    assert majority_vote([True, False, False]) is False
    assert majority_vote([True, False]) is False  # tie: not a solid pass
    assert majority_vote([True]) is True
    with pytest.raises(ValueError):
        majority_vote([])
