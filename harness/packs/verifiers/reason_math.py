"""ReasonMath: the last ``ANSWER:`` line is the answer; intermediate checkpoints are diagnostics.

Answers compare as numbers when both sides read as numbers (commas, $, % and a/b fractions
understood), else as case-folded text against the canonical answer and accepted variants.
Multi-value answers use ``key=value`` pairs and score the share of keys right. Disagreeing
ANSWER lines are flagged as inconsistent (the last one still counts).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Literal

from harness.packs.schema import Check, FailureMode, Reply, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, short

_ANSWER_RE = re.compile(r"^[\s>*_#-]*answer[\s*_]*[:：]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


class Spec(SpecModel):
    type: Literal["reason_math"]
    answer: str | None = None
    accept: list[str] = []
    values: dict[str, str | float | int] = {}
    tolerance: float = 1e-6
    checkpoints: list[str] = []
    asserts: list[dict] = []


def answer_lines(text: str) -> list[str]:
    """Every ANSWER: line's value, in order."""
    return [m.group(1).strip().strip("*_`").strip() for m in _ANSWER_RE.finditer(text)]


def _normal_text(value: str) -> str:
    return " ".join(value.strip().strip("*_`$").rstrip(".").casefold().split())


def _as_number(value: str) -> float | None:
    text = value.strip().strip("*_`").rstrip(".").replace(",", "").replace("$", "").replace("%", "").strip()
    text = re.sub(r"\s*(units?|items?|km|m|kg|hours?|minutes?|days?|dollars?|cm|apples|people|°c)$", "", text,
                  flags=re.IGNORECASE)
    try:
        return float(Fraction(text.replace(" ", "")))
    except (ValueError, ZeroDivisionError):
        return None


def same_answer(expected: str | float, given: str, tolerance: float) -> bool:
    """Numeric comparison when both read as numbers, else normalised text equality."""
    want_number = _as_number(str(expected))
    got_number = _as_number(given)
    if want_number is not None and got_number is not None:
        return abs(want_number - got_number) <= tolerance
    return _normal_text(str(expected)) == _normal_text(given)


def _pairs(text: str) -> dict[str, str]:
    return {k.strip().casefold(): v.strip() for k, v in re.findall(r"([A-Za-z_][\w ]*?)\s*=\s*([^,;=]+)", text)}


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    """Score the last ANSWER line; record checkpoints and consistency as diagnostics."""
    spec = Spec.model_validate(scenario.verifier.model_dump())
    text = reply.content
    lines = answer_lines(text)
    checks = [Check(name=f"checkpoint {point!r} shown", ok=point.casefold() in text.casefold())
              for point in spec.checkpoints]
    if not lines:
        return Verdict(score=0, failure_mode="no_answer_found", detail=f"no 'ANSWER:' line in {short(text)!r}",
                       checks=checks)
    final = lines[-1]
    consistent = len({_normal_text(line) for line in lines}) == 1
    checks.append(Check(name="ANSWER lines consistent", ok=consistent,
                        detail="" if consistent else f"inconsistent: {lines}"))
    if spec.values:
        given = _pairs(final)
        right = [k for k, v in spec.values.items() if k.casefold() in given
                 and same_answer(v, given[k.casefold()], spec.tolerance)]
        checks += [Check(name=f"{k} = {v}", ok=k in right, detail=given.get(k.casefold(), "missing"))
                   for k, v in spec.values.items()]
        score = 100.0 * len(right) / len(spec.values)
        detail = f"{len(right)}/{len(spec.values)} values right in {final!r}"
    else:
        variants = [spec.answer or str(scenario.expected)] + spec.accept
        ok = any(same_answer(v, final, spec.tolerance) for v in variants)
        score = 100.0 if ok else 0.0
        detail = f"answered {final!r}" + ("" if ok else f", expected {variants[0]!r}")
    mode: FailureMode
    if score >= 85:
        mode = "passed"
    else:
        mode = "wrong_answer"
    if not consistent:
        detail += " (inconsistent ANSWER lines)"
    return Verdict(score=score, failure_mode=mode, detail=detail, checks=checks)
