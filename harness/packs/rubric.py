"""The rubric judge: ask a judge model to score a reply on a pack's rubric, and calibrate it.

A judge is any endpoint (``--judge PROFILE``). It is shown the task, the evidence the rubric
names (the answer, files of the final workspace) and each criterion with its five anchors, and
must reply with one JSON object of integer scores. Everything it was sent and said is kept
with the verdict. A reply that does not parse is an error, never a guessed score; a score
outside 1-5 is clamped and the clamping recorded. Calibration scores each rubric's graded
reference answers (strong and weak) and says how well the judge tells them apart.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from harness.endpoint.client import EndpointClient, ServerInfo
from harness.packs.schema import Calibration, CalibrationItem, Judgement, Pack, Reply, Scenario
from harness.packs.verifiers import rubric as rubric_verifier
from harness.packs.verifiers._common import json_candidates
from harness.stats import spearman

JUDGE_MAX_TOKENS = 600
JUDGE_TIMEOUT_S = 180.0
_FILE_CHARS = 12_000  # per evidence file: enough for a plan, bounded for a small judge's context
SYSTEM = ("You are a strict, consistent grader. You score a response against a rubric. Judge only what "
          "the evidence shows; do not reward length or confidence. Reply with one JSON object and nothing else.")


@dataclass(frozen=True)
class Judge:
    """An endpoint acting as judge, with the identity recorded beside every score it gives."""

    client: EndpointClient
    info: ServerInfo
    profile: str | None = None

    @property
    def endpoint(self) -> str:
        return self.client.display_url


def rubric_of(scenario: Scenario) -> rubric_verifier.Rubric:
    return rubric_verifier.Spec.model_validate(scenario.verifier.model_dump()).rubric


def task_text(scenario: Scenario) -> str:
    """The task as the model got it (its user messages)."""
    return "\n\n".join(str(m.get("content") or "") for m in scenario.messages if m.get("role") == "user")


def evidence_text(rubric: rubric_verifier.Rubric, answer: str, files: dict[str, str | None]) -> str:
    """The evidence blocks the rubric names, each labelled; an absent file says so."""
    parts = []
    for item in rubric.evidence:
        if item == "answer":
            parts.append(f"### Final answer\n{answer.strip() or '(empty)'}")
        else:
            path = item[5:]
            text = files.get(path)
            body = "(file absent or not text)" if text is None else text[:_FILE_CHARS] + (
                f"\n[cut: {len(text) - _FILE_CHARS} more characters]" if len(text) > _FILE_CHARS else "")
            parts.append(f"### File {path}\n{body}")
    return "\n\n".join(parts)


def judge_messages(scenario: Scenario, evidence: str) -> list[dict[str, Any]]:
    rubric = rubric_of(scenario)
    criteria = []
    for c in rubric.criteria:
        anchors = "\n".join(f"  {score}: {c.anchors[score]}" for score in rubric_verifier.SCORES)
        criteria.append(f"- {c.id}: {c.description}\n{anchors}")
    example = ", ".join(f'"{c.id}": 3' for c in rubric.criteria)
    user = (f"## Task given to the assistant\n{task_text(scenario)}\n\n## Evidence\n{evidence}\n\n"
            f"## Rubric (score each criterion 1-5 using its anchors)\n" + "\n".join(criteria) +
            f'\n\nReply with only: {{"scores": {{{example}}}, "reason": "<one or two sentences>"}}')
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _json_objects(text: str) -> list[Any]:
    """Every JSON value that parses: the verifiers' usual candidates, then each {...} span on its own
    (a judge may write prose with braces around its object; the last object wins)."""
    found = []
    for candidate in json_candidates(text):
        try:
            found.append(json.loads(candidate))
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            found.append(decoder.raw_decode(text, start)[0])
        except ValueError:
            continue
    return found


def parse_scores(text: str, criteria: list[str]) -> tuple[dict[str, float], list[str], str]:
    """(scores clamped to 1-5, clamped criteria, reason) of a judge reply; ValueError says why not."""
    objects = [o for o in _json_objects(text) if isinstance(o, dict) and isinstance(o.get("scores"), dict)]
    if not objects:
        raise ValueError(f"no JSON object with \"scores\" in the reply ({text.strip()[:120]!r})")
    found = objects[-1]
    scores, clamped = {}, []
    for cid in criteria:
        value = found["scores"].get(cid)
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"score for {cid!r} is {value!r}, not a number")
        if not 1 <= value <= 5:
            clamped.append(cid)
            value = min(5.0, max(1.0, float(value)))
        scores[cid] = float(value)
    reason = found.get("reason")
    return scores, clamped, reason if isinstance(reason, str) else ""


def ask(judge: Judge, scenario: Scenario, answer: str, files: dict[str, str | None]) -> Judgement:
    """One judging call: scores, or the error that stands in for them."""
    rubric = rubric_of(scenario)
    messages = judge_messages(scenario, evidence_text(rubric, answer, files))
    payload = {"model": judge.info.model, "messages": messages, "max_tokens": JUDGE_MAX_TOKENS, "temperature": 0}
    started = time.monotonic()
    outcome = judge.client.chat(payload, deadline=started + JUDGE_TIMEOUT_S)
    record = Judgement(judge_model=judge.info.model, judge_endpoint=judge.endpoint, judge_profile=judge.profile,
                       prompt=messages, latency_ms=round(outcome.latency_ms, 1))
    if outcome.reply is None:
        return record.model_copy(update={"error": f"judge request failed: {outcome.failure}: {outcome.error}"})
    record = record.model_copy(update={"reply": outcome.reply.content})
    try:
        scores, clamped, reason = parse_scores(outcome.reply.content, [c.id for c in rubric.criteria])
    except ValueError as exc:
        return record.model_copy(update={"error": f"unparseable judge reply: {exc}"})
    return record.model_copy(update={"scores": scores, "clamped": clamped, "reason": reason})


def judge_reply(judge: Judge, scenario: Scenario, reply: Reply) -> Judgement | None:
    """Judge a finished reply, unless its deterministic gates already failed (None: not asked)."""
    spec = rubric_verifier.Spec.model_validate(scenario.verifier.model_dump())
    if not all(c.ok for c in rubric_verifier.gate_checks(spec, reply.sandbox)):
        return None
    if reply.sandbox is None and not reply.content.strip():
        return None  # nothing to judge: the verdict is no_answer_found
    files = {}
    if reply.sandbox is not None:
        files = {path: state.text for path, state in reply.sandbox.after.items() if state.kind == "file"}
    answer = reply.sandbox.answer if reply.sandbox is not None else reply.content
    return ask(judge, scenario, answer, files)


def calibrate(judge: Judge, packs: list[Pack], progress: Any = None) -> Calibration:
    """Judge every graded reference of the selected rubric scenarios; agreement and rank correlation."""
    items: list[CalibrationItem] = []
    for pack in packs:
        for scenario in pack.scenarios:
            if scenario.verifier.type != "rubric":
                continue
            for reference in rubric_of(scenario).references:
                judgement = ask(judge, scenario, reference.answer, dict(reference.files))
                mean = (round(sum(judgement.scores.values()) / len(judgement.scores), 3)
                        if judgement.error is None else None)
                items.append(CalibrationItem(pack_id=pack.meta.id, scenario_id=scenario.id, grade=reference.grade,
                                             judged_mean=mean, error=judgement.error))
                if progress:
                    progress(f"calibrate {pack.meta.id}/{scenario.id} {reference.grade}: "
                             f"{mean if mean is not None else judgement.error}")
    return summarise(items)


def summarise(items: list[CalibrationItem]) -> Calibration:
    """Per task: does the judge score every strong reference above every weak one; overall: Spearman."""
    tasks = separated = 0
    for key in sorted({(i.pack_id, i.scenario_id) for i in items}):
        mine = [(i.grade, i.judged_mean) for i in items
                if (i.pack_id, i.scenario_id) == key and i.judged_mean is not None]
        strong = [mean for grade, mean in mine if grade == "strong"]
        weak = [mean for grade, mean in mine if grade == "weak"]
        if strong and weak:
            tasks += 1
            separated += min(strong) > max(weak)
    scored = [i for i in items if i.judged_mean is not None]
    correlation = spearman([1.0 if i.grade == "strong" else 0.0 for i in scored],
                           [float(i.judged_mean) for i in scored if i.judged_mean is not None])
    return Calibration(items=items, tasks=tasks, separated=separated,
                       agreement=round(separated / tasks, 3) if tasks else None,
                       rank_correlation=None if correlation is None else round(correlation, 3),
                       errors=sum(i.error is not None for i in items))
