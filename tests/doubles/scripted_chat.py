"""Chat replies decided by a function of the request body, served by the one scripted server.

``reply(body) -> (status, json)`` decides each answer; the server sleeps ``latency_s`` per
request on its own thread, so requests in flight overlap like on a multi-slot server. Used by
codegen tests and ``make perf``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.doubles.model_server import Request, ScriptedModelServer, json_raw

# llama.cpp's /props as codegen reads it for --sampling-from-server.
PROPS = {"total_slots": 4, "default_generation_settings": {"params": {"temperature": 0.8, "top_k": 40}}}


def chat_reply(content: str | None, *, reasoning: str | None = None, finish_reason: str = "stop",
               tokens: int = 10) -> dict[str, Any]:
    """An OpenAI chat completion body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"completion_tokens": tokens}}


class ScriptedServer:
    """``ScriptedServer(reply).start()`` … ``.stop()``; ``.bodies`` are the chat bodies received."""

    def __init__(self, reply: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]], latency_s: float = 0.0):
        self.reply = reply
        self.server = ScriptedModelServer(self._respond, latency_s=latency_s, routes={"/props": json_raw(200, PROPS)})
        self.bodies: list[dict[str, Any]] = []

    def _respond(self, request: Request):
        self.bodies.append(request.json)
        status, payload = self.reply(request.json)
        return json_raw(status, payload)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def max_in_flight(self) -> int:
        return self.server.max_in_flight

    def start(self) -> ScriptedServer:
        self.server.__enter__()
        return self

    def stop(self) -> None:
        self.server.__exit__(None, None, None)
