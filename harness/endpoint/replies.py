"""Replies, typed: what the one client hands back, and the one rule for reading them.

``parse_completion`` checks an OpenAI-shaped chat completion (the Anthropic edge translates
into that shape first) and normalises it into a ``ChatReply``; ``StreamAccumulator`` does the
same for a stream of either wire format. ``strip_think`` is the one ``<think>`` rule, so packs
and codegen score the same reply the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from harness.endpoint.anthropic import finish_reason_for
from harness.endpoint.sse import SseEvent
from harness.errors import EndpointError

Provider = Literal["openai-compatible", "anthropic"]
EVIDENCE_CHARS = 200  # of a bad body or event, quoted in an error
_THINK_BLOCK = re.compile(r"<think>.*?(?:</think>|\Z)", re.IGNORECASE | re.DOTALL)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)


class RetryRecord(BaseModel):
    """One retry actually made: which attempt failed, why, and how long we waited after it."""

    attempt: int
    reason: str
    wait_s: float


class Usage(BaseModel):
    """Token counts as the server reported them (None when it did not)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatReply(BaseModel):
    """A well-formed chat completion, normalised to one shape whatever the provider."""

    content: str
    raw_content: str
    reasoning: str
    content_source: Literal["content", "reasoning", "none"]
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    usage: Usage
    timings: dict[str, float] | None
    body: dict[str, Any]
    latency_ms: float  # the attempt that answered, without earlier attempts or retry waits


class StreamResult(BaseModel):
    """Timing and text of one streamed completion, measured with the caller's clock."""

    ttft_s: float | None  # until the first chunk carrying content or reasoning text
    started_s: float  # before the first attempt: wall_s includes any retries (see retries)
    ended_s: float
    wall_s: float
    text_chunks: int  # chunks that carried content or reasoning text
    text: str
    reasoning: str
    usage: Usage
    timings: dict[str, float] | None
    finish_reason: str | None
    done: bool
    tool_calls: list[dict[str, Any]] = []
    retries: list[RetryRecord] = []
    # clock time of each text-carrying chunk, from the start: inter-token latency is read from the gaps
    chunk_times_s: list[float] = []


def strip_think(text: str) -> str:
    """Remove ``<think>`` blocks: THE one rule, so every scorer sees the same answer.

    An unclosed ``<think>`` runs to the end; a ``</think>`` without its opener (the chat
    template opened it in the prompt) drops everything before the last one.
    """
    text = _THINK_BLOCK.sub("", text)
    closers = list(_THINK_CLOSE.finditer(text))
    if closers:
        text = text[closers[-1].end() :]
    return text.strip()


class StreamAccumulator:
    """Accumulates one stream's events (either wire format) into a ``StreamResult``."""

    def __init__(
        self, provider: Provider, url: str, started_s: float, clock: Callable[[], float], scrub: Callable[[str], str]
    ) -> None:
        self.provider, self.url, self.started_s, self.clock, self.scrub = provider, url, started_s, clock, scrub
        self.ttft_s: float | None = None
        self.text_chunks = 0
        self.chunk_times_s: list[float] = []
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.usage = Usage()
        self.timings: dict[str, float] | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.tool_calls: dict[int, dict[str, Any]] = {}

    def feed(self, event: SseEvent) -> bool:
        """Take one event; True once the stream says it is complete."""
        if self.provider == "openai-compatible" and event.data.strip() == "[DONE]":
            self.done = True
            return True
        try:
            data = json.loads(event.data)
        except ValueError:
            data = None
        evidence = self.scrub(" ".join(event.data.split())[:EVIDENCE_CHARS])
        if not isinstance(data, dict):
            raise EndpointError(f"{self.url}: unreadable stream chunk: {evidence}")
        if event.event == "error" or data.get("error"):
            raise EndpointError(f"{self.url}: the stream reported an error: {evidence}")
        try:
            if self.provider == "anthropic":
                return self._feed_anthropic(data)
            self._feed_openai(data)
        except (AttributeError, TypeError) as exc:  # a field of the wrong JSON type
            raise EndpointError(f"{self.url}: unreadable stream chunk ({exc}): {evidence}") from None
        return False

    def _feed_openai(self, data: dict[str, Any]) -> None:
        if isinstance(data.get("usage"), dict):
            self.usage = _usage(data["usage"].get("prompt_tokens"), data["usage"].get("completion_tokens"))
        if isinstance(data.get("timings"), dict):
            self.timings = _timings(data["timings"])
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return  # the usage-only chunk has no choices
        delta = choices[0].get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        self._add_text(delta.get("content"), reasoning)
        for call in delta.get("tool_calls") or []:
            slot = self._tool_call(call.get("index", 0), call.get("id"), (call.get("function") or {}).get("name"))
            slot["function"]["arguments"] += (call.get("function") or {}).get("arguments") or ""
        if choices[0].get("finish_reason"):
            self.finish_reason = choices[0]["finish_reason"]

    def _feed_anthropic(self, data: dict[str, Any]) -> bool:
        kind = data.get("type")
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self.usage = _usage(usage.get("input_tokens"), self.usage.completion_tokens)
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._tool_call(data.get("index", 0), block.get("id"), block.get("name"))
            elif block.get("type") == "text":
                self._add_text(block.get("text"), None)
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._add_text(delta.get("text"), None)
            elif delta.get("type") == "thinking_delta":
                self._add_text(None, delta.get("thinking"))
            elif delta.get("type") == "input_json_delta":
                slot = self._tool_call(data.get("index", 0), None, None)
                slot["function"]["arguments"] += delta.get("partial_json") or ""
        elif kind == "message_delta":
            self.finish_reason = finish_reason_for((data.get("delta") or {}).get("stop_reason"))
            usage = data.get("usage") or {}
            prompt_tokens = usage.get("input_tokens", self.usage.prompt_tokens)
            self.usage = _usage(prompt_tokens, usage.get("output_tokens"))
        elif kind == "message_stop":
            self.done = True
            return True
        return False  # ping and future event types carry nothing we measure

    def _add_text(self, content: Any, reasoning: Any) -> None:
        has_content = isinstance(content, str) and content != ""
        has_reasoning = isinstance(reasoning, str) and reasoning != ""
        if not (has_content or has_reasoning):
            return
        now = self.clock() - self.started_s
        if self.ttft_s is None:
            self.ttft_s = now
        self.chunk_times_s.append(now)
        self.text_chunks += 1
        if has_content:
            self.text.append(content)
        if has_reasoning:
            self.reasoning.append(reasoning)

    def _tool_call(self, index: Any, call_id: Any, name: Any) -> dict[str, Any]:
        slot = self.tool_calls.setdefault(
            index if isinstance(index, int) else 0,
            {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if call_id:
            slot["id"] = str(call_id)
        if name:
            slot["function"]["name"] = str(name)
        return slot

    def result(self, retries: list[RetryRecord]) -> StreamResult:
        ended_s = self.clock()
        return StreamResult(
            ttft_s=self.ttft_s,
            started_s=self.started_s,
            ended_s=ended_s,
            wall_s=ended_s - self.started_s,
            text_chunks=self.text_chunks,
            text="".join(self.text),
            reasoning="".join(self.reasoning),
            usage=self.usage,
            timings=self.timings,
            finish_reason=self.finish_reason,
            done=self.done,
            tool_calls=[self.tool_calls[index] for index in sorted(self.tool_calls)],
            retries=retries,
            chunk_times_s=self.chunk_times_s,
        )


def parse_completion(completion: Any, wire: Any, *, latency_ms: float) -> ChatReply:
    """Check and normalise an OpenAI-shaped chat completion; ValueError names what is wrong."""
    if not isinstance(completion, dict):
        raise ValueError(f"top level is {type(completion).__name__}, not an object")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("'choices' is not a non-empty list")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ValueError("choices[0].message is not an object")
    raw_content = _content_text(message.get("content"))
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    if not isinstance(reasoning, str):
        raise ValueError("reasoning is not a string")
    finish_reason = choice.get("finish_reason")
    if finish_reason is not None and not isinstance(finish_reason, str):
        raise ValueError("finish_reason is not a string")
    content = strip_think(raw_content)
    source: Literal["content", "reasoning", "none"] = "content"
    if not content:
        content = strip_think(reasoning)
        source = "reasoning" if content else "none"
    usage = as_object(completion.get("usage"))
    timings = completion.get("timings")
    return ChatReply(
        content=content,
        raw_content=raw_content,
        reasoning=reasoning,
        content_source=source,
        tool_calls=_tool_calls(message.get("tool_calls")),
        finish_reason=finish_reason,
        usage=_usage(usage.get("prompt_tokens"), usage.get("completion_tokens")),
        timings=_timings(timings) if isinstance(timings, dict) else None,
        body=wire,
        latency_ms=latency_ms,
    )


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part if isinstance(part, str) else part.get("text") for part in content if isinstance(part, (str, dict))
        ]
        if len(texts) == len(content) and all(isinstance(text, str) for text in texts):
            return "".join(texts)  # type: ignore[arg-type]
    raise ValueError(f"message content is {type(content).__name__}, not text")


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    """Tool calls in OpenAI shape with ``arguments`` always a JSON string."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("tool_calls is not a list")
    calls = []
    for index, call in enumerate(raw):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ValueError(f"tool_calls[{index}] has no function name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {})
        call_id = call.get("id") or f"call_{index}"
        calls.append(
            {"id": str(call_id), "type": "function", "function": {"name": function["name"], "arguments": arguments}}
        )
    return calls


def _usage(prompt_tokens: Any, completion_tokens: Any) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens if is_int(prompt_tokens) else None,
        completion_tokens=completion_tokens if is_int(completion_tokens) else None,
    )


def _timings(raw: dict[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in raw.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: Any) -> int | None:
    return value if is_int(value) and value > 0 else None


def as_object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else {}: servers send odd things."""
    return value if isinstance(value, dict) else {}
