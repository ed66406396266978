"""Small, exact statistics for pass/fail benchmark outcomes.

Scenario counts are small (15 per pack, a few hundred at most), so we use exact tests and
score intervals rather than normal approximations:

* ``wilson_interval`` — the Wilson score interval for k passes out of n; unlike k/n ± 1.96·se
  it stays inside [0, 1] and is sensible at 0/n and n/n.
* ``mcnemar_exact`` — paired comparison of two runs over the same scenarios; only the
  discordant pairs (fixed, regressed) carry information, and under "no difference" each is
  a fair coin, so the p-value is a two-sided binomial test with p = 1/2.
* ``sign_test`` — the same binomial test over paired numeric differences (ties dropped),
  for per-scenario scores rather than verdicts.
* ``majority_vote`` — one verdict per scenario from repeated runs.
* ``paired_difference_interval`` / ``paired_equivalence`` — how far apart two runs' pass rates
  are over the same scenarios (Tango's score interval), and whether that is within a margin
  (two one-sided tests, TOST): "as good as" is a claim of its own, not the absence of a
  significant difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from math import comb, floor, sqrt
from statistics import NormalDist
from typing import NamedTuple

Z_95 = 1.959963984540054  # two-sided 95% standard normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0.0, 1.0) when there are no trials."""
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return 0.0, 1.0
    p_hat = successes / trials
    z2 = z * z
    centre = (p_hat + z2 / (2 * trials)) / (1 + z2 / trials)
    half = (z / (1 + z2 / trials)) * sqrt(p_hat * (1 - p_hat) / trials + z2 / (4 * trials * trials))
    # Clamp float noise only: the exact bounds are 0 at k=0 and 1 at k=n.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n fair-coin trials (doubling the smaller tail)."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 1.0
    smaller = min(k, n - k)
    tail = sum(comb(n, i) for i in range(smaller + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar_exact(regressed: int, fixed: int) -> float:
    """Exact McNemar p-value from the discordant pair counts (pass→fail, fail→pass)."""
    if regressed < 0 or fixed < 0:
        raise ValueError(f"discordant counts must be >= 0, got {regressed}, {fixed}")
    return binomial_two_sided_p(regressed, regressed + fixed)


def sign_test(differences: Iterable[float]) -> float:
    """Exact two-sided sign test over paired differences; zero differences are dropped."""
    values = list(differences)
    positive = sum(1 for d in values if d > 0)
    negative = sum(1 for d in values if d < 0)
    return binomial_two_sided_p(positive, positive + negative)


def majority_vote(verdicts: Sequence[bool]) -> bool:
    """True only when a strict majority of repeats passed; a tie counts as not passing.

    Ties are resolved conservatively so a scenario that passes half the time is never
    reported as solidly passing (use an odd repeat count to avoid ties).
    """
    if not verdicts:
        raise ValueError("majority vote over no verdicts")
    return 2 * sum(1 for v in verdicts if v) > len(verdicts)


def _average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson over average ranks); None when either side is constant."""
    if len(xs) != len(ys) or len(xs) < 2:
        return None
    rx, ry = _average_ranks(xs), _average_ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / (sxx * syy) ** 0.5


# --- Paired difference of pass rates and equivalence ---------------------------------------
#
# Why Tango's score interval (Tango 1998, Stat Med 17:891; recommended for paired proportions by
# Fagerland, Lydersen & Laake 2014): the Wald interval d ± z·sqrt((b + c - n·d²)/n²) has zero width
# when no scenario changed verdict, so 3 identical scenarios would "prove" equivalence. Adding 0.5
# to the discordant cells patches that case with an arbitrary constant. The score interval instead
# takes the variance under each candidate difference Δ (the discordant cells fitted by maximum
# likelihood subject to p_fixed - p_regressed = Δ), so a difference the data cannot rule out stays
# inside it: with no discordant pairs it is ±z²/(n + z²), which shrinks only as scenarios are added.
# At Δ = 0 the statistic is McNemar's z, so the interval excludes 0 exactly when the asymptotic
# McNemar test rejects.


class PairedEquivalence(NamedTuple):
    """B's pass rate minus A's over shared scenarios, its 1-2α interval and the TOST verdict."""

    difference: float
    low: float
    high: float
    p_value: float  # the larger of the two one-sided p-values
    equivalent: bool  # p_value < alpha, i.e. the interval lies inside (-margin, +margin)


def _check_pairs(regressed: int, fixed: int, shared: int) -> None:
    if regressed < 0 or fixed < 0 or regressed + fixed > shared:
        raise ValueError(f"need 0 <= regressed + fixed <= shared, got {regressed} + {fixed} of {shared}")


def _restricted_regressed_rate(regressed: int, fixed: int, shared: int, delta: float) -> float:
    """Maximum-likelihood P(pass→fail) given P(fail→pass) - P(pass→fail) = delta.

    The larger root of 2n·p² + (delta·(2n + b - c) - (b + c))·p - b·delta·(1 - delta) = 0
    (b regressed, c fixed), which is where the constrained log-likelihood's derivative vanishes.
    """
    a = 2 * shared
    b = delta * (2 * shared + regressed - fixed) - (regressed + fixed)
    c = -regressed * delta * (1 - delta)
    return (-b + sqrt(max(0.0, b * b - 4 * a * c))) / (2 * a)


def paired_difference_score(regressed: int, fixed: int, shared: int, delta: float) -> float:
    """Tango's score statistic for H0: pass rate(B) - pass rate(A) = delta; decreasing in delta."""
    _check_pairs(regressed, fixed, shared)
    if shared == 0:
        return 0.0
    numerator = fixed - regressed - shared * delta
    p_regressed = _restricted_regressed_rate(regressed, fixed, shared, delta)
    variance = shared * (2 * p_regressed + delta * (1 - delta))
    if numerator == 0:
        return 0.0
    if variance <= 0:
        return float("inf") if numerator > 0 else float("-inf")
    return numerator / sqrt(variance)


def _solve_decreasing(f: Callable[[float], float], target: float, low: float, high: float) -> float:
    """The x in [low, high] where the decreasing function f crosses target (bisection)."""
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if f(middle) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def paired_difference_interval(regressed: int, fixed: int, shared: int, z: float = Z_95) -> tuple[float, float]:
    """Tango's score interval for pass rate(B) - pass rate(A) from paired verdicts.

    ``regressed``: scenarios A passed and B failed; ``fixed``: the reverse; ``shared``: all paired
    scenarios. (-1, 1) when there are none.
    """
    _check_pairs(regressed, fixed, shared)
    if shared == 0:
        return -1.0, 1.0
    estimate = (fixed - regressed) / shared

    def score(delta: float) -> float:
        return paired_difference_score(regressed, fixed, shared, delta)

    low = -1.0 if regressed == shared else _solve_decreasing(score, z, -1.0, estimate)
    high = 1.0 if fixed == shared else _solve_decreasing(score, -z, estimate, 1.0)
    return low, high


def paired_equivalence(regressed: int, fixed: int, shared: int, margin: float,
                       alpha: float = 0.05) -> PairedEquivalence:
    """Two one-sided score tests of |pass rate(B) - pass rate(A)| < margin (a fraction, 0.05 = 5 points).

    Equivalent when both nulls (difference <= -margin, difference >= +margin) are rejected at
    alpha, which is the same as the 1-2α Tango interval lying inside (-margin, +margin).
    """
    _check_pairs(regressed, fixed, shared)
    if not 0 < margin < 1:
        raise ValueError(f"margin must be in (0, 1), got {margin}")
    if not 0 < alpha <= 0.5:
        raise ValueError(f"alpha must be in (0, 0.5], got {alpha}")
    normal = NormalDist()
    low, high = paired_difference_interval(regressed, fixed, shared, normal.inv_cdf(1 - alpha))
    if shared == 0:
        return PairedEquivalence(0.0, low, high, 1.0, False)
    p_not_below = normal.cdf(-paired_difference_score(regressed, fixed, shared, -margin))
    p_not_above = normal.cdf(paired_difference_score(regressed, fixed, shared, margin))
    p_value = max(p_not_below, p_not_above)
    return PairedEquivalence((fixed - regressed) / shared, low, high, p_value, p_value < alpha)


def equivalence_min_shared(margin: float, alpha: float = 0.05) -> int:
    """Fewest shared scenarios at which identical verdicts (no discordant pair) show equivalence.

    With no discordant pair the interval is ±z²/(n + z²), inside ±margin once n > z²(1 - margin)/margin:
    52 scenarios for ±5 points at alpha 0.05, 11 for ±20; any scenario that changes verdict adds to that.
    """
    if not 0 < margin < 1 or not 0 < alpha <= 0.5:
        raise ValueError(f"need 0 < margin < 1 and 0 < alpha <= 0.5, got {margin}, {alpha}")
    z = NormalDist().inv_cdf(1 - alpha)
    return floor(z * z * (1 - margin) / margin) + 1
