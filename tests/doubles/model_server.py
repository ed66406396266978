"""One scripted model server for the whole test suite: real HTTP on 127.0.0.1, in a thread.

It speaks both wire formats the harness meets: OpenAI chat completions
(``POST /v1/chat/completions``) and the Anthropic Messages API (``POST /v1/messages``),
each streaming or not, plus ``GET /v1/models``, llama.cpp's ``/props`` and ``/health``.

A test scripts model answers with ``respond(request)``, called for the two chat paths: it
returns a ``Reply`` (rendered in the wire format and streaming mode asked) or a ``Raw`` for
faults (status codes, Retry-After, HTML, truncated JSON, a dripped body, a hang-up
mid-body); None keeps the default answer. ``routes`` maps any path to a fixed response
(e.g. ``{"/props": Raw(404)}``). Every request is recorded on ``.requests`` so tests can
assert on what was sent.
Anthropic request bodies are checked the way the real API checks them (400 otherwise), so
a translation bug shows up as a failure rather than passing silently.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

Wire = Literal["openai", "anthropic"]
_WIRE_BY_PATH: dict[str, Wire] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}
_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
# The top-level fields the Messages API accepts; it refuses any other with a 400.
_ANTHROPIC_FIELDS = frozenset(
    "model messages max_tokens system temperature top_p top_k stop_sequences stream tools tool_choice thinking "
    "metadata".split()
)


@dataclass(frozen=True)
class Request:
    """One request as the double received it; ``headers`` keys are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    wire: Wire | None


@dataclass
class Reply:
    """A model answer, rendered in whichever wire format (and streaming or not) was asked.

    ``tool_calls`` items are ``{"name": ..., "arguments": {...}, "id": optional}``.
    ``finish_reason`` uses OpenAI's words; None means "tool_calls" if there are calls, else "stop".
    """

    content: str | None = "scripted answer"
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, int] | None = field(default_factory=lambda: {"prompt_tokens": 5, "completion_tokens": 3})
    timings: dict[str, float] | None = None
    reasoning_field: str = "reasoning_content"  # some servers say "reasoning"
    stream_end: bool = True  # False: the stream stops before [DONE] / message_stop
    chunk_delay_s: float = 0.0  # pause between streamed text pieces (decode speed)
    first_chunk_delay_s: float = 0.0  # pause after the opening chunk (time to first token)


@dataclass
class Raw:
    """Bytes exactly as given, for faults; ``Content-Length`` is added unless set."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drip_s: float = 0.0  # send the body one byte at a time, this far apart
    close_after_bytes: int | None = None  # announce the whole body, send this much, hang up


Response = Reply | Raw


def json_raw(status: int, body: Any, headers: dict[str, str] | None = None) -> Raw:
    """A ``Raw`` carrying ``body`` as JSON."""
    return Raw(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


class ScriptedModelServer:
    """Context manager serving scripted replies on ``base_url`` ("http://127.0.0.1:PORT")."""

    def __init__(
        self,
        respond: Callable[[Request], Response | None] | None = None,
        *,
        model_ids: list[str] | tuple[str, ...] = ("scripted-model",),
        api_key: str | None = None,
        slots: int | None = 2,
        chat_template: str = "",
        n_ctx: int | None = 2048,
        latency_s: float = 0.0,
        routes: dict[str, Response] | None = None,
    ) -> None:
        self.respond = respond
        self.routes = routes or {}
        self.model_ids = list(model_ids)
        self.api_key = api_key
        self.slots = slots
        self.chat_template = chat_template
        self.n_ctx = n_ctx
        self.latency_s = latency_s
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self._max_in_flight = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.double = self  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval keeps shutdown (one per test) quick.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> ScriptedModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def requests_to(self, path: str) -> list[Request]:
        """The recorded requests for one path, in arrival order."""
        with self._lock:
            return [request for request in self.requests if request.path == path]

    @contextmanager
    def _serving(self, request: Request) -> Iterator[None]:
        """Record ``request`` and count it as in flight until its answer is sent."""
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, request: Request) -> Response:
        if request.method == "POST" and self.latency_s:
            time.sleep(self.latency_s)
        problem = self._auth_problem(request)
        if problem:
            return _error(request.wire, 401, "authentication_error", problem)
        if request.wire == "anthropic" and (problem := _anthropic_problem(request.json)):
            return _error("anthropic", 400, "invalid_request_error", problem)
        if request.path in self.routes:
            return self.routes[request.path]
        scripted = self.respond(request) if self.respond and request.wire else None
        return scripted if scripted is not None else self._default(request)

    def _auth_problem(self, request: Request) -> str | None:
        if self.api_key is None or request.path in ("/health", "/props"):
            return None
        bearer_ok = request.headers.get("authorization") == f"Bearer {self.api_key}"
        anthropic_ok = request.headers.get("x-api-key") == self.api_key and "anthropic-version" in request.headers
        ok = {"openai": bearer_ok, "anthropic": anthropic_ok}.get(request.wire or "", bearer_ok or anthropic_ok)
        return None if ok else "invalid or missing API key"

    def _default(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/v1/models":
            data = [{"id": model_id, "object": "model", "type": "model"} for model_id in self.model_ids]
            return json_raw(200, {"object": "list", "data": data})
        if request.method == "GET" and request.path == "/props" and self.slots is not None:
            params = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0, "seed": -1}
            settings = {"n_ctx": self.n_ctx, "params": params}
            return json_raw(
                200,
                {
                    "total_slots": self.slots,
                    "chat_template": self.chat_template,
                    "default_generation_settings": settings,
                },
            )
        if request.method == "GET" and request.path == "/health":
            return json_raw(200, {"status": "ok"})
        if request.method == "POST" and request.wire:
            return Reply()
        return _error(request.wire, 404, "not_found_error", f"no route for {request.method} {request.path}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection; streams end when we close

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def _handle(self) -> None:
        double: ScriptedModelServer = self.server.double  # type: ignore[attr-defined]
        raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        path = urlsplit(self.path).path
        headers = {key.lower(): value for key, value in self.headers.items()}
        request = Request(self.command, path, headers, body, _WIRE_BY_PATH.get(path))
        model = (body.get("model") if isinstance(body, dict) else None) or double.model_ids[0]
        with double._serving(request):
            status, headers, chunks, delays_s = _render(double._answer(request), request, model)
            if not self._write(status, headers, chunks[:-1], delays_s):
                return
        # The last bytes leave once the request no longer counts as in flight: a client that
        # reads them and sends its next request must not find this one still counted.
        self._write(None, {}, chunks[-1:], [0.0])

    def _write(self, status: int | None, headers: dict[str, str], chunks: list[bytes], delays_s: list[float]) -> bool:
        """Send a status line and headers (unless None), then chunks, each followed by its pause;
        False if the client left."""
        try:
            if status is not None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
            for chunk, delay_s in zip(chunks, delays_s, strict=False):
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(delay_s)
        except (BrokenPipeError, ConnectionResetError):
            return False  # the client gave up (deadline tests do this on purpose)
        return True


def _render(response: Response, request: Request, model: str) -> tuple[int, dict[str, str], list[bytes], list[float]]:
    """Status, headers, body chunks and the pause after each chunk, for either kind of response."""
    anthropic = request.wire == "anthropic"
    if isinstance(response, Reply):
        if isinstance(request.json, dict) and request.json.get("stream"):
            events = anthropic_stream(response, model) if anthropic else openai_stream(response, model)
            # The opening chunk, then one chunk per text piece: pauses between pieces only, so
            # the time after the first piece is (pieces - 1) x chunk_delay_s, as on a real server.
            pieces = len(_pieces(response.reasoning)) + len(_pieces(response.content))
            delays = [response.first_chunk_delay_s] + [response.chunk_delay_s] * max(pieces - 1, 0)
            return 200, {"Content-Type": "text/event-stream"}, events, delays + [0.0] * len(events)
        response = json_raw(
            200, anthropic_message(response, model) if anthropic else openai_completion(response, model)
        )
    headers = dict(response.headers)
    if not any(key.lower() == "content-length" for key in headers):
        headers["Content-Length"] = str(len(response.body))
    body = response.body if response.close_after_bytes is None else response.body[: response.close_after_bytes]
    chunks = [body[index : index + 1] for index in range(len(body))] if response.drip_s else [body]
    return response.status, headers, chunks, [response.drip_s] * len(chunks)


def _error(wire: Wire | None, status: int, kind: str, message: str) -> Raw:
    if wire == "anthropic":
        return json_raw(status, {"type": "error", "error": {"type": kind, "message": message}})
    return json_raw(status, {"error": {"message": message, "type": kind, "code": status}})


def _anthropic_problem(body: Any) -> str | None:
    """What the real Messages API would refuse in this body, or None."""
    if not isinstance(body, dict):
        return "body: not a JSON object"
    if extra := sorted(set(body) - _ANTHROPIC_FIELDS):
        return f"{extra[0]}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str) or not isinstance(body.get("max_tokens"), int):
        return "model and max_tokens are required"
    roles = [message.get("role") for message in body.get("messages") or []]
    if not roles or set(roles) - {"user", "assistant"}:
        return "messages: roles must be user or assistant, at least one message"
    if any(this == that for this, that in zip(roles, roles[1:], strict=False)):
        return "messages: roles must alternate between user and assistant"
    if any(not message.get("content") for message in body["messages"]):
        return "messages: all messages must have non-empty content"
    thinking = body.get("thinking")
    if thinking is not None:
        if "temperature" in body or "top_k" in body:
            return "temperature and top_k may not be set when thinking is enabled"
        if not 1024 <= thinking.get("budget_tokens", 0) < body["max_tokens"]:
            return "thinking.budget_tokens must be >= 1024 and less than max_tokens"
    return None


def _pieces(text: str | None) -> list[str]:
    """Split text into word-sized stream deltas."""
    return re.findall(r"\S+\s*|\s+", text or "")


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def openai_completion(reply: Reply, model: str) -> dict[str, Any]:
    """``reply`` as a non-streaming OpenAI chat completion."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning is not None:
        message[reply.reasoning_field] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = _openai_tool_calls(reply)
    choice = {"index": 0, "message": message, "finish_reason": _finish_reason(reply)}
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "model": model,
        "choices": [choice],
        **_extras(reply),
    }


def _openai_tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {"id": call.get("id", f"call_{index}"), "type": "function",
         "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}}
        for index, call in enumerate(reply.tool_calls)
    ]  # fmt: skip


def _extras(reply: Reply) -> dict[str, Any]:
    """The ``usage`` and llama.cpp ``timings`` blocks the reply carries."""
    return {key: value for key, value in (("usage", reply.usage), ("timings", reply.timings)) if value is not None}


def openai_stream(reply: Reply, model: str) -> list[bytes]:
    """``reply`` as OpenAI stream chunks, one word per delta, usage in a last chunk."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "model": model, "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({reply.reasoning_field: piece}) for piece in _pieces(reply.reasoning)]
    chunks += [chunk({"content": piece}) for piece in _pieces(reply.content)]
    if reply.tool_calls:
        chunks.append(chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(_openai_tool_calls(reply))]}))
    chunks.append(chunk({}, _finish_reason(reply)))
    last = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "choices": [], **_extras(reply)}
    events = [f"data: {json.dumps(item)}\n\n".encode() for item in [*chunks, last]]
    return events + ([b"data: [DONE]\n\n"] if reply.stream_end else [])


def anthropic_message(reply: Reply, model: str) -> dict[str, Any]:
    """``reply`` as a non-streaming Anthropic Messages reply."""
    content: list[dict[str, Any]] = []
    if reply.reasoning:
        content.append({"type": "thinking", "thinking": reply.reasoning, "signature": "scripted-signature"})
    if reply.content:
        content.append({"type": "text", "text": reply.content})
    content += [
        {"type": "tool_use", "id": call.get("id", f"toolu_{index}"), "name": call["name"],
         "input": call.get("arguments", {})}
        for index, call in enumerate(reply.tool_calls)
    ]  # fmt: skip
    usage = reply.usage or {}
    tokens = {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)}
    stop_reason = _STOP_REASON.get(_finish_reason(reply), _finish_reason(reply))
    return {"id": "msg_scripted", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": None, "usage": tokens}  # fmt: skip


def anthropic_stream(reply: Reply, model: str) -> list[bytes]:
    """``reply`` as Anthropic stream events (thinking, text, then tool_use blocks)."""
    whole = anthropic_message(reply, model)
    start = {**whole, "content": [], "stop_reason": None, "usage": {**whole["usage"], "output_tokens": 1}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(whole["content"]):
        opened: dict[str, Any]
        deltas: list[dict[str, Any]]
        if block["type"] == "thinking":
            opened = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "text":
            opened = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        else:
            opened = {**block, "input": {}}
            arguments = json.dumps(block["input"])
            halves = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]]
            deltas = [{"type": "input_json_delta", "partial_json": half} for half in halves]
        events.append({"type": "content_block_start", "index": index, "content_block": opened})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    stop = {"stop_reason": whole["stop_reason"], "stop_sequence": None}
    events.append({"type": "message_delta", "delta": stop, "usage": {"output_tokens": whole["usage"]["output_tokens"]}})
    if reply.stream_end:
        events.append({"type": "message_stop"})
    return [f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events]
