"""Whether thinking went right: cap hits, silent and contaminated replies, template consistency.

Pure functions over scenario results (no I/O), so ``rescore`` and reports compute the same
numbers from a saved result as the run did:

- **cap hit**: thinking was requested and the reply was cut by ``max_tokens`` (finish_reason
  ``length``) with no answer after the thinking: the budget ran out while the model thought.
- **silent**: thinking was requested and the reply holds none (no reasoning field, no
  ``<think>`` block): the switch did nothing.
- **contaminated**: reasoning leaked into the answer: ``<think>`` tags in the content, or the
  content opens with a reasoning preamble ("Okay, so the user…").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from harness.endpoint.replies import strip_think
from harness.packs.schema import (
    INFRA_FAILURES,
    RunResult,
    ScenarioResult,
    TemplateConsistency,
    ThinkingHealth,
    ThinkingValidity,
)

_THINK_TAG = re.compile(r"</?think>", re.IGNORECASE)
# Openings of a model talking to itself rather than answering; matched at the very start only.
_PREAMBLE = re.compile(
    r"^\s*(okay|ok|alright|hmm+|well)[,.]?\s+(so|let me|let's|i need|i have to|the user)\b"
    r"|^\s*(let me think|let me figure|let me work|i need to figure out|the user (is asking|wants|asked))\b"
    r"|^\s*wait[,.]", re.IGNORECASE)

ReplyThinking = Literal["thought", "silent", "contaminated"]


def classify(raw_content: str, reasoning: str) -> ReplyThinking:
    """One reply of a thinking request: it thought cleanly, produced no thinking, or leaked it."""
    if _THINK_TAG.search(raw_content) or _PREAMBLE.search(raw_content):
        return "contaminated"
    return "thought" if reasoning.strip() else "silent"


def cap_hit(raw_content: str, reasoning: str, finish_reason: str | None) -> bool:
    """Cut by the budget while still thinking: length stop and nothing but thinking in the reply."""
    return finish_reason == "length" and bool(reasoning.strip() or _THINK_TAG.search(raw_content)) \
        and not strip_think(raw_content).strip()


def _answered(results: Iterable[ScenarioResult]) -> list[ScenarioResult]:
    return [r for r in results if r.reply is not None and r.failure_mode not in INFRA_FAILURES]


def validity(with_thinking: int, contaminated: int, replies: int) -> ThinkingValidity:
    if contaminated:
        return "contaminated"
    return "silent" if replies and not with_thinking else "valid"


def health(results: Iterable[ScenarioResult]) -> ThinkingHealth | None:
    """Thinking health over the results whose requests asked for thinking (None when none did)."""
    asked = [r for r in results if r.thinking_requested]
    if not asked:
        return None
    answered = _answered(asked)
    kinds = [classify(r.reply.raw_content, r.reply.reasoning) for r in answered if r.reply is not None]
    hits = sum(cap_hit(r.reply.raw_content, r.reply.reasoning, r.reply.finish_reason)
               for r in answered if r.reply is not None)
    with_thinking = sum(1 for r in answered if r.reply is not None
                        and (r.reply.reasoning.strip() or _THINK_TAG.search(r.reply.raw_content)))
    contaminated = kinds.count("contaminated")
    return ThinkingHealth(
        requested=True, replies=len(answered), with_thinking=with_thinking, cap_hits=hits,
        cap_hit_rate=round(hits / len(answered), 4) if answered else None, silent=kinds.count("silent"),
        contaminated=contaminated, validity=validity(with_thinking, contaminated, len(answered)))


def run_validity(results: Iterable[ScenarioResult]) -> ThinkingValidity:
    """The run's thinking validity: over every reply whose request asked for thinking."""
    summary = health(results)
    return "not_requested" if summary is None else summary.validity


def consistency(results: list[ScenarioResult]) -> TemplateConsistency | None:
    """Per template, whether its instances agree; None unless every scenario names its template
    (``expected.template``, as generated packs such as gsm-30 do)."""
    templates: dict[str, list[bool]] = {}
    for result in results:
        expected = result.scenario.expected
        if not isinstance(expected, dict) or not isinstance(expected.get("template"), str):
            return None
        templates.setdefault(expected["template"], []).append(result.status == "pass")
    if not templates:
        return None
    return TemplateConsistency(templates=len(templates),
                               consistent=sum(len(set(v)) == 1 for v in templates.values()),
                               all_passed=sum(all(v) for v in templates.values()), per_template=templates)


def summary_lines(packs: Iterable[tuple[str, ThinkingHealth | None, TemplateConsistency | None]],
                  run: ThinkingValidity | None) -> str:
    """Text lines for the CLI and the report (empty when nothing to say)."""
    lines = []
    for pack_id, thought, templated in packs:
        if thought is not None:
            rate = "n/a" if thought.cap_hit_rate is None else f"{thought.cap_hit_rate:.0%}"
            lines.append(f"  {pack_id}: thinking {thought.validity} · cap hits {thought.cap_hits}/{thought.replies} "
                         f"({rate}) · silent {thought.silent} · contaminated {thought.contaminated}")
        if templated is not None:
            lines.append(f"  {pack_id}: templates consistent {templated.consistent}/{templated.templates} "
                         f"(all instances passed: {templated.all_passed})")
    if not lines and run in (None, "not_requested"):
        return ""
    head = f"Thinking: {run or 'not_requested'}"
    return "\n".join([head, *lines])


def reasoning_notes(result: RunResult) -> list[str]:
    """Report lines: thinking validity, cap-hit rate and consistency per pack, and packs without data."""
    text = summary_lines([(p.pack_id, p.thinking, p.consistency) for p in result.packs], result.thinking_validity)
    lines = [line.strip() for line in text.splitlines()] if text else []
    return lines + [f"{gone.pack_id}: {gone.status} ({gone.reason}); {gone.how_to_enable}"
                    for gone in result.unavailable]
