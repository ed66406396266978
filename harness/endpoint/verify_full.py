"""Functional checks beyond the smoke test: what `verify-full` runs.

The smoke checks (``verify.run_checks``) run first, so verify-full is a superset; then the
serving features a benchmark relies on: history kept across turns, ``max_tokens`` and
``stop`` honoured, streaming equal to non-streaming under greedy decoding, constrained
output (JSON mode, JSON schema, GBNF grammar), tool-call arguments that parse, /tokenize,
usage counts, and two requests at once.

Kinds keep verify's meaning: a ``server`` line is about the serving path and counts toward
the exit code; a ``capability`` line is about the model (SmolLM2-135M forgetting a name is
not a broken server). Constrained decoding is a server feature, so JSON that does not parse
under ``response_format`` is a server failure even on a weak model. A feature a non-llama.cpp
server refuses (HTTP 4xx) becomes a note, not a failure; llama.cpp has all of them.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from harness.endpoint.client import ChatOutcome, EndpointClient, ServerInfo
from harness.endpoint.verify import WEATHER_TOOL, Check, failure_count, format_checks, run_checks
from harness.errors import EndpointError
from harness.files import write_text_atomic
from harness.serving.profiles import Profile

SMOKE = "Smoke checks (verify)"
CONVERSATION = "Conversation"
STRUCTURED = "Structured output"
TOKENS = "Tokens and usage"
CONCURRENCY = "Concurrency"
GROUPS = (SMOKE, CONVERSATION, STRUCTURED, TOKENS, CONCURRENCY)

SEED = 42
MAX_TOKENS_LIMIT = 5
# Names a model cannot guess: recalling one proves the history reached it.
NAMES = ("Ottilie", "Bartholomew", "Zenobia", "Leopold", "Philippa", "Ignatius", "Rosalind", "Thaddeus")
COUNT_PROMPT = "Count from 1 to 10, separated by commas."
# Tiny on purpose: an integer has a bounded grammar, so a constrained weak model still finishes.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}
YES_NO_GRAMMAR = 'root ::= "yes" | "no"'
TOKENIZE_TEXT = "The quick brown fox jumps over the lazy dog."
_FILLER = "The river runs past old stone walls and green fields while birds sing in tall trees. "
_GATE_CHECKS = ("endpoint reachable", "/v1/models lists a model")  # smoke lines the rest depends on
_REFUSAL_STATUS = re.compile(r"HTTP (400|404|405|415|422|501)\b")

Log = Callable[[str], None]


class FullCheck(Check):
    """A verify check line with the heading it is printed under."""

    group: str = Field(description="heading the line belongs to, one of verify_full.GROUPS")


class VerifyFullResult(BaseModel):
    """What `verify-full --save-json` writes: every check line, grouped, and the notes."""

    kind: Literal["verify-full"] = "verify-full"
    schema_version: Literal[1] = 1
    created_at: str = Field(description="ISO 8601, UTC, when the checks finished")
    endpoint: str = Field(description="base URL, credentials redacted")
    model: str = Field(description="model id sent in the requests ('' when the endpoint listed none)")
    profile: str | None = None
    checks: list[FullCheck] = Field(description="in run order; kind 'server' counts toward the exit code")
    notes: list[str] = Field(description="features not tried or not supported, and why; never failures")
    seconds: float = Field(description="wall time of the whole run")

    @property
    def server_failures(self) -> int:
        lines: list[Check] = list(self.checks)
        return failure_count(lines)

    @property
    def capability_misses(self) -> list[FullCheck]:
        return [c for c in self.checks if c.kind == "capability" and not c.passed]


# ---------------------------------------------------------------- helpers (pure)


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _payload(model: str, prompt: str | list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Greedy and seeded, so two identical requests should give one answer."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return {"model": model, "messages": messages, "temperature": 0, "seed": SEED, "max_tokens": 32, **extra}


def _failed(outcome: ChatOutcome) -> str:
    return f"{outcome.failure}: {outcome.error}"


def refusal(outcome: ChatOutcome, info: ServerInfo) -> str | None:
    """The server's words when a non-llama.cpp server refuses a feature (HTTP 4xx); else None."""
    if info.is_llama_cpp or outcome.reply is not None or outcome.failure != "http_error":
        return None
    return outcome.error if _REFUSAL_STATUS.search(outcome.error) else None


def pick_stop(text: str) -> str | None:
    """A stop string the greedy answer is sure to contain, not at its very start.

    "5" when counting produced it; otherwise the word in the middle of the answer.
    """
    if text.find("5") > 0:
        return "5"
    words = re.findall(r"\S+", text)
    if len(words) < 2:
        return None
    word = words[len(words) // 2]
    return word if text.find(word) > 0 else None


def first_difference(left: str, right: str) -> int | None:
    """Index of the first character where two texts differ (None when equal)."""
    if left == right:
        return None
    for index, (a, b) in enumerate(zip(left, right, strict=False)):
        if a != b:
            return index
    return min(len(left), len(right))


def parse_json_object(text: str) -> tuple[dict[str, Any] | None, str]:
    """(the object, '') or (None, why not)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({str(exc).splitlines()[0]})"
    if not isinstance(value, dict):
        return None, f"JSON but a {type(value).__name__}, not an object"
    return value, ""


def matches_answer_schema(value: dict[str, Any]) -> bool:
    """``ANSWER_SCHEMA`` by hand: exactly one key, ``answer``, an integer."""
    answer = value.get("answer")
    return set(value) == {"answer"} and isinstance(answer, int) and not isinstance(answer, bool)


# ---------------------------------------------------------------- HTTP


# ---------------------------------------------------------------- checks


def check_multi_turn(client: EndpointClient, model: str, name: str) -> list[Check]:
    """Three turns, the fact in the first: prompt_tokens must grow with the history."""
    title = "multi-turn history sent and answered"
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful assistant. Answer briefly."}]
    turns = [f"My name is {name}. Please remember it.", "What is 2 + 2?", "What is my name? Answer with the name only."]
    prompt_tokens: list[int | None] = []
    answer = ""
    for number, turn in enumerate(turns, start=1):
        messages.append({"role": "user", "content": turn})
        outcome = client.chat(_payload(model, messages, max_tokens=24))
        if outcome.reply is None:
            return [Check.make(title, "server", False, f"turn {number}: {_failed(outcome)}")]
        answer = outcome.reply.content
        prompt_tokens.append(outcome.reply.usage.prompt_tokens)
        messages.append({"role": "assistant", "content": answer or "(no answer)"})
    counts = [count for count in prompt_tokens if count is not None]
    if len(counts) < len(turns):
        server = Check.make(title, "server", True, "all 3 turns answered (prompt_tokens not reported: growth unseen)")
    else:
        grows = all(later > earlier for earlier, later in zip(counts, counts[1:], strict=False))
        server = Check.make(title, "server", grows,
                            f"prompt_tokens {' -> '.join(map(str, counts))} over 3 turns"
                            + ("" if grows else ": the history did not reach the model"))
    recalled = name.lower() in answer.lower()
    return [server, Check.make(f"model recalls a name from turn 1 ({name})", "capability", recalled,
                               f"turn 3 answer: {_short(answer)!r}")]


def check_max_tokens(client: EndpointClient, model: str) -> Check:
    """A long answer cut at max_tokens: few tokens and finish_reason "length"."""
    title = f"max_tokens={MAX_TOKENS_LIMIT} respected"
    outcome = client.chat(_payload(model, "Write a long essay about the history of the Roman Empire.",
                                   max_tokens=MAX_TOKENS_LIMIT))
    if outcome.reply is None:
        return Check.make(title, "server", False, _failed(outcome))
    reply = outcome.reply
    tokens = reply.usage.completion_tokens
    ok = reply.finish_reason == "length" and (tokens is None or tokens <= MAX_TOKENS_LIMIT)
    counted = "completion_tokens not reported" if tokens is None else f"completion_tokens {tokens}"
    return Check.make(title, "server", ok, f"{counted}, finish_reason {reply.finish_reason!r}: "
                                           f"{_short(reply.raw_content, 40)!r}")


def check_stop(client: EndpointClient, model: str) -> Check:
    """Greedy answer once without a stop, then with a stop string taken from that answer."""
    title = "stop sequence honoured"
    plain = client.chat(_payload(model, COUNT_PROMPT, max_tokens=40))
    if plain.reply is None:
        return Check.make(title, "server", False, f"without stop: {_failed(plain)}")
    stop = pick_stop(plain.reply.raw_content)
    if stop is None:
        return Check.make("stop sequence testable", "capability", False,
                          f"the answer has no word to stop at: {_short(plain.reply.raw_content)!r}")
    stopped = client.chat(_payload(model, COUNT_PROMPT, max_tokens=40, stop=[stop]))
    if stopped.reply is None:
        return Check.make(title, "server", False, f"with stop {stop!r}: {_failed(stopped)}")
    text = stopped.reply.raw_content
    ok = stop not in text and stopped.reply.finish_reason == "stop"
    return Check.make(title, "server", ok, f"stop {stop!r}: {_short(text, 30)!r} finish_reason "
                                           f"{stopped.reply.finish_reason!r} (without it: "
                                           f"{_short(plain.reply.raw_content, 30)!r})")


def check_stream_matches(client: EndpointClient, model: str) -> Check:
    """The same greedy, seeded request streamed and not: one answer."""
    title = "streaming and non-streaming give the same greedy answer"
    payload = _payload(model, "Name three colours of the rainbow.", max_tokens=16)
    whole = client.chat(payload)
    if whole.reply is None:
        return Check.make(title, "server", False, f"non-streaming: {_failed(whole)}")
    try:
        streamed = client.stream_chat(payload).text
    except EndpointError as exc:
        return Check.make(title, "server", False, f"streaming: {exc}")
    plain = whole.reply.raw_content
    at = first_difference(plain, streamed)
    if at is None:
        return Check.make(title, "server", True, f"{len(plain)} chars alike: {_short(plain, 40)!r}")
    return Check.make(title, "server", False,
                      f"differ at char {at}: non-streaming {plain[max(0, at - 10):at + 20]!r} vs streaming "
                      f"{streamed[max(0, at - 10):at + 20]!r} (batching on a multi-slot server can perturb "
                      "float sums; rerun when idle)")


def check_json_object(client: EndpointClient, info: ServerInfo, notes: list[str]) -> list[Check]:
    """response_format json_object: the content must parse as a JSON object."""
    title = "JSON mode (response_format json_object) returns a JSON object"
    outcome = client.chat(_payload(info.model, "Describe a cat as a JSON object with the keys name and age.",
                                   max_tokens=64, response_format={"type": "json_object"}))
    if (refused := refusal(outcome, info)) is not None:
        notes.append(f"JSON mode not supported: {refused}")
        return []
    if outcome.reply is None:
        return [Check.make(title, "server", False, _failed(outcome))]
    value, why = parse_json_object(outcome.reply.content)
    cut = " (cut off at max_tokens)" if outcome.reply.finish_reason == "length" else ""
    detail = f"{_short(json.dumps(value), 50)}" if value is not None else \
        f"{why}{cut}: {_short(outcome.reply.content, 50)!r}"
    return [Check.make(title, "server", value is not None, detail)]


def check_json_schema(client: EndpointClient, info: ServerInfo, notes: list[str]) -> list[Check]:
    """response_format json_schema: the content must parse and match the tiny schema."""
    title = "JSON schema (response_format json_schema) followed"
    schema_format = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": ANSWER_SCHEMA}}
    outcome = client.chat(_payload(info.model, "What is 6 times 7? Reply in JSON with the key answer.",
                                   max_tokens=24, response_format=schema_format))
    if (refused := refusal(outcome, info)) is not None:
        notes.append(f"JSON schema not supported: {refused}")
        return []
    if outcome.reply is None:
        return [Check.make(title, "server", False, _failed(outcome))]
    text = outcome.reply.content
    value, why = parse_json_object(text)
    if value is None:
        return [Check.make(title, "server", False, f"{why}: {_short(text, 50)!r}")]
    ok = matches_answer_schema(value)
    return [Check.make(title, "server", ok, f"{_short(text, 50)}" + ("" if ok else " does not match "
                                                                    '{"answer": integer}'))]


def check_grammar(client: EndpointClient, info: ServerInfo, notes: list[str]) -> list[Check]:
    """llama.cpp's GBNF ``grammar`` field: the answer must be exactly "yes" or "no"."""
    title = "GBNF grammar (llama.cpp grammar field) followed"
    outcome = client.chat(_payload(info.model, "Is the sky blue? Answer yes or no.", max_tokens=8,
                                   grammar=YES_NO_GRAMMAR))
    if (refused := refusal(outcome, info)) is not None:
        notes.append(f"GBNF grammar not supported: {refused}")
        return []
    if outcome.reply is None:
        return [Check.make(title, "server", False, _failed(outcome))]
    text = outcome.reply.raw_content
    ok = text in ("yes", "no")
    if not ok and not info.is_llama_cpp:
        notes.append(f"GBNF grammar ignored (a llama.cpp field): answered {_short(text, 40)!r}")
        return []
    return [Check.make(title, "server", ok, f"grammar {YES_NO_GRAMMAR!r}: answered {_short(text, 40)!r}")]


def check_required_tool(client: EndpointClient, info: ServerInfo, notes: list[str]) -> list[Check]:
    """tool_choice "required": any tool call the server returns must carry arguments that parse."""
    title = 'tool_choice "required": tool-call arguments parse as JSON'
    messages = [{"role": "user", "content": "What is the weather in Paris right now?"}]
    # 48 tokens hold {"name": "get_weather", "arguments": {"city": "Paris"}} with room to spare.
    outcome = client.chat(_payload(info.model, messages, tools=[WEATHER_TOOL], tool_choice="required",
                                   max_tokens=48))
    if (refused := refusal(outcome, info)) is not None:
        notes.append(f'tool_choice "required" not supported: {refused}')
        return []
    if outcome.reply is None:
        return [Check.make(title, "server", False, _failed(outcome))]
    reply = outcome.reply
    if not reply.tool_calls:
        return [Check.make('model calls a tool when tool_choice is "required"', "capability", False,
                           f"answered in text, finish_reason {reply.finish_reason!r}: {_short(reply.content, 50)!r}")]
    shown = []
    ok = True
    for call in reply.tool_calls:
        function = call["function"]
        value, why = parse_json_object(function["arguments"])
        ok = ok and value is not None
        shown.append(f"{function['name']}({_short(function['arguments'], 40)})" + ("" if value is not None
                                                                                 else f": {why}"))
    return [Check.make(title, "server", ok, "; ".join(shown))]


def check_tokenize(client: EndpointClient, info: ServerInfo, notes: list[str]) -> list[Check]:
    """/tokenize gives token ids and /detokenize turns them back into the text."""
    title = "/tokenize and /detokenize round-trip"
    reply = client.post("/tokenize", json={"content": TOKENIZE_TEXT})
    if reply.status_code != 200 and not info.is_llama_cpp:
        notes.append(f"/tokenize absent (HTTP {reply.status_code}): a llama.cpp endpoint")
        return []
    try:
        tokens = reply.json().get("tokens") if reply.status_code == 200 else None
    except (ValueError, AttributeError):
        tokens = None
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, int) for t in tokens):
        return [Check.make(title, "server", False,
                           f"/tokenize: HTTP {reply.status_code}, no list of token ids: {_short(reply.text, 60)!r}")]
    back = client.post("/detokenize", json={"tokens": tokens})
    try:
        content = back.json().get("content") if back.status_code == 200 else None
    except (ValueError, AttributeError):
        content = None
    # SentencePiece vocabularies add a leading space when detokenizing: compare stripped.
    if not isinstance(content, str):
        return [Check.make(title, "server", False, f"{len(tokens)} tokens; /detokenize: HTTP {back.status_code} "
                                                   f"{_short(back.text, 50)!r}")]
    ok = content.strip() == TOKENIZE_TEXT
    return [Check.make(title, "server", ok, f"{len(tokens)} tokens -> {_short(content, 50)!r}")]


def check_usage(client: EndpointClient, model: str) -> Check:
    """Usage present and plausible: prompt_tokens grows with the prompt, completion within max_tokens."""
    title = "usage counts present and plausible"
    limit = 8
    counts = []
    for prompt in ("Say hello.", "Say hello. " + _FILLER * 3):
        outcome = client.chat(_payload(model, prompt, max_tokens=limit))
        if outcome.reply is None:
            return Check.make(title, "server", False, _failed(outcome))
        usage = outcome.reply.usage
        body_usage = outcome.reply.body.get("usage") if isinstance(outcome.reply.body, dict) else None
        total = body_usage.get("total_tokens") if isinstance(body_usage, dict) else None
        counts.append((usage.prompt_tokens, usage.completion_tokens, total))
    problems = []
    for (prompt_tokens, completion_tokens, total), which in zip(counts, ("short", "long"), strict=True):
        if prompt_tokens is None or completion_tokens is None:
            problems.append(f"{which} prompt: usage missing")
            continue
        if prompt_tokens <= 0:
            problems.append(f"{which} prompt: prompt_tokens {prompt_tokens}")
        if not 0 < completion_tokens <= limit:
            problems.append(f"{which} prompt: completion_tokens {completion_tokens} not in 1..{limit}")
        if isinstance(total, int) and total != prompt_tokens + completion_tokens:
            problems.append(f"{which} prompt: total_tokens {total} != {prompt_tokens} + {completion_tokens}")
    (short_p, short_c, short_t), (long_p, long_c, _) = counts
    if short_p is not None and long_p is not None and not long_p > short_p:
        problems.append(f"prompt_tokens did not grow with a longer prompt ({short_p} -> {long_p})")
    if problems:
        return Check.make(title, "server", False, "; ".join(problems))
    total_text = f", total {short_t} = {short_p} + {short_c}" if isinstance(short_t, int) else ""
    return Check.make(title, "server", True, f"prompt_tokens {short_p} -> {long_p} with a longer prompt; "
                                             f"completion_tokens {short_c}, {long_c} <= {limit}{total_text}")


def check_stream_usage(client: EndpointClient, model: str) -> Check:
    """stream_options.include_usage (the client always asks): the final chunk carries usage."""
    title = "usage in a stream (include_usage)"
    limit = 8
    try:
        stream = client.stream_chat(_payload(model, "Say hello.", max_tokens=limit))
    except EndpointError as exc:
        return Check.make(title, "server", False, str(exc))
    prompt_tokens, completion_tokens = stream.usage.prompt_tokens, stream.usage.completion_tokens
    ok = (prompt_tokens is not None and prompt_tokens > 0 and completion_tokens is not None
          and 0 < completion_tokens <= limit)
    return Check.make(title, "server", ok, f"prompt_tokens {prompt_tokens}, completion_tokens {completion_tokens} "
                                           f"(max_tokens {limit})")


def check_concurrent(client: EndpointClient, model: str) -> Check:
    """Two requests at once, both answered with content."""
    title = "two concurrent requests both answered"
    prompts = ("Name a fruit.", "Name an animal.")
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda prompt: client.chat(_payload(model, prompt, max_tokens=8)), prompts))
    parts = []
    for outcome in outcomes:
        if outcome.reply is None:
            parts.append(_failed(outcome))
        elif not outcome.reply.content:
            parts.append(f"empty answer after {outcome.latency_ms / 1000:.1f} s")
        else:
            parts.append(f"{outcome.latency_ms / 1000:.1f} s {_short(outcome.reply.content, 25)!r}")
    ok = all(outcome.reply is not None and outcome.reply.content for outcome in outcomes)
    return Check.make(title, "server", ok, "; ".join(parts))


# ---------------------------------------------------------------- the run


def run_full_checks(client: EndpointClient, profile: Profile | None = None, *, name: str | None = None,
                    log: Log = lambda _message: None) -> VerifyFullResult:
    """Run the smoke checks, then every functional check; a failed request is a failed line.

    ``name`` is the fact for the multi-turn check (random when None).
    """
    started = time.monotonic()
    checks: list[FullCheck] = []
    notes: list[str] = []

    def add(group: str, found: list[Check]) -> None:
        checks.extend(FullCheck(group=group, **check.model_dump()) for check in found)

    log("smoke checks (verify)")
    add(SMOKE, run_checks(client, profile))
    info = client.info
    if info is None or any(not c.passed for c in checks if c.name in _GATE_CHECKS):
        notes.append("the endpoint did not answer the smoke checks: functional checks not run")
        return _result(client, info, profile, checks, notes, started)
    api = profile is not None and profile.is_api
    if profile is None and info.is_llama_cpp:
        notes.append(f"no profile to compare settings with: /props says n_ctx {info.n_ctx_per_slot} per slot, "
                     f"{info.slots} slots")
    model = info.model
    anthropic = client.provider == "anthropic"
    steps: list[tuple[str, str, Callable[[], list[Check]]]] = [
        (CONVERSATION, "multi-turn", lambda: check_multi_turn(client, model, name or secrets.choice(NAMES))),
        (CONVERSATION, "max_tokens", lambda: [check_max_tokens(client, model)]),
        (CONVERSATION, "stop", lambda: [check_stop(client, model)]),
        (CONVERSATION, "stream vs non-stream", lambda: [check_stream_matches(client, model)]),
    ]
    if anthropic:
        notes.append("JSON mode and JSON schema not tried: the Messages API has no response_format")
    else:
        steps += [(STRUCTURED, "JSON mode", lambda: check_json_object(client, info, notes)),
                  (STRUCTURED, "JSON schema", lambda: check_json_schema(client, info, notes))]
    if api:
        notes.append("API profile: the llama.cpp-only checks (GBNF grammar, /tokenize) were skipped")
    else:
        steps.append((STRUCTURED, "GBNF grammar", lambda: check_grammar(client, info, notes)))
    steps.append((STRUCTURED, "required tool call", lambda: check_required_tool(client, info, notes)))
    if not api:
        steps.append((TOKENS, "/tokenize", lambda: check_tokenize(client, info, notes)))
    steps += [(TOKENS, "usage", lambda: [check_usage(client, model)]),
              (TOKENS, "stream usage", lambda: [check_stream_usage(client, model)]),
              (CONCURRENCY, "two at once", lambda: [check_concurrent(client, model)])]
    for group, what, step in steps:
        log(what)
        try:
            add(group, step())
        except EndpointError as exc:
            add(group, [Check.make(f"{what}: endpoint reachable", "server", False, str(exc))])
    return _result(client, info, profile, checks, notes, started)


def _result(client: EndpointClient, info: ServerInfo | None, profile: Profile | None, checks: list[FullCheck],
            notes: list[str], started: float) -> VerifyFullResult:
    return VerifyFullResult(created_at=datetime.now(UTC).isoformat(timespec="seconds"), endpoint=client.display_url,
                            model=info.model if info else (client.model_id or ""),
                            profile=profile.id if profile else None, checks=checks, notes=notes,
                            seconds=round(time.monotonic() - started, 2))


def format_result(result: VerifyFullResult) -> str:
    """verify's check lines under their headings, verify's summary lines, then the notes."""
    flat = [check.model_copy(update={"detail": " ".join(check.detail.split())}) for check in result.checks]
    as_checks: list[Check] = list(flat)
    lines = format_checks(as_checks).splitlines()  # one line per check, then the summary lines
    body, summary = lines[: len(flat)], lines[len(flat):]
    out: list[str] = []
    heading = None
    for check, line in zip(flat, body, strict=True):
        if check.group != heading:
            heading = check.group
            out.append(f"{heading}:")
        out.append(line)
    out += summary
    out += [f"Note: {note}" for note in result.notes]
    return "\n".join(out)


def write_result(result: VerifyFullResult, path: Path) -> Path:
    """Write the result JSON atomically."""
    return write_text_atomic(path, result.model_dump_json(indent=2) + "\n")
