"""Comparing two runs scenario by scenario: fixed, regressed, stable, and whether it matters.

The input is an ``OutcomeSet`` (see ``outcomes``), deliberately independent of the result
file formats, so the statistics never depend on how a result file happens to be laid out.

A difference is called significant with the exact McNemar test over the scenarios both runs
share (only fixed/regressed pairs count). Only canonical runs (greedy, harness-controlled
sampling) may gate: with sampled decoding a "regression" can be noise we cannot pair.

"Is B as good as A?" is a different question: a non-significant difference over 12 scenarios
says nothing. Equivalence is tested with two one-sided tests (TOST) on B's pass rate minus A's,
using Tango's score interval for paired verdicts (see ``harness.stats``), against a margin in
percentage points. The comparison ends in one verdict, decided in this order:

* "better" / "worse" — McNemar significant at alpha, in the direction of the larger of fixed
  and regressed (the same rule the regression gate uses, so the words and the exit code agree);
* "equivalent within ±m" — the 1-2α interval of the difference lies inside (-m, +m);
* "inconclusive (need more scenarios)" — neither: too few scenarios, or too many flipped.

A significant difference wins over equivalence (a real 1-point drop over 5,000 scenarios is
both); the text output then notes that it is within the margin.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, computed_field
from tabulate import tabulate

from harness.errors import ComparisonError
from harness.regress.outcomes import OutcomeSet, ScenarioKey
from harness.stats import equivalence_min_shared, mcnemar_exact, paired_equivalence, wilson_interval

DEFAULT_ALPHA = 0.05
DEFAULT_MARGIN_POINTS = 5.0  # equivalence margin on the pass rate, percentage points
INCONCLUSIVE = "inconclusive (need more scenarios)"
MIN_OVERLAP = 0.8  # share of the reference's scenarios a fresh run must cover to gate


class Equivalence(BaseModel):
    """B's pass rate minus A's over shared scenarios, in percentage points, and the TOST against a margin."""

    margin_points: float = Field(gt=0, lt=100)
    confidence: float = Field(description="level of the interval, 1 - 2·alpha")
    difference_points: float = Field(description="pass rate of B minus pass rate of A")
    ci_low_points: float
    ci_high_points: float
    p_value: float = Field(description="TOST: the larger of the two one-sided score-test p-values")
    equivalent: bool = Field(description="p_value < alpha: the interval lies inside ±margin")
    min_shared: int = Field(description="fewest shared scenarios that could show equivalence (all verdicts equal)")


def equivalence(regressed: int, fixed: int, shared: int, margin_points: float, alpha: float) -> Equivalence:
    """The paired equivalence test over `shared` scenarios, in percentage points."""
    margin = margin_points / 100
    test = paired_equivalence(regressed, fixed, shared, margin, alpha)
    return Equivalence(margin_points=margin_points, confidence=1 - 2 * alpha, difference_points=100 * test.difference,
                       ci_low_points=100 * test.low, ci_high_points=100 * test.high, p_value=test.p_value,
                       equivalent=test.equivalent, min_shared=equivalence_min_shared(margin, alpha))


def verdict_in_words(significant: bool, regressed: int, fixed: int, test: Equivalence) -> str:
    """better / worse (significant McNemar), equivalent within ±m, or inconclusive — in that order."""
    if significant and fixed != regressed:
        return "better" if fixed > regressed else "worse"
    if test.equivalent:
        return f"equivalent within ±{test.margin_points:g}"
    return INCONCLUSIVE


class PackDelta(BaseModel):
    """How one pack moved between A and B, over the scenarios both runs have."""

    pack_id: str
    shared: int
    passed_a: int
    passed_b: int
    wilson_a: tuple[float, float]
    wilson_b: tuple[float, float]
    score_a: float | None
    score_b: float | None
    fixed: int = Field(description="failed in A, pass in B")
    regressed: int = Field(description="passed in A, fail in B")
    p_value: float = Field(description="exact two-sided McNemar over this pack's shared scenarios")
    significant: bool
    equivalence: Equivalence

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom, unsupported by mypy
    @property
    def verdict(self) -> str:
        """This pack alone: few scenarios per pack usually leave it inconclusive, and say so."""
        return verdict_in_words(self.significant, self.regressed, self.fixed, self.equivalence)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom, unsupported by mypy
    @property
    def pass_delta(self) -> int:
        return self.passed_b - self.passed_a

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom, unsupported by mypy
    @property
    def score_delta(self) -> float | None:
        return None if self.score_a is None or self.score_b is None else self.score_b - self.score_a


class Comparison(BaseModel):
    """A versus B: per-scenario movement, per-pack deltas and the paired significance test."""

    label_a: str
    label_b: str
    alpha: float
    fixed: list[ScenarioKey] = Field(description="failed in A, pass in B")
    regressed: list[ScenarioKey] = Field(description="passed in A, fail in B")
    stable_pass: list[ScenarioKey]
    stable_fail: list[ScenarioKey]
    only_in_a: list[ScenarioKey]
    only_in_b: list[ScenarioKey]
    pack_deltas: list[PackDelta]
    p_value: float = Field(description="exact two-sided McNemar over shared scenarios")
    significant: bool = Field(description="p_value < alpha")
    equivalence: Equivalence = Field(description="TOST over all shared scenarios")
    gateable: bool = Field(description="both runs canonical")
    notes: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom, unsupported by mypy
    @property
    def verdict(self) -> str:
        """better, worse, equivalent within ±m, or inconclusive (need more scenarios)."""
        return verdict_in_words(self.significant, len(self.regressed), len(self.fixed), self.equivalence)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom, unsupported by mypy
    @property
    def significant_regression(self) -> bool:
        """More regressions than fixes, significantly so. Meaningful only when gateable."""
        return self.significant and len(self.regressed) > len(self.fixed)


def compare(a: OutcomeSet, b: OutcomeSet, alpha: float = DEFAULT_ALPHA,
            margin_points: float = DEFAULT_MARGIN_POINTS) -> Comparison:
    """Compare run B against reference A scenario by scenario (majority verdicts); equivalence within ±margin."""
    if not 0 < alpha <= 0.5:
        raise ValueError(f"alpha must be in (0, 0.5], got {alpha}")
    if not 0 < margin_points < 100:
        raise ValueError(f"margin must be in (0, 100) percentage points, got {margin_points}")
    va, vb = a.verdicts(), b.verdicts()
    shared = sorted(va.keys() & vb.keys())
    fixed = [k for k in shared if not va[k] and vb[k]]
    regressed = [k for k in shared if va[k] and not vb[k]]
    p_value = mcnemar_exact(len(regressed), len(fixed))
    notes = []
    for label, run in (("A", a), ("B", b)):
        if not run.canonical:
            notes.append(f"{label} ({run.label}) is non-canonical: the comparison is informational and cannot gate")
    if len(shared) < MIN_OVERLAP * len(va):
        notes.append(f"only {len(shared)} of {len(va)} scenarios of A were run in B: too few to judge a regression")
    if a.thinking_mode != b.thinking_mode:
        notes.append(f"thinking mode differs: A {a.thinking_mode}, B {b.thinking_mode}")
    for pack in sorted(a.pack_versions.keys() & b.pack_versions.keys()):
        if a.pack_versions[pack] != b.pack_versions[pack]:
            notes.append(f"pack {pack} version differs: A {a.pack_versions[pack]}, B {b.pack_versions[pack]}")
    return Comparison(
        label_a=a.label, label_b=b.label, alpha=alpha, fixed=fixed, regressed=regressed,
        stable_pass=[k for k in shared if va[k] and vb[k]],
        stable_fail=[k for k in shared if not va[k] and not vb[k]],
        only_in_a=sorted(va.keys() - vb.keys()), only_in_b=sorted(vb.keys() - va.keys()),
        pack_deltas=_pack_deltas(shared, va, vb, a.pack_scores, b.pack_scores, alpha, margin_points),
        p_value=p_value, significant=p_value < alpha,
        equivalence=equivalence(len(regressed), len(fixed), len(shared), margin_points, alpha),
        gateable=a.canonical and b.canonical, notes=notes)


def _pack_deltas(shared: list[ScenarioKey], va: dict[ScenarioKey, bool], vb: dict[ScenarioKey, bool],
                 scores_a: dict[str, float], scores_b: dict[str, float], alpha: float,
                 margin_points: float) -> list[PackDelta]:
    deltas = []
    for pack in sorted({k[0] for k in shared}):
        keys = [k for k in shared if k[0] == pack]
        passed_a, passed_b = sum(va[k] for k in keys), sum(vb[k] for k in keys)
        fixed = sum(1 for k in keys if vb[k] and not va[k])
        regressed = sum(1 for k in keys if va[k] and not vb[k])
        p_value = mcnemar_exact(regressed, fixed)
        deltas.append(PackDelta(pack_id=pack, shared=len(keys), passed_a=passed_a, passed_b=passed_b,
                                wilson_a=wilson_interval(passed_a, len(keys)),
                                wilson_b=wilson_interval(passed_b, len(keys)),
                                score_a=scores_a.get(pack), score_b=scores_b.get(pack),
                                fixed=fixed, regressed=regressed, p_value=p_value, significant=p_value < alpha,
                                equivalence=equivalence(regressed, fixed, len(keys), margin_points, alpha)))
    return deltas


def regression_gate(comparison: Comparison, min_overlap: float = MIN_OVERLAP) -> bool:
    """True when B significantly regressed against A; refuses (ComparisonError) unless both are canonical
    and share enough scenarios: a test over 6 of 75 scenarios says nothing about the other 69."""
    if not comparison.gateable:
        raise ComparisonError(f"cannot gate {comparison.label_b} against {comparison.label_a}: "
                              "a non-canonical run (sampling not controlled by the harness) cannot gate")
    shared = len(comparison.fixed) + len(comparison.regressed) + len(comparison.stable_pass) + len(
        comparison.stable_fail)
    reference = shared + len(comparison.only_in_a)
    if shared == 0 or shared < min_overlap * reference:
        raise ComparisonError(f"cannot judge: {shared} of {reference} scenarios of {comparison.label_a} were run in "
                              f"{comparison.label_b} (at least {min_overlap:.0%} must be shared to gate)")
    return comparison.significant_regression


def _names(keys: list[ScenarioKey], limit: int = 20) -> str:
    shown = ", ".join(f"{pack}/{sid}" for pack, sid in keys[:limit])
    return shown + (f", … (+{len(keys) - limit})" if len(keys) > limit else "") if keys else "-"


def _fmt_score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def format_comparison(comparison: Comparison) -> str:
    """Human-readable report: per-pack table, scenario lists, the test and its decision."""
    rows = []
    for d in comparison.pack_deltas:
        delta = d.score_delta
        rows.append([d.pack_id, d.shared, f"{d.passed_a}/{d.shared}", f"{d.passed_b}/{d.shared}",
                     f"{d.pass_delta:+d}", _fmt_score(d.score_a), _fmt_score(d.score_b),
                     "n/a" if delta is None else f"{delta:+.1f}", d.verdict])
    table = tabulate(rows, headers=["pack", "shared", "A pass", "B pass", "Δ pass", "A score", "B score", "Δ score",
                                    "verdict"],
                     disable_numparse=True)  # keep the explicit +/- signs
    c = comparison
    significance = "significant" if c.significant else "not significant"
    lines = [f"A: {c.label_a}", f"B: {c.label_b}", "", table, "",
             f"fixed ({len(c.fixed)}): {_names(c.fixed)}",
             f"regressed ({len(c.regressed)}): {_names(c.regressed)}",
             f"stable: {len(c.stable_pass)} pass, {len(c.stable_fail)} fail",
             f"McNemar exact p = {c.p_value:.4g} ({significance} at alpha {c.alpha:g})",
             _format_equivalence(c.equivalence),
             f"verdict: {c.verdict}{_verdict_reason(c)}"]
    if c.only_in_a or c.only_in_b:
        lines.append(f"not compared: {len(c.only_in_a)} only in A, {len(c.only_in_b)} only in B")
    lines += [f"note: {note}" for note in c.notes]
    return "\n".join(lines)


def _format_equivalence(e: Equivalence) -> str:
    return (f"B - A = {e.difference_points:+.1f} points, {e.confidence:.0%} CI {e.ci_low_points:+.1f} to "
            f"{e.ci_high_points:+.1f} (Tango score); TOST within ±{e.margin_points:g}: p = {e.p_value:.4g}")


def _verdict_reason(c: Comparison) -> str:
    """Why the verdict holds, when the word alone would raise the question."""
    e = c.equivalence
    shared = len(c.fixed) + len(c.regressed) + len(c.stable_pass) + len(c.stable_fail)
    if c.verdict == INCONCLUSIVE:
        if shared < e.min_shared:
            return (f": {shared} shared scenarios; showing equivalence within ±{e.margin_points:g} takes at least "
                    f"{e.min_shared}, and more if any scenario changes verdict")
        return f": the {e.confidence:.0%} CI reaches beyond ±{e.margin_points:g} points"
    if c.verdict in ("better", "worse") and e.equivalent:
        return f" (significant, yet within ±{e.margin_points:g} points)"
    return ""
