"""Rubric: a score from an LLM judge, only where no deterministic check can decide (plans, comparisons).

Pure over what the run recorded: the gate asserts (sandbox syntax) over the sandbox evidence,
and the judge's parsed scores stored on the reply. A judge that failed or whose reply did not
parse is ``judge_error`` -- never a score. The rubric itself (criteria with 1-5 anchors, the
evidence the judge sees, graded references for calibration) is pack data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from harness.packs.schema import Check, Reply, SandboxEvidence, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel
from harness.packs.verifiers.sandbox_state import SandboxAssert, evaluate
from harness.packs.verifiers.sandbox_state import Spec as SandboxSpec

SCORES = ("1", "2", "3", "4", "5")


class Criterion(SpecModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    anchors: dict[str, str] = Field(description="what a 1, 2, 3, 4 and 5 look like")

    @field_validator("anchors")
    @classmethod
    def _every_score(cls, anchors: dict[str, str]) -> dict[str, str]:
        if sorted(anchors) != list(SCORES) or not all(text.strip() for text in anchors.values()):
            raise ValueError("anchors needs a non-empty text for each of 1, 2, 3, 4, 5")
        return anchors


class Reference(SpecModel):
    grade: Literal["strong", "weak"]
    answer: str = ""
    files: dict[str, str] = {}


class Rubric(SpecModel):
    criteria: list[Criterion] = Field(min_length=1, max_length=8)
    evidence: list[str] = Field(min_length=1, description='"answer" and/or "file:PATH" (the final workspace)')
    references: list[Reference] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        ids = [c.id for c in self.criteria]
        if len(set(ids)) != len(ids):
            raise ValueError("criteria ids must be unique")
        for item in self.evidence:
            if item != "answer" and not (item.startswith("file:") and len(item) > 5):
                raise ValueError(f"evidence {item!r}: use \"answer\" or \"file:PATH\"")
        if {r.grade for r in self.references} != {"strong", "weak"}:
            raise ValueError("references need a strong and a weak answer (for calibration)")
        return self


class Spec(SpecModel):
    type: Literal["rubric"]
    asserts: list[SandboxAssert] = []
    rubric: Rubric


def gate_checks(spec: Spec, evidence: SandboxEvidence | None) -> list[Check]:
    """The deterministic gates (a plan that was never written is not judged)."""
    if not spec.asserts:
        return []
    if evidence is None:
        return [Check(name="gates", ok=False, detail="no sandbox evidence recorded")]
    sandbox_spec = SandboxSpec.model_validate({"type": "sandbox", "asserts": [
        a.model_dump(by_alias=True, exclude_unset=True) for a in spec.asserts]})
    return [check for a, check in evaluate(sandbox_spec, evidence) if a.core]


def score_of(scores: dict[str, float]) -> float:
    """A 1-5 mean mapped onto 0-100 (1 -> 0, 5 -> 100)."""
    mean = sum(scores.values()) / len(scores)
    return round((mean - 1) / 4 * 100, 1)


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    spec = Spec.model_validate(scenario.verifier.model_dump())
    gates = gate_checks(spec, reply.sandbox)
    failed = [c for c in gates if not c.ok]
    if failed:
        detail = "; ".join(f"{c.name}: {c.detail}" if c.detail else c.name for c in failed[:3])
        return Verdict(score=0, failure_mode="verifier_fail", detail=f"not judged: failed {detail}", checks=gates)
    judgement = reply.judgement
    if judgement is None:
        return Verdict(score=0, failure_mode="judge_error", detail="no judgement recorded (run with --judge PROFILE)",
                       checks=gates)
    if judgement.error is not None:
        return Verdict(score=0, failure_mode="judge_error", detail=f"judge {judgement.judge_model}: {judgement.error}",
                       checks=gates)
    checks = gates + [Check(name=f"judged {c.id}", ok=judgement.scores[c.id] >= 4,
                            detail=f"{judgement.scores[c.id]:g}/5" + (" (clamped)" if c.id in judgement.clamped
                                                                    else ""))
                      for c in spec.rubric.criteria]
    score = score_of({c.id: judgement.scores[c.id] for c in spec.rubric.criteria})
    mean = sum(judgement.scores[c.id] for c in spec.rubric.criteria) / len(spec.rubric.criteria)
    verdict = Verdict(score=score, failure_mode="passed", detail=f"judged {mean:.2f}/5 by {judgement.judge_model}",
                      checks=checks)
    if verdict.status != "pass":
        verdict = verdict.model_copy(update={"failure_mode": "verifier_fail"})
    return verdict
