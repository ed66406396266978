"""OpenAI <-> Anthropic Messages translation, as pure functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.endpoint.anthropic import finish_reason_for, from_anthropic_response, to_anthropic_request

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]

TOOL_TURN: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "two calls needed",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
                {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "sun"}]},
        {"role": "user", "content": "Summarise."},
    ],
    "tools": TOOLS,
    "tool_choice": "auto",
    "max_tokens": 200,
    "temperature": 0.2,
    "top_p": 0.9,
    "top_k": 20,
    "stop": "END",
    "stream_options": {"include_usage": True},
    "ignore_eos": True,
    "n": 1,
}


def test_system_messages_become_one_top_level_system() -> None:
    request = to_anthropic_request(TOOL_TURN)
    assert request["system"] == "Be brief.\n\nUse tools."
    assert all(message["role"] != "system" for message in request["messages"])


def test_tool_round_trip_becomes_tool_use_and_merged_tool_result_blocks() -> None:
    messages = to_anthropic_request(TOOL_TURN)["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "c2", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    # Both results and the next user text share one user turn, so roles alternate.
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "rain"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "sun"},
        {"type": "text", "text": "Summarise."},
    ]


def test_sampling_stop_and_tools_are_mapped_and_openai_only_fields_dropped() -> None:
    request = to_anthropic_request(TOOL_TURN)
    assert request["max_tokens"] == 200
    assert (request["temperature"], request["top_p"], request["top_k"]) == (0.2, 0.9, 20)
    assert request["stop_sequences"] == ["END"]
    assert request["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": TOOLS[0]["function"]["parameters"],
        }
    ]
    assert request["tool_choice"] == {"type": "auto"}
    for dropped in ("stream_options", "ignore_eos", "n", "stop", "chat_template_kwargs", "reasoning_effort"):
        assert dropped not in request
    assert "thinking" not in request


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    request = to_anthropic_request(
        {"messages": [{"role": "user", "content": "hi"}], "tools": TOOLS, "tool_choice": choice}
    )
    assert request["tool_choice"] == expected


def test_max_tokens_defaults_and_stop_lists_pass_through() -> None:
    request = to_anthropic_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b"]})
    assert request["max_tokens"] == 1024
    assert request["stop_sequences"] == ["a", "b"]
    assert "system" not in request and "tools" not in request


@pytest.mark.parametrize(
    ("extra", "max_tokens", "budget_tokens"),
    [
        ({"chat_template_kwargs": {"enable_thinking": True}}, 8000, 4000),
        ({"reasoning_effort": "high"}, 8000, 6000),
        ({"reasoning_effort": "low"}, 8000, 2000),
        # Below the API's floor of 1024: budget 1024 and max_tokens grows so the answer keeps 256.
        ({"chat_template_kwargs": {"enable_thinking": True}}, 256, 1024),
    ],
)
def test_thinking_budget_rule(extra: dict[str, Any], max_tokens: int, budget_tokens: int) -> None:
    payload = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "top_k": 40,
        "top_p": 0.5,
        **extra,
    }
    request = to_anthropic_request(payload)
    assert request["thinking"] == {"type": "enabled", "budget_tokens": budget_tokens}
    assert budget_tokens < request["max_tokens"]
    assert request["max_tokens"] == (max_tokens if budget_tokens < max_tokens else budget_tokens + max_tokens)
    # The Messages API refuses these with thinking on (top_p is allowed only within 0.95..1).
    assert "temperature" not in request and "top_k" not in request and "top_p" not in request


@pytest.mark.parametrize(
    "extra", [{"chat_template_kwargs": {"enable_thinking": False}}, {"reasoning_effort": "none"}, {}]
)
def test_no_thinking_unless_asked(extra: dict[str, Any]) -> None:
    request = to_anthropic_request({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.7, **extra})
    assert "thinking" not in request
    assert request["temperature"] == 0.7


def test_unparsable_tool_arguments_are_kept_not_lost() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    request = to_anthropic_request(
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}]}
    )
    assert request["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c", "name": "f", "input": {"_unparsed_arguments": "{oops"}}
    ]


def test_empty_assistant_turns_are_dropped() -> None:
    request = to_anthropic_request(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "b"},
            ]
        }
    )
    assert request["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_response_blocks_become_an_openai_completion() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Hello "},
            {"type": "text", "text": "there"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 11, "output_tokens": 7},
    }
    completion = from_anthropic_response(body)
    message = completion["choices"][0]["message"]
    assert message["content"] == "Hello there"
    assert message["reasoning_content"] == "hmm"
    assert message["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})},
        }
    ]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["usage"] == {"prompt_tokens": 11, "completion_tokens": 7}


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "pause_turn"),
        (None, None),
    ],
)
def test_stop_reason_mapping(stop_reason: str | None, finish_reason: str | None) -> None:
    assert finish_reason_for(stop_reason) == finish_reason


@pytest.mark.parametrize(
    "body", [[], {"content": "text"}, {"content": [{"type": "text", "text": 3}]}, {"content": ["x"]}]
)
def test_a_body_that_is_not_a_message_is_refused(body: Any) -> None:
    with pytest.raises(ValueError):
        from_anthropic_response(body)
