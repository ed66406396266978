"""Waiting for a server to become healthy while watching its container.

llama-server answers ``/v1/models`` before the model is loaded, so readiness is the engine's
health path returning 200 (``/health``; SGLang's ``/health_generate``: ``engines.health_url``).
Every poll also asks for the container's state, so a crash is reported at once (with its exit
code, OOM flag and log tail) instead of after the whole timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from harness.errors import ServerDied, ServingError

LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class ContainerState:
    """What we need to know about the server container at one poll."""

    running: bool
    status: str
    exit_code: int | None = None
    oom_killed: bool = False


def _format_tail(logs: str) -> str:
    lines = logs.rstrip().splitlines()[-LOG_TAIL_LINES:]
    body = "\n".join(f"  | {line}" for line in lines) if lines else "  | (no output)"
    return f"last {len(lines)} log lines:\n{body}"


def wait_until_healthy(health_url: str, *, container_state: Callable[[], ContainerState],
                       container_logs: Callable[[], str], timeout_s: float, poll_s: float = 0.5,
                       on_progress: Callable[[str], None] | None = None) -> float:
    """Poll health_url until it answers 200; return the seconds waited.

    Raises ServerDied when the container stops, ServingError on timeout; both carry the
    last log lines of the container.
    """
    started = time.monotonic()
    path = urlsplit(health_url).path or "/"
    last_note = ""
    next_report = started + 5
    with httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0)) as client:
        while True:
            state = container_state()
            if not state.running:
                cause = "was OOM-killed" if state.oom_killed else f"exited with code {state.exit_code}"
                raise ServerDied(f"server container {cause} ({state.status}) while loading; "
                                 f"{_format_tail(container_logs())}")
            try:
                reply = client.get(health_url)
                if reply.status_code == 200:
                    return time.monotonic() - started
                last_note = f"{path} answered {reply.status_code}"
            except httpx.HTTPError as exc:
                last_note = f"{path} not answering ({type(exc).__name__})"
            waited = time.monotonic() - started
            if waited >= timeout_s:
                raise ServingError(f"server not healthy after {timeout_s:g}s ({last_note}); "
                                   f"{_format_tail(container_logs())}")
            if on_progress and time.monotonic() >= next_report:
                on_progress(f"waiting for {health_url}: {last_note} ({waited:.0f}s/{timeout_s:g}s)")
                next_report += 5
            time.sleep(poll_s)
