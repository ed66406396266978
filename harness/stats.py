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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import comb, sqrt

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
