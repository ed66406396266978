"""A scripted OpenAI-compatible HTTP server: a test double for *model behaviour*.

It is a real HTTP server on 127.0.0.1 (port chosen by the OS) in a thread. It recognises
which scenario a request belongs to by its leading messages and answers from the scenario's
``reference_turns`` (turn = assistant messages already in the conversation), bent by a mode:

    perfect         the reference reply (tool calls as real ``tool_calls``)
    empty           content "" and no tool calls
    reasoning_only  content "", the reference text in ``reasoning_content``
    think           the reference text behind a <think>…</think> block
    length          the first half of the reference text, finish_reason "length"
    slow            the reference reply after ``delay_s``
    error500        HTTP 500 for the first ``fail_first`` requests of the scenario, then perfect
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.packs.schema import Scenario


class ScriptedModel:
    """Start with ``with ScriptedModel(scenarios, mode=...) as model: model.base_url``."""

    def __init__(self, scenarios: list[Scenario], mode: str = "perfect", modes: dict[str, str] | None = None,
                 delay_s: float = 2.0, fail_first: int = 1, slots: int = 2, chat_template: str = ""):
        self.scenarios = scenarios
        self.mode, self.modes = mode, modes or {}
        self.delay_s, self.fail_first, self.slots, self.chat_template = delay_s, fail_first, slots, chat_template
        self.requests: list[dict] = []
        self.failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "ScriptedModel":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _find(self, messages: list[dict]) -> Scenario | None:
        for scenario in self.scenarios:
            head = [(m.get("role"), m.get("content")) for m in scenario.messages]
            if [(m.get("role"), m.get("content")) for m in messages[:len(head)]] == head:
                return scenario
        return None

    def answer(self, body: dict) -> tuple[int, dict]:
        """(HTTP status, JSON body) for one chat request."""
        with self._lock:
            self.requests.append(body)
        messages = body.get("messages", [])
        scenario = self._find(messages)
        if scenario is None:  # the runner's TPS probe or an unknown prompt
            return 200, _completion({"role": "assistant", "content": "one two three four five"}, "stop", 5)
        mode = self.modes.get(scenario.id, self.mode)
        if mode == "error500":
            with self._lock:
                count = self.failures.get(scenario.id, 0)
                self.failures[scenario.id] = count + 1
            if count < self.fail_first:
                return 500, {"error": {"code": 500, "message": "scripted failure"}}
        if mode == "slow":
            time.sleep(self.delay_s)
        turn = sum(1 for m in messages[len(scenario.messages):] if m.get("role") == "assistant")
        reference = scenario.reference_turns[min(turn, len(scenario.reference_turns) - 1)]
        text = reference.content
        message: dict = {"role": "assistant", "content": text}
        finish = "stop"
        if reference.tool_calls and mode not in ("empty", "length"):
            message["tool_calls"] = [{"id": f"call_{turn}_{i}", "type": "function",
                                      "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                     for i, c in enumerate(reference.tool_calls)]
            message["content"] = None
            finish = "tool_calls"
        elif mode == "empty":
            message["content"] = ""
        elif mode == "reasoning_only":
            message = {"role": "assistant", "content": "", "reasoning_content": text}
        elif mode == "think":
            message["content"] = f"<think>Let me see. ANSWER: wrong</think>{text}"
        elif mode == "length":
            message["content"] = text[: len(text) // 2]
            finish = "length"
        return 200, _completion(message, finish, max(1, len(text.split())))

    def _handler(self):
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "scripted-model", "object": "model"}]})
                elif self.path == "/props":
                    self._send(200, {"total_slots": model.slots, "chat_template": model.chat_template})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._send(*model.answer(body))

        return Handler


def _completion(message: dict, finish_reason: str, completion_tokens: int) -> dict:
    return {"id": "scripted", "object": "chat.completion", "model": "scripted-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 10, "completion_tokens": completion_tokens,
                      "total_tokens": 10 + completion_tokens}}
