"""Pack scenarios as model behaviour, served by the one scripted server (``model_server``).

It recognises which scenario a request belongs to by its leading messages (in either wire
format) and answers from the scenario's ``reference_turns`` (turn = assistant messages
already in the conversation), bent by a mode:

    perfect         the reference reply (tool calls as real tool calls)
    empty           content "" and no tool calls
    reasoning_only  content "", the reference text as reasoning
    think           the reference text behind a <think>…</think> block
    length          the first half of the reference text, finish_reason "length"
    slow            the reference reply after ``delay_s``
    error500        HTTP 500 for the first ``fail_first`` requests of the scenario, then perfect
    loop            (agents) the same harmless call (``loop_call``: list the workspace), again and again
    hallucinate     (agents) a call to a tool that does not exist, every turn
    bad_args        (agents) a call with a wrong argument (``bad_call``: bash without its command), every turn

A leading system message the scenario does not have (the agent runner adds one) is skipped
when recognising the scenario.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from harness.packs.schema import Scenario
from tests.doubles.model_server import Reply, Request, ScriptedModelServer, json_raw

# Unknown prompts (the speed probe, verify's smoke checks) get a short answer that verify accepts.
TPS_PROBE_ANSWER = "Paris. one two three four five"


def _text(content: Any) -> Any:
    """Anthropic content blocks as the plain text OpenAI messages carry."""
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return content


def openai_messages(request: Request) -> list[dict]:
    """The conversation of a chat request in OpenAI shape (system first), whatever its wire."""
    body = request.json or {}
    if request.wire == "openai":
        return list(body.get("messages") or [])
    system = body.get("system")
    head = [{"role": "system", "content": _text(system)}] if system else []
    return head + [{"role": m.get("role"), "content": _text(m.get("content"))} for m in body.get("messages") or []]


class ScriptedModel:
    """Start with ``with ScriptedModel(scenarios, mode=...) as model: model.base_url``."""

    def __init__(self, scenarios: list[Scenario], mode: str = "perfect", modes: dict[str, str] | None = None,
                 delay_s: float = 2.0, fail_first: int = 1, slots: int = 2, chat_template: str = "",
                 api_key: str | None = None, model_ids: tuple[str, ...] = ("scripted-model",),
                 loop_call: dict | None = None, bad_call: dict | None = None):
        self.scenarios = scenarios
        self.loop_call = loop_call or {"name": "list_dir", "arguments": {"path": "."}}
        self.bad_call = bad_call or {"name": "bash", "arguments": {"cmd": "ls"}}
        self.mode, self.modes = mode, modes or {}
        self.delay_s, self.fail_first = delay_s, fail_first
        self.failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = ScriptedModelServer(self._respond, slots=slots, chat_template=chat_template, api_key=api_key,
                                          model_ids=model_ids)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def requests(self) -> list[dict]:
        """Chat request bodies as received (either wire format), in arrival order."""
        return [r.json for r in self.server.requests if r.wire]

    def __enter__(self) -> ScriptedModel:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)

    def _find(self, messages: list[dict]) -> tuple[Scenario | None, int]:
        """The scenario the conversation belongs to, and how many messages the runner added in front."""
        for offset in (0, 1):
            if offset and not (messages and messages[0].get("role") == "system"):
                break
            for scenario in self.scenarios:
                head = [(m.get("role"), m.get("content")) for m in scenario.messages]
                if [(m.get("role"), m.get("content")) for m in messages[offset:offset + len(head)]] == head:
                    return scenario, offset
        return None, 0

    def _respond(self, request: Request):
        messages = openai_messages(request)
        scenario, offset = self._find(messages)
        if scenario is None:  # the runner's TPS probe or an unknown prompt
            return Reply(content=TPS_PROBE_ANSWER, usage={"prompt_tokens": 10, "completion_tokens": 5})
        mode = self.modes.get(scenario.id, self.mode)
        if mode == "error500":
            with self._lock:
                count = self.failures.get(scenario.id, 0)
                self.failures[scenario.id] = count + 1
            if count < self.fail_first:
                return json_raw(500, {"error": {"code": 500, "message": "scripted failure"}})
        if mode == "slow":
            time.sleep(self.delay_s)
        turn = sum(1 for m in messages[offset + len(scenario.messages):] if m.get("role") == "assistant")
        reference = scenario.reference_turns[min(turn, len(scenario.reference_turns) - 1)]
        text = reference.content or ""
        usage = {"prompt_tokens": 10, "completion_tokens": max(1, len(text.split()))}
        if mode in ("loop", "hallucinate", "bad_args"):
            call = {"loop": self.loop_call, "hallucinate": {"name": "run_shell", "arguments": {"cmd": "ls"}},
                    "bad_args": self.bad_call}[mode]
            return Reply(content=None, tool_calls=[{"id": f"call_{turn}_0", **call}], usage=usage)
        if reference.tool_calls and mode not in ("empty", "length"):
            calls = [{"id": f"call_{turn}_{i}", "name": c.name, "arguments": c.arguments}
                     for i, c in enumerate(reference.tool_calls)]
            return Reply(content=None, tool_calls=calls, usage=usage)
        if mode == "empty":
            return Reply(content="", usage=usage)
        if mode == "reasoning_only":
            return Reply(content="", reasoning=text, usage=usage)
        if mode == "think":
            return Reply(content=f"<think>Let me see. ANSWER: wrong</think>{text}", usage=usage)
        if mode == "length":
            return Reply(content=text[: len(text) // 2], finish_reason="length", usage=usage)
        return Reply(content=text, usage=usage)
