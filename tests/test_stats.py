"""harness.stats against textbook values and independent formulas."""

from __future__ import annotations

from math import comb, log, sqrt
from statistics import NormalDist

import pytest

from harness.stats import (
    Z_95,
    binomial_two_sided_p,
    equivalence_min_shared,
    majority_vote,
    mcnemar_exact,
    paired_difference_interval,
    paired_difference_score,
    paired_equivalence,
    sign_test,
    wilson_interval,
)

Z_90 = 1.6448536269514722  # one-sided 95% standard normal quantile: the TOST interval at alpha 0.05

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


# --- paired difference of pass rates (Tango's score interval) and equivalence (TOST) ---------


@pytest.mark.parametrize("n", [3, 12, 51, 52, 100])
def test_no_discordant_pair_gives_plus_minus_z2_over_n_plus_z2(n):
    # By hand: with b = c = 0 the restricted MLE puts all of delta in one discordant cell, so
    # T(delta) = -sqrt(n·delta/(1 - delta)) and T = -z at delta = z²/(n + z²). Never zero width.
    for z in (Z_95, Z_90):
        low, high = paired_difference_interval(0, 0, n, z)
        assert high == pytest.approx(z * z / (n + z * z), abs=1e-12)
        assert low == pytest.approx(-high, abs=1e-12)


def test_tango_interval_matches_published_example():
    # Airway hyper-responsiveness before/after stem cell transplantation (Bentur et al. 2009):
    # n11=1, n12=1, n21=7, n22=12; Fagerland, Lydersen & Laake (2014) give Tango's 95% interval
    # for p1+ - p+1 as -0.517 to -0.026. Here the difference is B - A, so the signs flip.
    low, high = paired_difference_interval(regressed=1, fixed=7, shared=21)
    assert (low, high) == (pytest.approx(0.026, abs=5e-4), pytest.approx(0.517, abs=5e-4))


def test_score_by_hand():
    # b=2 regressed, c=1 fixed, n=100, delta=+0.05: quadratic 200p² + 7.05p - 0.095 = 0 gives
    # p12 = (-7.05 + sqrt(7.05² + 76)) / 400 = 0.0104043; variance 100·(2·0.0104043 + 0.05·0.95) = 6.83086;
    # T = (1 - 2 - 5) / sqrt(6.83086) = -2.29569.
    assert paired_difference_score(2, 1, 100, 0.05) == pytest.approx(-2.29569, abs=1e-5)
    # delta=-0.05: 200p² - 13.05p + 0.105 = 0 gives p12 = 0.0558498; T = 4 / sqrt(5.91995) = 1.64399,
    # just short of z = 1.64485: "not below -5 points" is *not* shown, so not equivalent, barely.
    assert paired_difference_score(2, 1, 100, -0.05) == pytest.approx(1.64399, abs=1e-5)
    result = paired_equivalence(2, 1, 100, margin=0.05)
    assert result.p_value == pytest.approx(NormalDist().cdf(-1.64399), abs=1e-5) and not result.equivalent
    assert result.low == pytest.approx(-0.05003, abs=1e-5)


@pytest.mark.parametrize(("b", "c"), [(0, 3), (4, 1), (6, 6), (10, 2), (1, 0)])
def test_score_at_zero_is_mcnemar_z(b, c):
    assert paired_difference_score(b, c, 40, 0.0) == pytest.approx((c - b) / sqrt(b + c))


def _restricted_mle_by_search(b: int, c: int, n: int, delta: float) -> float:
    """P(regressed) maximising the likelihood subject to P(fixed) - P(regressed) = delta (golden section)."""
    concordant = n - b - c

    def loglik(p: float) -> float:
        q, rest = p + delta, 1 - 2 * p - delta
        return (b * log(p) if b else 0) + (c * log(q) if c else 0) + (concordant * log(rest) if concordant else 0)

    low, high = max(0.0, -delta) + 1e-15, (1 - delta) / 2 - 1e-15
    ratio = (sqrt(5) - 1) / 2
    for _ in range(200):
        x1, x2 = high - ratio * (high - low), low + ratio * (high - low)
        if loglik(x1) < loglik(x2):
            low = x1
        else:
            high = x2
    return (low + high) / 2


@pytest.mark.parametrize(("b", "c", "n"), [(1, 7, 21), (6, 16, 161), (3, 0, 15), (0, 2, 30), (5, 5, 40)])
def test_interval_bounds_solve_the_score_equation(b, c, n):
    # Independent of the closed form: fit the constrained likelihood numerically at each bound and
    # check |T| = z there.
    for bound in paired_difference_interval(b, c, n):
        p12 = _restricted_mle_by_search(b, c, n, bound)
        variance = n * (2 * p12 + bound * (1 - bound))
        assert abs(c - b - n * bound) / sqrt(variance) == pytest.approx(Z_95, rel=1e-5)


def test_interval_edges_and_symmetry():
    assert paired_difference_interval(0, 0, 0) == (-1.0, 1.0)
    assert paired_difference_interval(5, 0, 5)[0] == -1.0  # every scenario regressed
    assert paired_difference_interval(0, 5, 5)[1] == 1.0
    low, high = paired_difference_interval(7, 2, 30)
    mirrored = paired_difference_interval(2, 7, 30)
    assert mirrored == (pytest.approx(-high), pytest.approx(-low))
    with pytest.raises(ValueError):
        paired_difference_interval(3, 3, 5)


def test_tost_p_for_identical_runs_by_hand():
    # No discordant pair: p = Phi(-sqrt(n·m/(1-m))); n=100, m=0.05: Phi(-2.29416) = 0.010891.
    result = paired_equivalence(0, 0, 100, margin=0.05)
    assert result.p_value == pytest.approx(0.010891, abs=1e-6) and result.equivalent
    assert result.difference == 0.0


def test_equivalent_exactly_when_the_interval_is_inside_the_margin():
    for n in (15, 30, 60, 120):
        for b in range(0, 8):
            for c in range(0, 8):
                for margin in (0.05, 0.1, 0.2):
                    result = paired_equivalence(b, c, n, margin)
                    low, high = paired_difference_interval(b, c, n, Z_90)
                    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))
                    assert result.equivalent == (-margin < low and high < margin), (b, c, n, margin)


def test_min_shared_for_equivalence():
    # z² (1 - m) / m = 2.70554 · 19 = 51.4 for ±5 points: 52 identical scenarios show it, 51 do not.
    assert equivalence_min_shared(0.05) == 52
    assert paired_equivalence(0, 0, 52, 0.05).equivalent and not paired_equivalence(0, 0, 51, 0.05).equivalent
    assert equivalence_min_shared(0.20) == 11  # 2.70554 · 4 = 10.8
    assert paired_equivalence(0, 0, 11, 0.20).equivalent and not paired_equivalence(0, 0, 10, 0.20).equivalent
    assert equivalence_min_shared(0.05, alpha=0.025) > 52  # stricter alpha, more scenarios


def test_equivalence_refuses_bad_arguments():
    for margin in (0, 1, -0.1):
        with pytest.raises(ValueError, match="margin"):
            paired_equivalence(0, 0, 10, margin)
    with pytest.raises(ValueError, match="alpha"):
        paired_equivalence(0, 0, 10, 0.05, alpha=0.6)
    assert not paired_equivalence(0, 0, 0, 0.05).equivalent  # nothing shared: nothing shown
