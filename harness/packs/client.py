"""The OpenAI-compatible endpoint as the packs runner sees it.

* ``probe_endpoint``: model id, server slots and the chat template's thinking switch, failing
  fast with an EndpointError naming the URL when nothing answers.
* ``measure_tps``: one short completion, for timeout scaling.
* ``post_chat``: one request under a wall-clock deadline (the watchdog reads the body in
  chunks and gives up when the deadline passes, so a server that drips bytes cannot hang us);
  failures come back as data (a failure mode), never as fake model text.
* ``read_message``: content first, ``reasoning_content``/``reasoning`` as fallback, ``<think>``
  blocks stripped for scoring while the raw text is kept.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from harness.errors import EndpointError
from harness.packs.schema import FailureMode

ThinkingControl = Literal["chat_template_kwargs", "reasoning_effort", "none"]
_THINK_RE = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
TPS_PROBE_PROMPT = "Count from one to twenty in words, separated by spaces."


@dataclass(frozen=True)
class EndpointInfo:
    """What the runner learns from the endpoint before sending scenarios."""

    base_url: str
    model: str
    slots: int | None
    thinking_control: ThinkingControl


@dataclass(frozen=True)
class ChatOutcome:
    """One request's result: the parsed body, or a failure mode with the reason."""

    body: dict[str, Any] | None
    failure: FailureMode | None
    error: str
    latency_ms: float


def thinking_control_for(chat_template: str) -> ThinkingControl:
    """Which request field switches thinking for this chat template."""
    if "enable_thinking" in chat_template:
        return "chat_template_kwargs"
    if "reasoning_effort" in chat_template:
        return "reasoning_effort"
    return "none"


def probe_endpoint(client: httpx.Client, base_url: str, model: str | None) -> EndpointInfo:
    """Model id (from /v1/models unless given), slots and thinking control (from /props when llama.cpp)."""
    base_url = base_url.rstrip("/")
    try:
        models = client.get(f"{base_url}/v1/models", timeout=10)
    except httpx.HTTPError as exc:
        raise EndpointError(f"{base_url}/v1/models: endpoint unreachable ({type(exc).__name__}: {exc})") from None
    if models.status_code != 200:
        raise EndpointError(f"{base_url}/v1/models: HTTP {models.status_code}")
    if model is None:
        try:
            model = models.json()["data"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise EndpointError(f"{base_url}/v1/models: no model listed; pass --model") from None
    slots, template = None, ""
    try:
        props = client.get(f"{base_url}/props", timeout=10)
        if props.status_code == 200:
            data = props.json()
            slots = data.get("total_slots")
            template = data.get("chat_template") or ""
    except (httpx.HTTPError, ValueError):
        pass  # not llama.cpp: no slots or template to read
    return EndpointInfo(base_url, model, slots if isinstance(slots, int) and slots > 0 else None,
                        thinking_control_for(template))


def post_chat(client: httpx.Client, base_url: str, payload: dict, deadline: float) -> ChatOutcome:
    """POST /v1/chat/completions, giving up at ``deadline`` (time.monotonic())."""
    started = time.monotonic()
    remaining = deadline - started
    if remaining <= 0:
        return ChatOutcome(None, "timeout", "no time left in the scenario budget", 0)
    chunks: list[bytes] = []
    try:
        timeout = httpx.Timeout(remaining, connect=min(10.0, remaining))
        with client.stream("POST", f"{base_url}/v1/chat/completions", json=payload, timeout=timeout) as response:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("scenario budget exceeded while reading the reply")
            status = response.status_code
    except httpx.TimeoutException as exc:
        return ChatOutcome(None, "timeout", f"timed out after {time.monotonic() - started:.1f}s ({exc or 'timeout'})",
                           _ms(started))
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        return ChatOutcome(None, "endpoint_unreachable", f"{type(exc).__name__}: {exc}", _ms(started))
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if status >= 500:
        return ChatOutcome(None, "server_error", f"HTTP {status}: {text[:200]}", _ms(started))
    if status >= 400:
        return ChatOutcome(None, "http_error", f"HTTP {status}: {text[:200]}", _ms(started))
    try:
        body = json.loads(text)
        body["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ChatOutcome(None, "server_error", f"HTTP {status} but no chat completion in body: {text[:200]}",
                           _ms(started))
    return ChatOutcome(body, None, "", _ms(started))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def strip_think(text: str) -> str:
    """Text with <think> blocks (and a dangling </think> prefix) removed."""
    if "</think>" in text.lower() and "<think>" not in text.lower():
        text = text[text.lower().rfind("</think>") + len("</think>"):]
    return _THINK_RE.sub("", text).strip()


def read_message(message: dict) -> tuple[str, str, str, Literal["content", "reasoning", "none"]]:
    """(scored content, raw content, reasoning, where the scored content came from)."""
    raw = message.get("content") or ""
    if isinstance(raw, list):  # content parts
        raw = "".join(part.get("text", "") for part in raw if isinstance(part, dict))
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    content = strip_think(raw)
    if content:
        return content, raw, reasoning, "content"
    fallback = strip_think(reasoning)
    if fallback:
        return fallback, raw, reasoning, "reasoning"
    return "", raw, reasoning, "none"


def measure_tps(client: httpx.Client, info: EndpointInfo, max_tokens: int = 48, timeout_s: float = 60) -> float | None:
    """Decode tokens per second of one short completion; None when it yields no usable count."""
    payload = {"model": info.model, "messages": [{"role": "user", "content": TPS_PROBE_PROMPT}],
               "max_tokens": max_tokens, "temperature": 0}
    outcome = post_chat(client, info.base_url, payload, time.monotonic() + timeout_s)
    if outcome.failure == "endpoint_unreachable":
        raise EndpointError(f"{info.base_url}/v1/chat/completions: endpoint unreachable ({outcome.error})")
    if outcome.body is None:
        raise EndpointError(f"{info.base_url}/v1/chat/completions: startup probe failed: {outcome.failure} "
                            f"({outcome.error})")
    timings = outcome.body.get("timings") or {}
    if isinstance(timings.get("predicted_per_second"), (int, float)) and timings["predicted_per_second"] > 0:
        return round(float(timings["predicted_per_second"]), 2)
    tokens = (outcome.body.get("usage") or {}).get("completion_tokens") or 0
    seconds = outcome.latency_ms / 1000
    return round(tokens / seconds, 2) if tokens and seconds > 0 else None
