"""AnswerMatch: one short answer compared to accepted answers (exact, contains, regex, numeric)."""

from __future__ import annotations

import re
from typing import Literal

from harness.packs.schema import Check, Reply, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, short
from harness.packs.verifiers.reason_math import answer_lines, same_answer


class Spec(SpecModel):
    type: Literal["answer_match"]
    answers: list[str] = []
    mode: Literal["exact", "contains", "regex", "numeric"] = "exact"
    tolerance: float = 1e-6
    asserts: list[dict] = []


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    """Match the ANSWER: line if there is one, else the whole reply."""
    spec = Spec.model_validate(scenario.verifier.model_dump())
    answers = spec.answers or ([str(scenario.expected)] if scenario.expected is not None else [])
    lines = answer_lines(reply.content)
    given = lines[-1] if lines else reply.content.strip()
    if not given:
        return Verdict(score=0, failure_mode="no_answer_found", detail="empty answer")
    if spec.mode == "exact":
        ok = any(" ".join(a.casefold().split()) == " ".join(given.casefold().rstrip(".").split()) for a in answers)
    elif spec.mode == "contains":
        ok = any(a.casefold() in given.casefold() for a in answers)
    elif spec.mode == "regex":
        ok = any(re.search(a, given, re.IGNORECASE) for a in answers)
    else:
        ok = any(same_answer(a, given, spec.tolerance) for a in answers)
    return Verdict(score=100.0 if ok else 0.0, failure_mode="passed" if ok else "wrong_answer",
                   detail=f"answered {short(given)!r}" + ("" if ok else f", accepted {answers[:3]}"),
                   checks=[Check(name=f"{spec.mode} match", ok=bool(ok))])
