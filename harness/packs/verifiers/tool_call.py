"""ToolCall: did the model call the right tools, with the right arguments, in the right order?

Each assert is one check over the recorded tool calls and the final answer. Asserts marked
``core`` (the default) decide 0 points; the others separate a precise answer (2 points) from
a roughly right one (1 point). Points map to 100/50/0.
"""

from __future__ import annotations

from typing import Any, Literal

from harness.packs.schema import Check, Reply, Scenario, ToolCallRecord, Verdict
from harness.packs.verifiers._common import SpecModel, match_value, short

POINTS_TO_SCORE = {2: 100.0, 1: 50.0, 0: 0.0}


class ToolAssert(SpecModel):
    check: Literal["called", "not_called", "no_tool_calls", "call_order", "max_calls",
                   "final_contains", "final_not_contains"]
    name: str | None = None
    names: list[str] = []
    args: dict[str, Any] = {}
    n: int | None = None
    any: list[str] = []
    core: bool = True


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


def _run(a: ToolAssert, reply: Reply) -> Check:
    calls, final = reply.tool_calls, reply.content.casefold()
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
        ok = len(calls) <= (a.n or 0)
        return Check(name=f"at most {a.n} tool calls", ok=ok, detail="" if ok else f"made {len(calls)}")
    hit = [text for text in a.any if text.casefold() in final]
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
