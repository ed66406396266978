"""A rubric judge as model behaviour, served by the one scripted server (``model_server``).

It reads the rubric's criterion ids and the evidence from the judge prompt the harness sent,
and answers by mode:

    thorough   scores by how much evidence there is (>= 120 words: 5, >= 50: 3, else 1): a judge
               that prefers thorough answers, so strong references (longer) beat weak ones
    inverse    the opposite of thorough: a judge that calibration must expose
    fenced     thorough's scores inside a ```json fence with prose around it
    malformed  prose with no JSON ("Looks good to me, 4/5")
    missing    JSON that leaves out the last criterion
    extreme    9 for the first criterion and -3 for the others (clamped to 5 and 1)
    error500   HTTP 500 every time
"""

from __future__ import annotations

import json
import re

from tests.doubles.model_server import Reply, Request, ScriptedModelServer, json_raw
from tests.doubles.scripted_server import openai_messages


def _prompt(request: Request) -> str:
    return "\n".join(str(m.get("content") or "") for m in openai_messages(request) if m.get("role") == "user")


def criteria_of(prompt: str) -> list[str]:
    rubric = prompt.partition("## Rubric")[2]
    return re.findall(r"^- ([a-z][a-z0-9_]*): ", rubric, re.MULTILINE)


def evidence_words(prompt: str) -> int:
    evidence = prompt.partition("## Evidence")[2].partition("## Rubric")[0]
    return len(evidence.split())


class ScriptedJudge:
    """``with ScriptedJudge("thorough") as judge: judge.base_url``; ``prompts`` holds what it was sent."""

    def __init__(self, mode: str = "thorough", model_id: str = "judge-model"):
        self.mode = mode
        self.prompts: list[str] = []
        self.server = ScriptedModelServer(self._respond, model_ids=(model_id,))

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def __enter__(self) -> ScriptedJudge:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)

    def _respond(self, request: Request):
        prompt = _prompt(request)
        if "## Rubric" not in prompt:
            return Reply(content="Paris. one two three four five")  # a probe, not a judging request
        self.prompts.append(prompt)
        if self.mode == "error500":
            return json_raw(500, {"error": {"message": "judge down"}})
        ids = criteria_of(prompt)
        words = evidence_words(prompt)
        score = 5 if words >= 120 else 3 if words >= 50 else 1
        if self.mode == "inverse":
            score = 6 - score
        scores = {cid: score for cid in ids}
        if self.mode == "malformed":
            return Reply(content="Looks good to me, 4/5.")
        if self.mode == "missing":
            scores.pop(ids[-1])
        if self.mode == "extreme":
            scores = {cid: (9 if i == 0 else -3) for i, cid in enumerate(ids)}
        body = json.dumps({"scores": scores, "reason": f"{words} words of evidence"})
        if self.mode == "fenced":
            return Reply(content=f"Here is my grading.\n```json\n{body}\n```\nThanks.")
        return Reply(content=body)
