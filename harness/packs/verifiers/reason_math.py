"""ReasonMath: the ``ANSWER:`` line is the answer; intermediate checkpoints are diagnostics.

An answer reads as a number when it holds one (commas, $, %, a/b fractions understood), with
an optional short label before it ("remainder = 3", "Maya is 40") and a unit or a qualifier
after it ("120 litres", "2 h (120 min)"). A scenario's ``unit`` names what the number
measures: another spelling of that unit passes, a different quantity ("2 minutes" for hours)
fails. Text answers ("Bob", "INCONSISTENT") may be followed by a short reason. Multi-value
answers use ``key=value`` pairs and score the share of keys right. With ``consistent`` set,
ANSWER lines that disagree fail (an answer that contradicts itself is no answer); without it
the last one counts, as upstream packs expect.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Literal

from pydantic import model_validator

from harness.packs.schema import Check, FailureMode, Reply, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, plain_text, short
from harness.packs.verifiers._units import UNITS, same_unit, unit_at_start

_ANSWER_RE = re.compile(r"^[\s>*_#-]*answer[\s*_]*[:：]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_VALUE_RE = re.compile(r"(?<![\w.^])(-?\d[\d,]*(?:\.\d+)?)(?:\s*/\s*(\d+))?")
_QUALIFIER_START = "(-,;:.[–—"
_HEDGE_RE = re.compile(r"\b(or|either|maybe|perhaps|possibly)\b")


class Spec(SpecModel):
    type: Literal["reason_math"]
    answer: str | None = None
    accept: list[str] = []
    values: dict[str, str | float | int] = {}
    unit: str | None = None
    value_units: dict[str, str] = {}
    consistent: bool = False
    tolerance: float = 1e-6
    checkpoints: list[str] = []
    asserts: list[dict] = []

    @model_validator(mode="after")
    def _units_known(self) -> Spec:
        unknown = [u for u in [self.unit, *self.value_units.values()] if u is not None and u not in UNITS]
        if unknown:
            raise ValueError(f"unknown unit {unknown[0]!r} (known: {', '.join(UNITS)})")
        return self


def answer_lines(text: str) -> list[str]:
    """Every ANSWER: line's value, in order."""
    return [m.group(1).strip().strip("*_`").strip() for m in _ANSWER_RE.finditer(text)]


def _normal_text(value: str) -> str:
    return " ".join(re.sub(r"[*`]", "", plain_text(value)).strip().strip("_$").rstrip(".").casefold().split())


def _quiet_tail(tail: str) -> bool:
    """True when what follows the value is a qualifier, not a second answer or a hedge."""
    tail = tail.strip()
    if not tail:
        return True
    if tail[0] not in _QUALIFIER_START and not tail[0].isalpha():
        return False
    return _HEDGE_RE.search(tail.casefold()) is None


def read_number(value: str) -> tuple[float, str | None] | None:
    """(number, unit key or None) of an answer such as "$10.95", "x = 5 kg", "24.0 km/h (about)";
    None when the answer is not one number."""
    text = re.sub(r"[*`]", "", plain_text(value)).strip().strip("_").strip()
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    match = _VALUE_RE.search(text)
    if match is None:
        return None
    before = text[:match.start()].strip()
    if re.search(r"\d", before) or len(before.split()) > 4:
        return None
    try:
        number = Fraction(match.group(1).replace(",", "")) / Fraction(match.group(2) or 1)
    except (ValueError, ZeroDivisionError):
        return None
    after = text[match.end():]
    unit, used = unit_at_start(after.lstrip())
    tail = after.lstrip()[used:]
    if unit is None and before.casefold().rstrip().endswith(("$", "us$", "usd")):
        unit = "usd"
    if unit is None and tail.strip().startswith("/"):
        return None
    if not _quiet_tail(tail):
        return None
    return float(number), unit


def same_answer(expected: str | float, given: str, tolerance: float, unit: str | None = None) -> bool:
    """Numbers compare as numbers (and, with a unit, the given unit must mean it); text answers
    compare as normalised text, a short reason after the answer allowed."""
    want = read_number(str(expected))
    got = read_number(given)
    if want is not None:
        if got is None or abs(want[0] - got[0]) > tolerance:
            return False
        return unit is None or got[1] is None or same_unit(unit, got[1])
    wanted, said = _normal_text(str(expected)), _normal_text(given)
    if said == wanted:
        return True
    return said.startswith(wanted) and said[len(wanted)] in " " + _QUALIFIER_START \
        and _quiet_tail(said[len(wanted):].lstrip())


def _pairs(text: str) -> dict[str, str]:
    return {k.strip().casefold(): v.strip()
            for k, v in re.findall(r"([A-Za-z_][\w ]*?)\s*[=:]\s*([^,;=]+)", plain_text(text))}


def _agree(spec: Spec, variants: list[str], first: str, second: str) -> bool:
    if spec.values:
        a, b = _pairs(first), _pairs(second)
        return all(k.casefold() in a and k.casefold() in b and same_answer(a[k.casefold()], b[k.casefold()], 1e-9)
                   for k in spec.values)
    right = [any(same_answer(v, line, spec.tolerance, spec.unit) for v in variants) for line in (first, second)]
    return right[0] == right[1] and (right[0] or _normal_text(first) == _normal_text(second))


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    """Score the ANSWER line(s); record checkpoints and consistency as diagnostics."""
    spec = Spec.model_validate(scenario.verifier.model_dump())
    text = reply.content
    lines = answer_lines(text)
    checks = [Check(name=f"checkpoint {point!r} shown", ok=point.casefold() in text.casefold())
              for point in spec.checkpoints]
    if not lines:
        return Verdict(score=0, failure_mode="no_answer_found", detail=f"no 'ANSWER:' line in {short(text)!r}",
                       checks=checks)
    final = lines[-1]
    variants = [spec.answer or str(scenario.expected)] + spec.accept
    consistent = all(_agree(spec, variants, line, final) for line in lines[:-1])
    checks.append(Check(name="ANSWER lines consistent", ok=consistent,
                        detail="" if consistent else f"inconsistent: {lines}"))
    if spec.values:
        given = _pairs(final)
        right = [k for k, v in spec.values.items() if k.casefold() in given
                 and same_answer(v, given[k.casefold()], spec.tolerance, spec.value_units.get(k))]
        checks += [Check(name=f"{k} = {v}", ok=k in right, detail=given.get(k.casefold(), "missing"))
                   for k, v in spec.values.items()]
        score = 100.0 * len(right) / len(spec.values)
        detail = f"{len(right)}/{len(spec.values)} values right in {final!r}"
    else:
        ok = any(same_answer(v, final, spec.tolerance, spec.unit) for v in variants)
        score = 100.0 if ok else 0.0
        detail = f"answered {final!r}" + ("" if ok else f", expected {variants[0]!r}"
                                          + (f" {spec.unit}" if spec.unit else ""))
    if not consistent:
        detail += " (inconsistent ANSWER lines)"
        if spec.consistent:
            score = 0.0
    mode: FailureMode = "passed" if score >= 85 else "wrong_answer"
    return Verdict(score=score, failure_mode=mode, detail=detail, checks=checks)
