"""World: judge the state an agent left in the mock services (``harness.packs.world``), not what it said.

Pure over the recorded evidence (memory, jobs, artifacts, outbox and the calls the services
served, plus the submitted status and answer), so a stored run rescores as it was judged.
Asserts count records that match field conditions, check the order of successful calls, the
answer text and the submitted status. Scoring as the sandbox verifier: every core assert
passing is 100; otherwise the best ``credit`` a passing assert carries, else 0.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.packs.schema import Check, Reply, Scenario, Verdict, WorldEvidence
from harness.packs.verifiers._common import SpecModel, short, values_equal
from harness.packs.verifiers.sandbox_state import STATUSES, answer_check, submitted_check, verdict_of

COLLECTIONS = ("memory", "jobs", "artifacts", "outbox", "calls")
_FIELD_OPS = ("equals", "contains", "not_contains", "regex", "one_of")
_MISSING = object()


class Count(SpecModel):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> Count:
        if self.min is None and self.max is None:
            raise ValueError("a count range needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"count min {self.min} is above max {self.max}")
        return self


class WorldAssert(SpecModel):
    check: Literal["records", "sequence", "answer", "submitted"]
    name: str | None = None
    core: bool = True
    credit: float | None = Field(default=None, gt=0, lt=85, description="score when core fails but this passes")
    in_: Literal["memory", "jobs", "artifacts", "outbox", "calls"] | None = Field(default=None, alias="in")
    where: dict[str, dict[str, Any]] = Field(default={}, description="field (dotted path) -> {op: value}")
    count: int | Count | None = Field(default=None, description="exact count or {min, max}; default at least 1")
    tools: list[str] = []
    contains: str | None = None
    not_contains: str | None = None
    regex: str | None = None
    status: Literal["done", "no_change", "impossible", "unsafe"] | None = None

    model_config = SpecModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _fits_check(self) -> WorldAssert:
        given = self.model_fields_set
        belongs = {"records": {"in_", "where", "count"}, "sequence": {"tools"},
                   "answer": {"contains", "not_contains", "regex"}, "submitted": {"status"}}
        stray = sorted(given - belongs[self.check] - {"check", "name", "core", "credit"})
        if stray:
            raise ValueError(f"a {self.check} assert does not take {', '.join(f.rstrip('_') for f in stray)}")
        if self.check == "records":
            if self.in_ is None:
                raise ValueError(f"a records assert needs in (one of {', '.join(COLLECTIONS)})")
            if isinstance(self.count, int) and self.count < 0:
                raise ValueError("count must be 0 or more")
            for path, matcher in self.where.items():
                if len(matcher) != 1 or next(iter(matcher)) not in _FIELD_OPS:
                    raise ValueError(f"where.{path}: give exactly one of {', '.join(_FIELD_OPS)}")
                op, expected = next(iter(matcher.items()))
                if op == "one_of" and not isinstance(expected, list):
                    raise ValueError(f"where.{path}: one_of takes a list")
                if op == "regex":
                    _compiles(str(expected))
        elif self.check == "sequence" and not self.tools:
            raise ValueError("a sequence assert needs tools")
        elif self.check == "answer":
            if not given & {"contains", "not_contains", "regex"}:
                raise ValueError("an answer assert needs contains, not_contains or regex")
            if self.regex is not None:
                _compiles(self.regex)
        elif self.check == "submitted" and self.status is None:
            raise ValueError(f"a submitted assert needs status (one of {', '.join(STATUSES)})")
        return self


def _compiles(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regex {pattern!r} does not compile ({exc})") from None


class Spec(SpecModel):
    type: Literal["world"]
    asserts: list[WorldAssert] = Field(min_length=1)


def _field(record: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``arguments.to``), or _MISSING."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _equals(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    return values_equal(expected, actual)


def field_matches(op: str, expected: Any, actual: Any) -> bool:
    """One where-condition: a missing field never matches; contains/not_contains ignore case."""
    if actual is _MISSING:
        return False
    if op == "equals":
        return _equals(expected, actual)
    if op == "one_of":
        return any(_equals(option, actual) for option in expected)
    text = _as_text(actual)
    if text is None:
        return False
    if op == "contains":
        return str(expected).casefold() in text.casefold()
    if op == "not_contains":
        return str(expected).casefold() not in text.casefold()
    if op == "regex":
        return re.search(str(expected), text, re.MULTILINE) is not None
    raise ValueError(op)


def _count_ok(count: int | Count | None, found: int) -> bool:
    if count is None:
        return found >= 1
    if isinstance(count, int):
        return found == count
    return (count.min is None or found >= count.min) and (count.max is None or found <= count.max)


def _count_text(count: int | Count | None) -> str:
    if count is None:
        return "at least 1"
    if isinstance(count, int):
        return str(count)
    if count.min is not None and count.max is not None:
        return str(count.min) if count.min == count.max else f"{count.min} to {count.max}"
    return f"at least {count.min}" if count.min is not None else f"at most {count.max}"


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _label(a: WorldAssert) -> str:
    if a.name:
        return a.name
    if a.check == "records":
        conditions = ", ".join(f"{path} {op.replace('_', ' ')} {short(_value_text(value), 40)}"
                               for path, matcher in a.where.items() for op, value in matcher.items())
        return f"{a.in_}: {_count_text(a.count)} record(s)" + (f" where {conditions}" if conditions else "")
    if a.check == "sequence":
        return "called " + " -> ".join(a.tools) + " in order"
    if a.check == "submitted":
        return f"submitted {a.status}"
    parts = [f"{op.replace('_', ' ')} {short(str(getattr(a, op)), 40)!r}"
             for op in ("contains", "not_contains", "regex") if getattr(a, op) is not None]
    return "answer " + " and ".join(parts)


def _record_text(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


def _records_check(a: WorldAssert, evidence: WorldEvidence) -> tuple[bool, str]:
    records: list[dict[str, Any]] = getattr(evidence, a.in_ or "")
    matched = [r for r in records if all(field_matches(op, value, _field(r, path))
                                         for path, matcher in a.where.items() for op, value in matcher.items())]
    ok = _count_ok(a.count, len(matched))
    if ok:
        return True, f"found {len(matched)}"
    shown = matched if matched else records
    sample = "; ".join(_record_text(r) for r in shown[:4]) + (f" (+{len(shown) - 4} more)" if len(shown) > 4 else "")
    what = "matching" if matched else f"{a.in_} holds"
    return False, f"found {len(matched)}" + (f"; {what}: {short(sample, 160)}" if shown else f"; {a.in_} is empty")


def _sequence_check(a: WorldAssert, evidence: WorldEvidence) -> tuple[bool, str]:
    """The tools were called successfully in this order; other calls may come between."""
    made = [str(call.get("tool")) for call in evidence.calls if call.get("ok")]
    position = 0
    for tool in made:
        if position < len(a.tools) and tool == a.tools[position]:
            position += 1
    ok = position == len(a.tools)
    return ok, "" if ok else f"successful calls: {short(' -> '.join(made), 120) or 'none'}"


def evaluate(spec: Spec, evidence: WorldEvidence) -> list[tuple[WorldAssert, Check]]:
    checks = []
    for a in spec.asserts:
        if a.check == "records":
            ok, detail = _records_check(a, evidence)
        elif a.check == "sequence":
            ok, detail = _sequence_check(a, evidence)
        elif a.check == "submitted":
            ok, detail = submitted_check(a.status, evidence.status)
        else:
            ok, detail = answer_check(a, evidence.answer)
        checks.append((a, Check(name=_label(a), ok=ok, detail=detail)))
    return checks


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    spec = Spec.model_validate(scenario.verifier.model_dump())
    evidence = reply.world
    if evidence is None:
        return Verdict(score=0, failure_mode="no_answer_found", detail="no world evidence recorded")
    results = evaluate(spec, evidence)
    acted = bool(evidence.calls or evidence.status is not None or evidence.answer.strip() or reply.tool_calls)
    return verdict_of(results, acted, reply)
