"""Smoke checks of an OpenAI-compatible endpoint.

Two kinds of check, kept apart because they mean different things to the user:

* ``server`` checks prove the serving path works (health, model list, a completion, the
  profile's settings applied, streaming, tool-call parsing). Each failure counts.
* ``capability`` checks say what the *model* can do. A model whose chat template has no
  tool support answering in plain text is a capability result, not a broken server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

import httpx

from harness.serving.profiles import Profile

CheckKind = Literal["server", "capability"]
FACT_SYSTEM = "You are a helpful assistant. Answer with a single word."
FACT_QUESTION = "What is the capital of France?"
FACT_EXPECTED = "paris"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
_INLINE_TOOL_RE = re.compile(r"<tool_call>|\"name\"\s*:\s*\"get_weather\"|get_weather\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    """One line of the verify check list."""

    name: str
    kind: CheckKind
    passed: bool
    detail: str


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class _Endpoint:
    """Just enough of an OpenAI-compatible client for smoke checks."""

    def __init__(self, base_url: str, timeout_s: float):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0))

    def get(self, path: str) -> httpx.Response:
        return self.http.get(self.base_url + path)

    def chat(self, payload: dict) -> httpx.Response:
        return self.http.post(self.base_url + "/v1/chat/completions", json=payload)


def _check_health(ep: _Endpoint) -> Check:
    reply = ep.get("/health")
    ok = reply.status_code == 200
    return Check("/health answers 200", "server", ok, f"HTTP {reply.status_code} {_short(reply.text, 60)}")


def _check_models(ep: _Endpoint) -> tuple[Check, str | None]:
    reply = ep.get("/v1/models")
    try:
        model_id = reply.json()["data"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Check("/v1/models lists a model", "server", False,
                     f"HTTP {reply.status_code}: {_short(reply.text)}"), None
    return Check("/v1/models lists a model", "server", True, model_id), model_id


def _check_props(ep: _Endpoint, profile: Profile) -> list[Check]:
    reply = ep.get("/props")
    if reply.status_code == 404:
        return []  # not llama.cpp: nothing to compare
    try:
        props = reply.json()
        n_ctx = props["default_generation_settings"]["n_ctx"]
        slots = props["total_slots"]
    except (ValueError, KeyError, TypeError):
        return [Check("profile settings applied (/props)", "server", False, f"unreadable /props: {_short(reply.text)}")]
    # llama-server splits the context across slots in some versions and reports either form.
    ctx_ok = n_ctx in (profile.ctx_size, profile.ctx_size // profile.parallel)
    return [
        Check("context size applied", "server", ctx_ok, f"n_ctx {n_ctx}, CTX_SIZE {profile.ctx_size}"),
        Check("server slots applied", "server", slots == profile.parallel, f"{slots} slots, PARALLEL {profile.parallel}"),
    ]


def _chat_payload(model: str, messages: list[dict], **extra) -> dict:
    return {"model": model, "messages": messages, "temperature": 0, "max_tokens": 32, **extra}


def _check_fact(ep: _Endpoint, model: str) -> Check:
    name = f"factual answer contains {FACT_EXPECTED.title()!r}"
    messages = [{"role": "system", "content": FACT_SYSTEM}, {"role": "user", "content": FACT_QUESTION}]
    reply = ep.chat(_chat_payload(model, messages))
    if reply.status_code != 200:
        return Check(name, "server", False, f"HTTP {reply.status_code}: {_short(reply.text)}")
    message = reply.json()["choices"][0]["message"]
    content = message.get("content") or message.get("reasoning_content") or ""
    return Check(name, "server", FACT_EXPECTED in content.lower(), f"answer: {_short(content)!r}")


def _check_stream(ep: _Endpoint, model: str) -> Check:
    name = "streaming yields chunks"
    payload = _chat_payload(model, [{"role": "user", "content": "Count from 1 to 5."}], stream=True)
    chunks, done, text = 0, False, []
    with ep.http.stream("POST", ep.base_url + "/v1/chat/completions", json=payload) as reply:
        if reply.status_code != 200:
            return Check(name, "server", False, f"HTTP {reply.status_code}")
        for line in reply.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            choices = json.loads(data).get("choices") or []
            delta = choices[0].get("delta") or {} if choices else {}
            piece = delta.get("content") or delta.get("reasoning_content") or ""
            if piece:
                chunks += 1
                text.append(piece)
    ok = chunks >= 2 and done
    return Check(name, "server", ok, f"{chunks} content chunks, [DONE] {'seen' if done else 'missing'}: "
                                     f"{_short(''.join(text), 40)!r}")


def _template_mentions_tools(ep: _Endpoint) -> bool | None:
    reply = ep.get("/props")
    if reply.status_code != 200:
        return None
    try:
        template = reply.json().get("chat_template") or ""
    except ValueError:
        return None
    return "tools" in template or "tool_call" in template


def _check_tool_call(ep: _Endpoint, model: str) -> Check:
    messages = [{"role": "user", "content": "What is the weather in Paris right now? Use the tool."}]
    reply = ep.chat(_chat_payload(model, messages, tools=[WEATHER_TOOL], max_tokens=128))
    if reply.status_code != 200:
        return Check("tools request accepted", "server", False, f"HTTP {reply.status_code}: {_short(reply.text)}")
    message = reply.json()["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    content = message.get("content") or ""
    if calls:
        call = calls[0].get("function", {})
        try:
            arguments = json.loads(call.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        ok = call.get("name") == "get_weather" and "paris" in str(arguments.get("city", "")).lower()
        return Check("model calls a tool (tool_calls)", "capability", ok,
                     f"{call.get('name')}({_short(json.dumps(arguments), 50)})")
    if _INLINE_TOOL_RE.search(content):
        return Check("tool call parsed into tool_calls", "server", False,
                     f"tool call came back inlined as text, not in tool_calls (serve with --jinja and a "
                     f"tool-capable template): {_short(content)!r}")
    tools_in_template = _template_mentions_tools(ep)
    reason = ("its chat template has no tool support" if tools_in_template is False
              else "it answered in text instead of calling the tool")
    return Check("model calls a tool (tool_calls)", "capability", False,
                 f"no tool_calls: {reason}; answer: {_short(content, 50)!r}")


def run_checks(base_url: str, profile: Profile | None = None, timeout_s: float = 60) -> list[Check]:
    """Run every smoke check against base_url; a failure to connect is one failed check."""
    ep = _Endpoint(base_url, timeout_s)
    checks: list[Check] = []
    try:
        checks.append(_check_health(ep))
        models_check, model = _check_models(ep)
        checks.append(models_check)
        if model is None:
            return checks
        if profile is not None:
            checks.extend(_check_props(ep, profile))
        checks.append(_check_fact(ep, model))
        checks.append(_check_stream(ep, model))
        checks.append(_check_tool_call(ep, model))
    except httpx.HTTPError as exc:
        checks.append(Check("endpoint reachable", "server", False, f"{base_url}: {type(exc).__name__}: {exc}"))
    finally:
        ep.http.close()
    return checks


def format_checks(checks: list[Check]) -> str:
    """The check list as printed: one line per check, then the capability line."""
    lines = []
    for check in checks:
        mark = "PASS" if check.passed else "FAIL"
        lines.append(f"  [{mark}] {check.kind:<10} {check.name}: {check.detail}")
    server = [c for c in checks if c.kind == "server"]
    failed = [c for c in server if not c.passed]
    capability = [c for c in checks if c.kind == "capability"]
    lines.append(f"Server checks: {len(server) - len(failed)}/{len(server)} passed")
    if capability:
        lacks = [c.detail for c in capability if not c.passed]
        summary = "model lacks: " + "; ".join(lacks) if lacks else "all capability checks passed"
        lines.append(f"Capability: {summary}")
    return "\n".join(lines)


def failure_count(checks: list[Check], *, strict: bool = False) -> int:
    """Failed server checks (plus capability misses when strict)."""
    return sum(1 for c in checks if not c.passed and (strict or c.kind == "server"))
