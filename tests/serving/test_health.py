"""wait_until_healthy against a real HTTP server; the container probe is injected."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.errors import ServerDied, ServingError
from harness.serving.health import ContainerState, wait_until_healthy

RUNNING = ContainerState(running=True, status="running")


class _Health:
    """A /health endpoint that answers 503 (loading) until `ready_after_s`."""

    def __init__(self, ready_after_s: float | None):
        self.ready_after_s = ready_after_s
        self.started = time.monotonic()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                ready = outer.ready_after_s is not None and time.monotonic() - outer.started >= outer.ready_after_s
                self.send_response(200 if ready else 503)
                self.end_headers()
                self.wfile.write(b'{"status":"ok"}' if ready else b'{"error":"Loading model"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"


@pytest.fixture
def health():
    made = []

    def _make(ready_after_s):
        made.append(_Health(ready_after_s))
        return made[-1]

    yield _make
    for item in made:
        item.server.shutdown()


def test_waits_through_loading_until_200(health):
    endpoint = health(0.6)
    waited = wait_until_healthy(endpoint.url, container_state=lambda: RUNNING, container_logs=lambda: "",
                                timeout_s=10, poll_s=0.1)
    assert 0.5 <= waited < 5


def test_timeout_names_last_status_and_shows_tail(health):
    endpoint = health(None)
    logs = "\n".join(f"line {i}" for i in range(100))
    with pytest.raises(ServingError) as caught:
        wait_until_healthy(endpoint.url, container_state=lambda: RUNNING, container_logs=lambda: logs,
                           timeout_s=0.5, poll_s=0.1)
    message = str(caught.value)
    assert "not healthy after 0.5s (/health answered 503)" in message
    assert "last 30 log lines" in message and "line 99" in message and "line 69" not in message


def test_container_exit_stops_the_wait_at_once(health):
    endpoint = health(None)
    polls = []

    def state():
        polls.append(1)
        return RUNNING if len(polls) < 3 else ContainerState(running=False, status="exited", exit_code=139)

    started = time.monotonic()
    with pytest.raises(ServerDied, match=r"(?s)exited with code 139 \(exited\).*segfault here"):
        wait_until_healthy(endpoint.url, container_state=state, container_logs=lambda: "segfault here",
                           timeout_s=60, poll_s=0.1)
    assert time.monotonic() - started < 5


def test_oom_kill_is_named(health):
    endpoint = health(None)
    dead = ContainerState(running=False, status="exited", exit_code=137, oom_killed=True)
    with pytest.raises(ServerDied, match="was OOM-killed"):
        wait_until_healthy(endpoint.url, container_state=lambda: dead, container_logs=lambda: "", timeout_s=5)


def test_unreachable_port_counts_as_not_ready():
    with pytest.raises(ServingError, match="not answering"):
        wait_until_healthy("http://127.0.0.1:9/health", container_state=lambda: RUNNING,
                           container_logs=lambda: "", timeout_s=0.3, poll_s=0.1)
