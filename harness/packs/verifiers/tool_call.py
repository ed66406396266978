"""ToolCall: did the model call the right tools, with the right arguments, in the right order?

Each assert is one check over the recorded tool calls and the final answer. Asserts marked
``core`` (the default) decide 0 points; the others separate a precise answer (2 points) from
a roughly right one (1 point). Points map to 100/50/0.

``max_calls`` with a ``name`` bounds the calls of that one tool (a side effect such as an
email must happen once). Final-answer checks read the answer with typography made plain;
``final_regex``/``final_not_regex`` describe a meaning in several phrasings, and
``final_quantity`` wants a number written with its unit ("18 °C", not "18 °F").
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import model_validator

from harness.packs.schema import Check, Reply, Scenario, ToolCallRecord, Verdict
from harness.packs.verifiers._common import SpecModel, match_value, numbers_close, plain_text, short
from harness.packs.verifiers._units import UNITS, quantities, same_unit

POINTS_TO_SCORE = {2: 100.0, 1: 50.0, 0: 0.0}


class ToolAssert(SpecModel):
    check: Literal["called", "not_called", "no_tool_calls", "call_order", "max_calls",
                   "final_contains", "final_not_contains", "final_regex", "final_not_regex", "final_quantity"]
    name: str | None = None
    names: list[str] = []
    args: dict[str, Any] = {}
    n: int | None = None
    any: list[str] = []
    pattern: str | None = None
    value: float | None = None
    unit: str | None = None
    label: str | None = None
    core: bool = True

    @model_validator(mode="after")
    def _quantity_is_complete(self) -> ToolAssert:
        unknown_unit = self.unit is not None and self.unit not in UNITS
        if self.check == "final_quantity" and (self.value is None or unknown_unit):
            raise ValueError(f"final_quantity needs a value and a known unit ({', '.join(UNITS)})")
        return self


class Spec(SpecModel):
    type: Literal["tool_call"]
    asserts: list[ToolAssert]


def _describe_calls(calls: list[ToolCallRecord]) -> str:
    return ", ".join(f"{c.name}({short(str(c.arguments), 40)})" for c in calls) or "no tool calls"


def _args_match(wanted: dict[str, Any], call: ToolCallRecord) -> bool:
    args = call.arguments if isinstance(call.arguments, dict) else {}
    return all(match_value(matcher, args.get(key)) for key, matcher in wanted.items())


def _order_ok(names: list[str], calls: list[ToolCallRecord]) -> bool:
    made = iter(c.name for c in calls)
    return all(any(name == m for m in made) for name in names)


def _quantity_check(a: ToolAssert, final: str) -> Check:
    """The value must appear with the wanted unit (or with none), and never with another unit."""
    label = a.label or f"final answer states {a.value:g} {a.unit or ''}".rstrip()
    hits = [q for q in quantities(final) if numbers_close(q.value, a.value, 0.005)]
    wrong = [q for q in hits if a.unit and q.unit is not None and not same_unit(a.unit, q.unit)]
    if wrong:
        return Check(name=label, ok=False, detail=f"says {final[wrong[0].start:wrong[0].end + 4]!r}: another unit")
    return Check(name=label, ok=bool(hits), detail="" if hits else f"final answer: {short(final) or '(empty)'!r}")


def _run(a: ToolAssert, reply: Reply) -> Check:
    calls, final = reply.tool_calls, plain_text(reply.content).casefold()
    if a.check == "called":
        named = [c for c in calls if c.name == a.name]
        ok = any(_args_match(a.args, c) for c in named)
        label = f"calls {a.name}" + (f" with {short(str(a.args), 50)}" if a.args else "")
        detail = "" if ok else (f"{a.name} called with other arguments: {_describe_calls(named)}" if named
                                else f"never called; made: {_describe_calls(calls)}")
        return Check(name=label, ok=ok, detail=detail)
    if a.check == "not_called":
        ok = all(c.name != a.name for c in calls)
        return Check(name=f"does not call {a.name}", ok=ok, detail="" if ok else "it was called")
    if a.check == "no_tool_calls":
        return Check(name="answers without tools", ok=not calls, detail="" if not calls else _describe_calls(calls))
    if a.check == "call_order":
        ok = _order_ok(a.names, calls)
        return Check(name=f"calls in order {' → '.join(a.names)}", ok=ok,
                     detail="" if ok else f"made: {' → '.join(c.name for c in calls) or 'none'}")
    if a.check == "max_calls":
        counted = [c for c in calls if a.name is None or c.name == a.name]
        ok = len(counted) <= (a.n or 0)
        what = f"{a.name} calls" if a.name else "tool calls"
        return Check(name=f"at most {a.n} {what}", ok=ok, detail="" if ok else f"made {len(counted)}")
    if a.check == "final_quantity":
        return _quantity_check(a, plain_text(reply.content))
    if a.check in ("final_regex", "final_not_regex"):
        found = re.search(a.pattern or "", final, re.IGNORECASE | re.MULTILINE)
        ok = (found is not None) == (a.check == "final_regex")
        verb = "matches" if a.check == "final_regex" else "avoids"
        name = a.label or f"final answer {verb} /{short(a.pattern or '', 40)}/"
        said = f"final answer: {short(reply.content) or '(empty)'!r}"
        detail = "" if ok else (f"says {found.group(0)!r}" if found else said)
        return Check(name=name, ok=ok, detail=detail)
    hit = [text for text in a.any if plain_text(text).casefold() in final]
    if a.check == "final_contains":
        return Check(name=f"final answer mentions one of {a.any}", ok=bool(hit),
                     detail="" if hit else f"final answer: {short(reply.content) or '(empty)'!r}")
    return Check(name=f"final answer avoids {a.any}", ok=not hit, detail="" if not hit else f"says {hit[0]!r}")


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    """Score the recorded tool calls and final answer against the scenario's asserts."""
    spec = Spec.model_validate(scenario.verifier.model_dump())
    checks = [(a, _run(a, reply)) for a in spec.asserts]
    core_ok = all(c.ok for a, c in checks if a.core)
    all_ok = all(c.ok for _, c in checks)
    points = 2 if all_ok else 1 if core_ok else 0
    failed = [c for _, c in checks if not c.ok]
    detail = f"{points}/2 points" + ("" if not failed else "; " + "; ".join(
        f"{c.name}: {c.detail}" if c.detail else c.name for c in failed))
    return Verdict(score=POINTS_TO_SCORE[points], failure_mode="passed" if points == 2 else "verifier_fail",
                   detail=detail, checks=[c for _, c in checks])
