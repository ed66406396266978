"""An instant OpenAI-compatible streaming server in this process, for timing the client itself.

The sweep drives it with the same load generator it aims at a real server: every reply is a
fixed number of SSE chunks written at once, so whatever latency the generator records here
is the harness's own overhead (threads, HTTP, SSE parsing), the floor under every figure it
reports for a real server. It answers ``POST /v1/chat/completions`` (streaming or not),
``GET /v1/models`` and ``GET /health``, with keep-alive, on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INSTANT_MODEL = "instant"


class InstantServer:
    """Context manager serving instant replies on ``base_url`` ("http://127.0.0.1:PORT")."""

    def __init__(self, chunks: int = 16) -> None:
        if chunks < 1:
            raise ValueError(f"chunks must be >= 1, got {chunks}")
        self.chunks = chunks
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.instant = self  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> InstantServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connects beyond it, and the client's TCP retry
    # after a dropped SYN (1 s) would pass for client overhead.
    request_queue_size = 1024


@cache
def _stream_body(chunks: int) -> bytes:
    """The whole SSE reply: ``chunks`` one-token deltas, a finish chunk, usage, [DONE]."""

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        data = {"id": "chatcmpl-instant", "object": "chat.completion.chunk", "model": INSTANT_MODEL,
                "choices": choices, **extra}
        return f"data: {json.dumps(data)}\n\n".encode()

    parts = [event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    parts += [event([{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}]) for i in range(chunks)]
    parts.append(event([{"index": 0, "delta": {}, "finish_reason": "length"}]))
    parts.append(event([], usage={"prompt_tokens": 8, "completion_tokens": chunks}))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


@cache
def _completion_body(chunks: int) -> bytes:
    message = {"role": "assistant", "content": "".join(f"t{i} " for i in range(chunks))}
    return json.dumps({"id": "chatcmpl-instant", "object": "chat.completion", "model": INSTANT_MODEL,
                       "choices": [{"index": 0, "message": message, "finish_reason": "length"}],
                       "usage": {"prompt_tokens": 8, "completion_tokens": chunks}}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server offers; every body has a Content-Length

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            body = {"object": "list", "data": [{"id": INSTANT_MODEL, "object": "model"}]}
            self._send(200, "application/json", json.dumps(body).encode())
        elif self.path == "/health":
            self._send(200, "application/json", b'{"status": "ok"}')
        else:
            self._send(404, "application/json", b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/v1/chat/completions":
            self._send(404, "application/json", b'{"error": {"message": "not found"}}')
            return
        try:
            stream = bool(json.loads(raw).get("stream"))
        except (ValueError, AttributeError):
            self._send(400, "application/json", b'{"error": {"message": "body is not a JSON object"}}')
            return
        chunks = self.server.instant.chunks  # type: ignore[attr-defined]
        if stream:
            self._send(200, "text/event-stream", _stream_body(chunks))
        else:
            self._send(200, "application/json", _completion_body(chunks))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left; nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a load test would flood stderr
