"""A scripted OpenAI-compatible chat server on 127.0.0.1 (a test double for model behaviour).

`reply(body) -> (status, json)` decides each answer; the server sleeps `latency_s` per
request on its own thread, so requests in flight overlap like on a multi-slot server.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def chat_reply(content: str | None, *, reasoning: str | None = None, finish_reason: str = "stop",
               tokens: int = 10) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"completion_tokens": tokens}}


@dataclass
class ScriptedServer:
    reply: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
    latency_s: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "ScriptedServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                payload = json.dumps({"default_generation_settings": {"params": {"temperature": 0.8, "top_k": 40}}})
                self._send(200, payload.encode())

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.bodies.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.latency_s)
                    status, payload = server.reply(body)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                self._send(status, json.dumps(payload).encode())

            def _send(self, status, data):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
