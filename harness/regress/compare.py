"""Comparing two runs scenario by scenario: fixed, regressed, stable, and whether it matters.

The input is an ``OutcomeSet`` (see ``outcomes``), deliberately independent of the result
file formats, so the statistics never depend on how a result file happens to be laid out.

A difference is called significant with the exact McNemar test over the scenarios both runs
share (only fixed/regressed pairs count). Only canonical runs (greedy, harness-controlled
sampling) may gate: with sampled decoding a "regression" can be noise we cannot pair.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, computed_field
from tabulate import tabulate

from harness.errors import ComparisonError
from harness.regress.outcomes import OutcomeSet, ScenarioKey
from harness.stats import mcnemar_exact, wilson_interval

DEFAULT_ALPHA = 0.05
MIN_OVERLAP = 0.8  # share of the reference's scenarios a fresh run must cover to gate


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
    gateable: bool = Field(description="both runs canonical")
    notes: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom, unsupported by mypy
    @property
    def significant_regression(self) -> bool:
        """More regressions than fixes, significantly so. Meaningful only when gateable."""
        return self.significant and len(self.regressed) > len(self.fixed)


def compare(a: OutcomeSet, b: OutcomeSet, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Compare run B against reference A scenario by scenario (majority verdicts)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
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
        pack_deltas=_pack_deltas(shared, va, vb, a.pack_scores, b.pack_scores),
        p_value=p_value, significant=p_value < alpha, gateable=a.canonical and b.canonical, notes=notes)


def _pack_deltas(shared: list[ScenarioKey], va: dict[ScenarioKey, bool], vb: dict[ScenarioKey, bool],
                 scores_a: dict[str, float], scores_b: dict[str, float]) -> list[PackDelta]:
    deltas = []
    for pack in sorted({k[0] for k in shared}):
        keys = [k for k in shared if k[0] == pack]
        passed_a, passed_b = sum(va[k] for k in keys), sum(vb[k] for k in keys)
        deltas.append(PackDelta(pack_id=pack, shared=len(keys), passed_a=passed_a, passed_b=passed_b,
                                wilson_a=wilson_interval(passed_a, len(keys)),
                                wilson_b=wilson_interval(passed_b, len(keys)),
                                score_a=scores_a.get(pack), score_b=scores_b.get(pack)))
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
                     "n/a" if delta is None else f"{delta:+.1f}"])
    table = tabulate(rows, headers=["pack", "shared", "A pass", "B pass", "Δ pass", "A score", "B score", "Δ score"],
                     disable_numparse=True)  # keep the explicit +/- signs
    c = comparison
    verdict = "significant" if c.significant else "not significant"
    lines = [f"A: {c.label_a}", f"B: {c.label_b}", "", table, "",
             f"fixed ({len(c.fixed)}): {_names(c.fixed)}",
             f"regressed ({len(c.regressed)}): {_names(c.regressed)}",
             f"stable: {len(c.stable_pass)} pass, {len(c.stable_fail)} fail",
             f"McNemar exact p = {c.p_value:.4g} ({verdict} at alpha {c.alpha:g})"]
    if c.only_in_a or c.only_in_b:
        lines.append(f"not compared: {len(c.only_in_a)} only in A, {len(c.only_in_b)} only in B")
    lines += [f"note: {note}" for note in c.notes]
    return "\n".join(lines)
