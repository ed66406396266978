"""A llama.cpp-like scripted server for the stress verb: it has a context, and a haystack to search.

Built on ``ScriptedModelServer``; a token is a whitespace-separated word. It serves:

* ``POST /tokenize`` (word count), ``GET /slots`` (busy while chat requests are in flight);
* chat requests checked like llama.cpp: a prompt of ``n_ctx`` tokens or more gets a 400
  ``exceed_context_size_error``; prompt + max_tokens past ``n_ctx`` is truncated with
  ``finish_reason`` "length"; malformed bodies get a 400, an unknown model a 404;
* an answer holding the needle's passphrase exactly when the prompt holds it;
* long streams (max_tokens > 64) that drip words until the client hangs up; with
  ``hold_after_hangup_s`` the slot stays taken that long after a long stream starts (a server
  that keeps generating for a client who left): /slots says busy, and other chat requests wait.

``fault(request)`` may answer first (a 500, or sleep to hang); ``die_on(request)`` True makes the
server hang up on that request and stop listening, as a crashed server does.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.doubles.model_server import Raw, Reply, Request, Response, ScriptedModelServer, json_raw

PROMPT_OVERHEAD_TOKENS = 7  # what the chat template adds to the message words
_NEEDLE = re.compile(r"secret passphrase for the vault is ([^.]+)\.")


def word_count(text: str) -> int:
    return len(text.split())


class StressServer(ScriptedModelServer):
    """See the module docstring."""

    def __init__(self, *, n_ctx: int = 1024, slots: int = 2,
                 fault: Callable[[Request], Response | None] | None = None,
                 die_on: Callable[[Request], bool] | None = None, hold_after_hangup_s: float = 0.0,
                 **options: Any) -> None:
        super().__init__(self._respond, slots=slots, n_ctx=n_ctx, **options)
        self.fault = fault
        self.die_on = die_on
        self.hold_after_hangup_s = hold_after_hangup_s
        self._held_until = 0.0
        self.died = threading.Event()

    def die(self) -> None:
        """Stop listening: later connections are refused."""
        self.died.set()
        threading.Thread(target=self._stop, daemon=True).start()

    def _stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _default(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/tokenize":
            content = request.json.get("content", "") if isinstance(request.json, dict) else ""
            return json_raw(200, {"tokens": list(range(word_count(content)))})
        if request.method == "GET" and request.path == "/slots":
            busy = self.in_flight - 1 if time.monotonic() >= self._held_until else self.slots or 1  # -1: this one
            return json_raw(200, [{"id": i, "is_processing": i < busy} for i in range(self.slots or 1)])
        return super()._default(request)

    def _respond(self, request: Request) -> Response | None:
        if self.die_on is not None and self.die_on(request):
            self.die()
            return Raw(200, b'{"choices": []}', close_after_bytes=0)
        if self.fault is not None and (faulted := self.fault(request)) is not None:
            return faulted
        body = request.json
        problem = _problem(body, self.model_ids)
        if problem is not None:
            return problem
        prompt = PROMPT_OVERHEAD_TOKENS + sum(word_count(str(m.get("content", ""))) for m in body["messages"])
        n_ctx = self.n_ctx or 0
        if prompt >= n_ctx:
            return json_raw(400, {"error": {"code": 400, "type": "exceed_context_size_error",
                                            "message": f"request ({prompt} tokens) exceeds the available context "
                                                       f"size ({n_ctx} tokens), try increasing it"}})
        max_tokens = body.get("max_tokens") or 16
        completion = min(max_tokens, n_ctx - prompt)
        text = " ".join(str(m.get("content", "")) for m in body["messages"])
        needle = _NEEDLE.search(text)
        if body.get("stream") and max_tokens > 64:
            self._held_until = time.monotonic() + self.hold_after_hangup_s
            return Reply(content="word " * completion, chunk_delay_s=0.01, finish_reason="length",
                         usage={"prompt_tokens": prompt, "completion_tokens": completion})
        time.sleep(max(0.0, self._held_until - time.monotonic()))  # queued behind a held slot
        answer = f"The passphrase is {needle.group(1)}." if needle else "I do not know."
        words = answer.split()[:completion]
        finish = "length" if completion < max_tokens else "stop"
        return Reply(content=" ".join(words), finish_reason=finish,
                     usage={"prompt_tokens": prompt, "completion_tokens": len(words) if finish == "stop" else
                            completion})


def _problem(body: Any, model_ids: list[str]) -> Response | None:
    """The 4xx llama.cpp (or OpenAI) would give this body, or None."""
    def bad(message: str, status: int = 400) -> Raw:
        return json_raw(status, {"error": {"code": status, "type": "invalid_request_error", "message": message}})

    if not isinstance(body, dict):
        return bad("invalid JSON body")
    if not isinstance(body.get("messages"), list):
        return bad("'messages' is required and must be an array")
    if "max_tokens" in body and not isinstance(body["max_tokens"], int):
        return bad("max_tokens must be an integer")
    if "temperature" in body and not isinstance(body["temperature"], (int, float)):
        return bad("temperature must be a number")
    if body.get("model") not in (None, *model_ids):
        return bad(f"model {body.get('model')!r} not found", 404)
    return None
