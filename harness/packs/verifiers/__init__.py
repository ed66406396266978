"""Verifier registry: type name -> module with a pydantic ``Spec`` and a pure ``verify``.

``judge`` is the one entry point: it applies the rules every verifier shares (an empty reply
is ``no_answer_found``; a content failure cut off by ``finish_reason=length`` is
``token_limit``) around the type-specific verdict.
"""

from __future__ import annotations

from types import ModuleType

from harness.packs.schema import Reply, Scenario, Verdict
from harness.packs.verifiers import (
    answer_match,
    benchlocal_asserts,
    data_extract,
    instruct_follow,
    reason_math,
    rubric,
    sandbox_state,
    struct_output,
    tool_call,
    world_state,
)

VERIFIERS: dict[str, ModuleType] = {
    "tool_call": tool_call,
    "instruct_follow": instruct_follow,
    "struct_output": struct_output,
    "reason_math": reason_math,
    "data_extract": data_extract,
    "answer_match": answer_match,
    "sandbox": sandbox_state,
    "rubric": rubric,
    "world": world_state,
    "benchlocal": benchlocal_asserts,  # imported BenchLocal packs, upstream pass rules
}


def judge(scenario: Scenario, reply: Reply) -> Verdict:
    """The verdict on one reply: the scenario's verifier plus the shared empty/truncated rules.
    A sandboxed reply is judged by the state it left (an empty reply can still have acted)."""
    module = VERIFIERS[scenario.verifier.type]
    if not reply.content.strip() and not reply.tool_calls and reply.sandbox is None and reply.world is None:
        verdict = Verdict(score=0, failure_mode="no_answer_found", detail="empty reply (no content, no tool calls)")
    else:
        verdict = module.verify(scenario, reply)
    if verdict.failure_mode != "passed" and reply.finish_reason == "length":
        verdict = verdict.model_copy(update={
            "failure_mode": "token_limit", "detail": f"cut off at max_tokens (finish_reason=length); {verdict.detail}"})
    return verdict
