"""Translation between OpenAI chat-completions shapes and the Anthropic Messages API.

The harness speaks OpenAI shapes everywhere; these pure functions translate at the edge so
that only the client knows another wire format exists. No I/O.

Choices made where the two APIs do not line up:

* ``tool_choice: "none"`` becomes ``{"type": "none"}``: the tools stay in the prompt (as
  with OpenAI) but may not be called.
* Thinking is on when ``chat_template_kwargs.enable_thinking`` is true or a
  ``reasoning_effort`` other than ``"none"`` is given. ``budget_tokens`` is a share of
  ``max_tokens`` (low 1/4, medium and plain enable_thinking 1/2, high 3/4), at least 1024,
  the API's floor. The API wants the budget below ``max_tokens``; when it is not,
  ``max_tokens`` grows to ``budget + max_tokens`` so the answer keeps the room asked for.
  With thinking on, ``temperature`` and ``top_k`` are dropped and ``top_p`` is kept only
  within 0.95..1, the values the API accepts. A forced ``tool_choice`` ("required" or a
  named function) is sent as asked even then: the API refuses it, and that refusal is
  better evidence than a quietly weakened request.
* Earlier ``reasoning_content`` in assistant turns is dropped: Anthropic only accepts
  thinking blocks it signed itself.
* Tool-call arguments that are not a JSON object are sent as ``{"_unparsed_arguments": raw}``
  (``input`` must be an object) rather than lost.
* Only fields the Messages API knows are copied; OpenAI-only ones (``stream_options``,
  ``ignore_eos``, ``chat_template_kwargs``, ``reasoning_effort``, ``n``, ...) are dropped.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_TOKENS = 1024
MIN_THINKING_BUDGET_TOKENS = 1024

_STOP_REASON_TO_FINISH_REASON = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_BUDGET_SHARE_BY_EFFORT = {"minimal": 0.25, "low": 0.25, "medium": 0.5, "high": 0.75}


def finish_reason_for(stop_reason: str | None) -> str | None:
    """Map an Anthropic ``stop_reason`` to OpenAI's ``finish_reason`` (unknown ones pass through)."""
    if stop_reason is None:
        return None
    return _STOP_REASON_TO_FINISH_REASON.get(stop_reason, stop_reason)


def to_anthropic_request(payload: dict[str, Any]) -> dict[str, Any]:
    """Translate an OpenAI chat-completions request body into a Messages API body."""
    system_texts: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in payload.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system_texts.append(_text_of(message.get("content")))
            continue
        if role == "tool":
            blocks = [_tool_result_block(message)]
            role = "user"
        else:
            blocks = _content_blocks(message.get("content"))
            if role == "assistant":
                blocks += [_tool_use_block(call) for call in message.get("tool_calls") or []]
            role = "assistant" if role == "assistant" else "user"
        if not blocks:  # the API refuses empty turns
            continue
        if messages and messages[-1]["role"] == role:  # the API wants roles to alternate
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    request: dict[str, Any] = {"model": payload.get("model"), "messages": messages}
    if system_texts:
        request["system"] = "\n\n".join(text for text in system_texts if text)
    max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens")
    request["max_tokens"] = int(max_tokens) if max_tokens else DEFAULT_MAX_TOKENS
    for key in ("temperature", "top_p", "top_k", "stream", "metadata"):
        if payload.get(key) is not None:
            request[key] = payload[key]
    stop = payload.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if payload.get("tools"):
        request["tools"] = [_tool_definition(tool) for tool in payload["tools"]]
        if payload.get("tool_choice") is not None:
            request["tool_choice"] = _tool_choice(payload["tool_choice"])
    _apply_thinking(payload, request)
    return request


def from_anthropic_response(body: Any) -> dict[str, Any]:
    """Translate a Messages API reply into an OpenAI chat-completion dict.

    Raises ValueError when ``body`` is not a Messages reply (the client reports a bad reply).
    """
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise ValueError("not an Anthropic message: no 'content' list")
    texts: list[str] = []
    thoughts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in body["content"]:
        if not isinstance(block, dict):
            raise ValueError(f"content block is not an object: {block!r:.80}")
        kind = block.get("type")
        if kind == "text":
            texts.append(_require_str(block, "text"))
        elif kind == "thinking":
            thoughts.append(_require_str(block, "thinking"))
        elif kind == "tool_use":
            tool_calls.append(
                {
                    "id": str(block.get("id") or f"call_{len(tool_calls)}"),
                    "type": "function",
                    "function": {
                        "name": _require_str(block, "name"),
                        "arguments": json.dumps(block.get("input") or {}),
                    },
                }
            )
        # redacted_thinking and server-tool blocks carry nothing the harness scores.
    usage = body.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    return {
        "id": body.get("id"),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "".join(texts),
                    "reasoning_content": "".join(thoughts),
                    "tool_calls": tool_calls,
                },
                "finish_reason": finish_reason_for(body.get("stop_reason")),
            }
        ],
        "usage": {
            "prompt_tokens": usage.get("input_tokens"),
            "completion_tokens": usage.get("output_tokens"),
        },
    }


def _require_str(block: dict[str, Any], key: str) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{block.get('type')} block has no string {key!r}")
    return value


def _text_of(content: Any) -> str:
    """Plain text of an OpenAI content value (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image_block(part["image_url"]["url"]))
    return blocks


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        header, data = url[len("data:") :].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": header, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    raw = function.get("arguments")
    if isinstance(raw, dict):
        arguments: dict[str, Any] = raw
    else:
        try:
            parsed = json.loads(raw or "{}")
        except (TypeError, ValueError):
            parsed = None
        arguments = parsed if isinstance(parsed, dict) else {"_unparsed_arguments": raw}
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}


def _tool_result_block(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": message.get("tool_call_id"),
        "content": _text_of(message.get("content")),
    }


def _tool_definition(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    definition: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        definition["description"] = function["description"]
    return definition


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, dict):
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    return {"type": {"auto": "auto", "none": "none", "required": "any"}.get(choice, "auto")}


def _apply_thinking(payload: dict[str, Any], request: dict[str, Any]) -> None:
    effort = payload.get("reasoning_effort")
    kwargs = payload.get("chat_template_kwargs") or {}
    wants_thinking = (effort is not None and effort != "none") or kwargs.get("enable_thinking") is True
    if not wants_thinking:
        return
    share = _BUDGET_SHARE_BY_EFFORT.get(effort, 0.5) if effort is not None else 0.5
    max_tokens = request["max_tokens"]
    budget_tokens = max(MIN_THINKING_BUDGET_TOKENS, int(max_tokens * share))
    if budget_tokens >= max_tokens:
        request["max_tokens"] = budget_tokens + max_tokens
    request["thinking"] = {"type": "enabled", "budget_tokens": budget_tokens}
    request.pop("temperature", None)
    request.pop("top_k", None)
    if not 0.95 <= request.get("top_p", 1.0) <= 1.0:
        request.pop("top_p")
