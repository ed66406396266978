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
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.endpoint.client import EndpointClient, ServerInfo
from harness.errors import EndpointError
from harness.serving.engines import MODELS_MOUNT, ask_loaded, engine_spec, served_model_name
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


class Check(BaseModel):
    """One line of the verify check list."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: CheckKind
    passed: bool
    detail: str

    @classmethod
    def make(cls, name: str, kind: CheckKind, passed: bool, detail: str) -> Check:
        return cls(name=name, kind=kind, passed=passed, detail=detail)


class VerifyResult(BaseModel):
    """What `verify --save-json` writes: the checks, so later steps and the report read data, not logs."""

    kind: Literal["verify"] = "verify"
    schema_version: Literal[1] = 1
    target: str = Field(description="profile id and URL, credentials redacted")
    checks: list[Check]

    @property
    def server_failures(self) -> int:
        return failure_count(self.checks)

    @property
    def capability_misses(self) -> list[Check]:
        return [c for c in self.checks if c.kind == "capability" and not c.passed]


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _check_health(client: EndpointClient, path: str = "/health") -> Check:
    reply = client.get(path)
    ok = reply.status_code == 200
    return Check.make(f"{path} answers 200", "server", ok, f"HTTP {reply.status_code} {_short(reply.text, 60)}")


def _check_models(client: EndpointClient) -> tuple[Check, ServerInfo | None]:
    try:
        info = client.probe()
    except EndpointError as exc:
        return Check.make("/v1/models lists a model", "server", False, str(exc)), None
    listed = info.model if info.model in info.model_ids else f"{info.model} (listed: {', '.join(info.model_ids[:5])})"
    ok = info.model in info.model_ids or client.provider == "anthropic"
    return Check.make("/v1/models lists a model", "server", ok, listed), info


def _check_props(info: ServerInfo, profile: Profile) -> list[Check]:
    if not info.is_llama_cpp:
        return []  # not llama.cpp: nothing to compare
    if info.n_ctx_per_slot is None or profile.ctx_size is None:
        return [Check.make("profile settings applied (/props)", "server", False, "/props has no n_ctx")]
    # llama-server splits the context across slots in some versions and reports either form.
    ctx_ok = info.n_ctx_per_slot in (profile.ctx_size, profile.ctx_size // profile.parallel)
    return [
        Check.make("context size applied", "server", ctx_ok,
                   f"n_ctx {info.n_ctx_per_slot}, CTX_SIZE {profile.ctx_size}"),
        Check.make("server slots applied", "server", info.slots == profile.parallel,
                   f"{info.slots} slots, PARALLEL {profile.parallel}"),
    ]


def _check_loaded(client: EndpointClient, profile: Profile) -> list[Check]:
    """vLLM and SGLang: the engine's own endpoints say what it loaded, with which context and slots."""
    spec = engine_spec(profile.engine)
    try:
        loaded = ask_loaded(profile.engine, client.get)
    except EndpointError as exc:
        return [Check.make(f"profile settings applied ({spec.label})", "server", False,
                           f"cannot tell what the server loaded: {exc} (is it {spec.label}, as ENGINE says?)")]
    want_model = served_model_name(profile.server_model, profile.model_id)
    want_path = f"{MODELS_MOUNT}/{profile.server_model.rstrip('/')}"
    checks = [
        Check.make("model loaded as the profile says", "server",
                   loaded.model == want_model and loaded.model_path in (want_path, None),
                   f"serves {loaded.model!r} from {loaded.model_path or '(path not told)'} ({loaded.source}); "
                   f"profile: {want_model!r} from {want_path}"),
        Check.make("context size applied", "server", loaded.context_tokens == profile.ctx_size,
                   f"{loaded.context_tokens or 'not told'} tokens ({loaded.source}), CTX_SIZE {profile.ctx_size}"),
    ]
    if loaded.slots is not None:
        checks.append(Check.make("server slots applied", "server", loaded.slots == profile.parallel,
                                 f"{loaded.slots} requests at once ({loaded.source}), PARALLEL {profile.parallel}"))
    return checks


def _chat_payload(model: str, messages: list[dict], **extra) -> dict:
    return {"model": model, "messages": messages, "temperature": 0, "max_tokens": 32, **extra}


def _check_fact(client: EndpointClient, model: str) -> Check:
    name = f"factual answer contains {FACT_EXPECTED.title()!r}"
    messages = [{"role": "system", "content": FACT_SYSTEM}, {"role": "user", "content": FACT_QUESTION}]
    outcome = client.chat(_chat_payload(model, messages))
    if outcome.reply is None:
        return Check.make(name, "server", False, f"{outcome.failure}: {outcome.error}")
    content = outcome.reply.content
    return Check.make(name, "server", FACT_EXPECTED in content.lower(), f"answer: {_short(content)!r}")


def _check_stream(client: EndpointClient, model: str) -> Check:
    name = "streaming yields chunks"
    try:
        stream = client.stream_chat(_chat_payload(model, [{"role": "user", "content": "Count from 1 to 5."}]))
    except EndpointError as exc:
        return Check.make(name, "server", False, str(exc))
    end = "[DONE]" if client.provider == "openai-compatible" else "message_stop"
    ok = stream.text_chunks >= 2 and stream.done
    return Check.make(name, "server", ok, f"{stream.text_chunks} content chunks, {end} "
                                          f"{'seen' if stream.done else 'missing'}: {_short(stream.text, 40)!r}")


def _check_tool_call(client: EndpointClient, info: ServerInfo) -> Check:
    messages = [{"role": "user", "content": "What is the weather in Paris right now? Use the tool."}]
    outcome = client.chat(_chat_payload(info.model, messages, tools=[WEATHER_TOOL], max_tokens=128))
    if outcome.reply is None:
        return Check.make("tools request accepted", "server", False, f"{outcome.failure}: {outcome.error}")
    reply = outcome.reply
    if reply.tool_calls:
        call = reply.tool_calls[0].get("function", {})
        try:
            arguments = json.loads(call.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        city = arguments.get("city", "") if isinstance(arguments, dict) else ""
        ok = call.get("name") == "get_weather" and "paris" in str(city).lower()
        return Check.make("model calls a tool (tool_calls)", "capability", ok,
                          f"{call.get('name')}({_short(json.dumps(arguments), 50)})")
    if _INLINE_TOOL_RE.search(reply.raw_content):
        return Check.make("tool call parsed into tool_calls", "server", False,
                          f"tool call came back inlined as text, not in tool_calls (serve with --jinja and a "
                          f"tool-capable template): {_short(reply.raw_content)!r}")
    no_tools = info.is_llama_cpp and "tools" not in info.chat_template and "tool_call" not in info.chat_template
    reason = "its chat template has no tool support" if no_tools else "it answered in text instead of calling the tool"
    return Check.make("model calls a tool (tool_calls)", "capability", False,
                      f"no tool_calls: {reason}; answer: {_short(reply.content, 50)!r}")


def run_checks(client: EndpointClient, profile: Profile | None = None) -> list[Check]:
    """Run every smoke check against the client's endpoint; a failure to connect is one failed check.

    API endpoints (no /health, no /props) get the checks that make sense for them; a compose
    profile's settings are checked through its engine's own endpoints (``engines.ask_loaded``).
    """
    checks: list[Check] = []
    served = profile if profile is not None and not profile.is_api else None  # compose: engine and settings known
    try:
        if profile is None or served is not None:
            checks.append(_check_health(client, engine_spec(served.engine).health_path if served else "/health"))
        models_check, info = _check_models(client)
        checks.append(models_check)
        if info is None:
            return checks
        if served is not None and served.engine == "llama.cpp":
            checks.extend(_check_props(info, served))
        elif served is not None:
            checks.extend(_check_loaded(client, served))
        checks.append(_check_fact(client, info.model))
        checks.append(_check_stream(client, info.model))
        checks.append(_check_tool_call(client, info))
    except EndpointError as exc:
        checks.append(Check.make("endpoint reachable", "server", False, str(exc)))
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
