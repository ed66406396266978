"""The one endpoint client, over real HTTP to the scripted model server."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from harness.endpoint.client import (
    ChatOutcome,
    EndpointClient,
    RetryPolicy,
    ServerInfo,
    normalize_base_url,
    read_api_key,
    redact_url,
    strip_think,
    thinking_control_for,
)
from harness.errors import EndpointError
from tests.doubles.model_server import Raw, Reply, Request, ScriptedModelServer, json_raw

FAST_RETRY = RetryPolicy(max_retries=2, max_total_wait_s=5, backoff_s=0.01)
USER = [{"role": "user", "content": "What is the weather?"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {}}},
}


def scripted(*responses: Raw | Reply) -> Any:
    """A respond() that plays ``responses`` in order, then repeats the last one."""
    queue = list(responses)
    lock = threading.Lock()

    def respond(request: Request) -> Raw | Reply:
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


def chat_requests(server: ScriptedModelServer) -> list[Request]:
    return [request for request in server.requests if request.wire is not None]


# --- URLs, keys, <think> -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:8080", "http://h:8080"),
        ("http://h:8080/", "http://h:8080"),
        ("http://h:8080/v1", "http://h:8080"),
        ("http://h:8080/v1/", "http://h:8080"),
        ("https://api.example.com/v1", "https://api.example.com"),
        ("http://h/proxy/v1/", "http://h/proxy"),
        ("  http://u:p@h:1/v1 ", "http://u:p@h:1"),
    ],
)
def test_normalize_base_url(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


@pytest.mark.parametrize(
    "url", ["htp://x", "localhost:8080", "127.0.0.1:8080", "", "http://", "ftp://h/", "http://h:port/"]
)
def test_normalize_base_url_refuses_what_is_not_http(url: str) -> None:
    with pytest.raises(EndpointError, match="not an http"):
        normalize_base_url(url)


def test_bad_url_messages_hide_credentials() -> None:
    with pytest.raises(EndpointError) as raised:
        normalize_base_url("htp://user:hunter2@h/")
    assert "hunter2" not in str(raised.value)


def test_redact_url() -> None:
    assert redact_url("http://user:secret@h/x") == "http://***@h/x"
    assert redact_url("https://h:1/v1") == "https://h:1/v1"


def test_read_api_key() -> None:
    assert read_api_key(None, {"K": "v"}) is None
    assert read_api_key("K", {"K": " sk-1 \n"}) == "sk-1"
    for environ in ({}, {"K": ""}, {"K": "  "}):
        with pytest.raises(EndpointError, match=r"API key variable K is not set .*API_KEY_ENV"):
            read_api_key("K", environ)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain answer", "plain answer"),
        ("<think>hmm</think>\n\nThe answer is 4.", "The answer is 4."),
        ("<THINK>a\nb</Think>4", "4"),
        ("4 <think>second thoughts", "4"),
        ("reasoning the template opened</think>\n42", "42"),
        ("a</think>b</think> c", "c"),
        ("<think>x</think>one<think>y</think> two", "one two"),
        ("<think>only thinking</think>", ""),
        ("  spaced  ", "spaced"),
    ],
)
def test_strip_think(text: str, expected: str) -> None:
    assert strip_think(text) == expected


def test_thinking_control_for() -> None:
    assert thinking_control_for("{% if enable_thinking %}") == "chat_template_kwargs"
    assert thinking_control_for("{{ reasoning_effort }}") == "reasoning_effort"
    assert thinking_control_for("{{ messages }}") == "none"


# --- probe ----------------------------------------------------------------------------------


def test_probe_reads_models_props_and_health() -> None:
    template = "{% if enable_thinking %}<think>{% endif %}"
    with ScriptedModelServer(model_ids=["a", "b"], slots=4, n_ctx=8192, chat_template=template) as server:
        with EndpointClient(server.base_url + "/v1/") as client:
            info = client.probe()
    assert client.info == info
    assert (info.base_url, info.provider, info.model_ids, info.model) == (
        server.base_url,
        "openai-compatible",
        ["a", "b"],
        "a",
    )
    assert (info.is_llama_cpp, info.slots, info.n_ctx_per_slot) == (True, 4, 8192)
    assert info.chat_template == template and info.thinking_control == "chat_template_kwargs"
    assert info.default_sampling is not None and info.default_sampling["temperature"] == 0.8
    assert info.health_status == 200


def test_probe_uses_the_configured_model_and_tolerates_missing_or_garbled_props() -> None:
    for props in (
        Raw(404, b"not found"),
        Raw(200, b"<html>"),
        json_raw(200, [1, 2]),
        json_raw(200, {"total_slots": "x"}),
    ):
        with ScriptedModelServer(routes={"/props": props, "/health": Raw(503)}) as server:
            with EndpointClient(server.base_url, model_id="alias") as client:
                info = client.probe()
        assert info.model == "alias"
        assert (info.is_llama_cpp, info.slots, info.n_ctx_per_slot, info.chat_template) == (False, None, None, "")
        assert (info.thinking_control, info.default_sampling, info.health_status) == ("none", None, 503)


def test_probe_of_an_anthropic_endpoint_skips_llama_cpp_routes() -> None:
    with ScriptedModelServer(api_key="sk-ant") as server:
        with EndpointClient(server.base_url, provider="anthropic", api_key="sk-ant") as client:
            info = client.probe()
    assert (info.thinking_control, info.slots, info.health_status) == ("anthropic", None, None)
    assert [request.path for request in server.requests] == ["/v1/models"]
    headers = server.requests[0].headers
    assert headers["x-api-key"] == "sk-ant" and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers


def test_probe_without_a_key_names_the_variable_to_set() -> None:
    with ScriptedModelServer(api_key="sk-right") as server:
        with EndpointClient(server.base_url, api_key_env="MYKEY") as client:
            with pytest.raises(EndpointError) as named:
                client.probe()
        with EndpointClient(server.base_url) as client:
            with pytest.raises(EndpointError) as unnamed:
                client.probe()
        with EndpointClient(server.base_url, api_key="sk-right", api_key_env="MYKEY") as client:
            assert client.probe().model == "scripted-model"
        assert server.requests[-1].headers["authorization"] == "Bearer sk-right"
    assert str(named.value).startswith(
        f"{server.base_url}/v1/models: HTTP 401 unauthorized: set the key in $MYKEY (API_KEY_ENV)"
    )
    assert "the endpoint wants an API key; name its variable with API_KEY_ENV or --api-key-env" in str(unnamed.value)


def test_probe_failures_name_the_redacted_url() -> None:
    with ScriptedModelServer(routes={"/v1/models": json_raw(200, {"data": []})}) as server:
        port = server.base_url.rsplit(":", 1)[1]
        with EndpointClient(f"http://user:pw@127.0.0.1:{port}") as client:
            with pytest.raises(
                EndpointError, match=r"http://\*\*\*@127\.0\.0\.1:\d+/v1/models: lists no model"
            ) as raised:
                client.probe()
    assert "pw" not in str(raised.value)
    with ScriptedModelServer(routes={"/v1/models": Raw(500, b"boom")}) as server:
        with EndpointClient(server.base_url) as client, pytest.raises(EndpointError, match="HTTP 500: boom"):
            client.probe()
    with EndpointClient(server.base_url, connect_timeout_s=1) as client:  # the server is gone now
        with pytest.raises(EndpointError, match="/v1/models: unreachable"):
            client.probe()


def test_get_passes_auth_and_raises_only_on_transport_failure() -> None:
    with ScriptedModelServer(routes={"/metrics": Raw(404)}) as server:
        with EndpointClient(server.base_url, api_key="k") as client:
            assert client.get("/health").status_code == 200
            assert client.get("/metrics").status_code == 404
    assert server.requests[0].headers["authorization"] == "Bearer k"
    with EndpointClient(server.base_url) as client, pytest.raises(EndpointError, match="/health: unreachable"):
        client.get("/health", timeout_s=1)


def test_the_key_wins_over_url_credentials_and_url_credentials_work_alone() -> None:
    with ScriptedModelServer() as server:
        port = server.base_url.rsplit(":", 1)[1]
        with EndpointClient(f"http://proxy:pw@127.0.0.1:{port}", api_key="k") as client:
            client.get("/health")
        with EndpointClient(f"http://proxy:pw@127.0.0.1:{port}") as client:
            client.get("/health")
    assert server.requests[0].headers["authorization"] == "Bearer k"
    assert server.requests[1].headers["authorization"].startswith("Basic ")


# --- chat: replies --------------------------------------------------------------------------


def test_openai_chat_reply() -> None:
    reply = Reply(
        content="<think>scratch</think> Sunny.",
        reasoning="It is July.",
        usage={"prompt_tokens": 9, "completion_tokens": 4},
        timings={"predicted_per_second": 50.0, "prompt_n": 9},
    )
    with ScriptedModelServer(scripted(reply)) as server, EndpointClient(server.base_url, model_id="m") as client:
        outcome = client.chat(
            {"messages": USER, "max_tokens": 32, "stream": True, "stream_options": {"include_usage": True}}
        )
    assert outcome.failure is None and outcome.error == "" and outcome.retries == []
    got = outcome.reply
    assert got is not None
    assert (got.content, got.raw_content, got.reasoning, got.content_source) == (
        "Sunny.",
        "<think>scratch</think> Sunny.",
        "It is July.",
        "content",
    )
    assert (got.finish_reason, got.usage.prompt_tokens, got.usage.completion_tokens) == ("stop", 9, 4)
    assert got.timings == {"predicted_per_second": 50.0, "prompt_n": 9.0}
    assert got.body["choices"][0]["message"]["reasoning_content"] == "It is July."
    assert 0 < got.latency_ms <= outcome.latency_ms
    sent = server.requests[-1]
    assert (sent.path, sent.json["model"], sent.json["max_tokens"]) == ("/v1/chat/completions", "m", 32)
    assert "stream" not in sent.json and "stream_options" not in sent.json  # chat() never streams


def test_content_falls_back_to_reasoning_and_other_reasoning_field_names() -> None:
    replies = [
        Reply(content="", reasoning="  The answer is 7.  ", reasoning_field="reasoning"),
        Reply(content=None, reasoning=None),
        Reply(content="<think>all thought</think>"),
    ]
    with ScriptedModelServer(scripted(*replies)) as server, EndpointClient(server.base_url) as client:
        outcomes = [client.chat({"messages": USER}) for _ in replies]
    assert [(o.reply.content, o.reply.content_source) for o in outcomes if o.reply] == [
        ("The answer is 7.", "reasoning"),
        ("", "none"),
        ("", "none"),
    ]


def test_content_part_lists_are_joined() -> None:
    body = {
        "choices": [
            {
                "message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                "finish_reason": "stop",
            }
        ]
    }
    with ScriptedModelServer(scripted(json_raw(200, body))) as server, EndpointClient(server.base_url) as client:
        outcome = client.chat({"messages": USER})
    assert outcome.reply is not None and outcome.reply.raw_content == "ab"
    assert outcome.reply.usage.prompt_tokens is None and outcome.reply.timings is None


def test_openai_tool_calls_come_back_in_openai_shape() -> None:
    call = {"id": "call_9", "name": "get_weather", "arguments": {"city": "Oslo"}}
    with (
        ScriptedModelServer(scripted(Reply(content=None, tool_calls=[call]))) as server,
        EndpointClient(server.base_url) as client,
    ):
        outcome = client.chat({"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": "auto"})
    assert outcome.reply is not None and outcome.reply.finish_reason == "tool_calls"
    assert outcome.reply.tool_calls == [
        {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert server.requests[-1].json["tools"] == [WEATHER_TOOL]


def test_anthropic_tool_round_trip_and_thinking() -> None:
    first = Reply(
        content="Let me check.",
        reasoning="Need the tool.",
        tool_calls=[{"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Oslo"}}],
        usage={"prompt_tokens": 20, "completion_tokens": 12},
    )
    second = Reply(content="Rain in Oslo.", finish_reason="length")
    with ScriptedModelServer(scripted(first, second), api_key="sk-ant") as server:
        with EndpointClient(server.base_url, provider="anthropic", api_key="sk-ant", model_id="claude-x") as client:
            payload: dict[str, Any] = {
                "messages": [{"role": "system", "content": "Be brief."}, *USER],
                "tools": [WEATHER_TOOL],
                "tool_choice": "required",
                "max_tokens": 2048,
                "temperature": 0.5,
                "chat_template_kwargs": {"enable_thinking": True},
            }
            turn1 = client.chat(payload)
            assert turn1.reply is not None, turn1.error
            history = [
                *payload["messages"],
                {"role": "assistant", "content": turn1.reply.raw_content, "tool_calls": turn1.reply.tool_calls},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "rain"},
            ]
            turn2 = client.chat({**payload, "messages": history})
    reply1 = turn1.reply
    assert (reply1.content, reply1.reasoning, reply1.finish_reason) == ("Let me check.", "Need the tool.", "tool_calls")
    assert reply1.tool_calls == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert (reply1.usage.prompt_tokens, reply1.usage.completion_tokens) == (20, 12)
    assert reply1.body["content"][0]["type"] == "thinking"  # the wire body, as received
    assert turn2.reply is not None and (turn2.reply.content, turn2.reply.finish_reason) == ("Rain in Oslo.", "length")

    sent1, sent2 = (request.json for request in chat_requests(server))
    assert server.requests[-1].path == "/v1/messages"
    assert sent1["system"] == "Be brief." and sent1["model"] == "claude-x"
    assert sent1["tools"] == [
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert sent1["tool_choice"] == {"type": "any"}
    assert sent1["thinking"] == {"type": "enabled", "budget_tokens": 1024} and "temperature" not in sent1
    assert [message["role"] for message in sent2["messages"]] == ["user", "assistant", "user"]
    assert sent2["messages"][1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    assert sent2["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"}]


@pytest.mark.parametrize(
    ("finish_reason", "expected"), [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls")]
)
def test_anthropic_stop_reasons_map_to_openai_finish_reasons(finish_reason: str, expected: str) -> None:
    with ScriptedModelServer(scripted(Reply(finish_reason=finish_reason))) as server:
        with EndpointClient(server.base_url, provider="anthropic", model_id="claude-x") as client:
            outcome = client.chat({"messages": USER})
    assert outcome.reply is not None and outcome.reply.finish_reason == expected
    assert server.requests[-1].json["max_tokens"] == 1024
    assert outcome.reply.body["stop_reason"] in ("end_turn", "max_tokens", "tool_use")


# --- chat: failures as data -----------------------------------------------------------------


MALFORMED_200 = {
    "html": b"<html><body>Gateway says hello</body></html>",
    "list": b"[]",
    "choices not a list": b'{"choices": "nope"}',
    "empty choices": b'{"choices": []}',
    "content is a number": b'{"choices": [{"message": {"content": 42}, "finish_reason": "stop"}]}',
    "no message": b'{"choices": [{"text": "legacy completion"}]}',
    "tool_calls not a list": b'{"choices": [{"message": {"content": "x", "tool_calls": {}}}]}',
    "truncated": b'{"choices": [{"message": {"content": "The answ',
    "empty": b"",
}


@pytest.mark.parametrize("name", MALFORMED_200)
def test_malformed_200_is_a_bad_reply_with_evidence_and_never_retried(name: str) -> None:
    body = MALFORMED_200[name]
    with (
        ScriptedModelServer(scripted(Raw(200, body))) as server,
        EndpointClient(server.base_url, retry=FAST_RETRY) as client,
    ):
        outcome = client.chat({"messages": USER})
    assert (outcome.reply, outcome.failure, outcome.retries) == (None, "bad_reply", [])
    assert len(chat_requests(server)) == 1
    assert "HTTP 200" in outcome.error and body.decode()[:200] in outcome.error
    assert "\n" not in outcome.error


def test_bad_reply_evidence_is_cut_to_200_characters() -> None:
    body = b"<html>" + b"x" * 1000
    with ScriptedModelServer(scripted(Raw(200, body))) as server, EndpointClient(server.base_url) as client:
        outcome = client.chat({"messages": USER})
    assert outcome.failure == "bad_reply" and "x" * 194 in outcome.error and "x" * 195 not in outcome.error


def test_anthropic_malformed_200_is_a_bad_reply() -> None:
    with ScriptedModelServer(scripted(json_raw(200, {"content": "flat text"}))) as server:
        with EndpointClient(server.base_url, provider="anthropic", model_id="claude-x") as client:
            outcome = client.chat({"messages": USER})
    assert outcome.failure == "bad_reply" and "flat text" in outcome.error


def test_429_with_retry_after_is_honoured_then_succeeds() -> None:
    limited = json_raw(429, {"error": "slow down"}, {"Retry-After": "1"})
    with (
        ScriptedModelServer(scripted(limited, Reply(content="ok"))) as server,
        EndpointClient(server.base_url) as client,
    ):
        started = time.monotonic()
        outcome = client.chat({"messages": USER})
        elapsed_s = time.monotonic() - started
    assert outcome.reply is not None and outcome.reply.content == "ok"
    assert len(outcome.retries) == 1
    assert (
        outcome.retries[0].attempt == 1 and outcome.retries[0].wait_s == 1.0 and "HTTP 429" in outcome.retries[0].reason
    )
    assert 1.0 <= elapsed_s < 2.0
    assert outcome.latency_ms >= 1000 > outcome.reply.latency_ms


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
    limited = Raw(429, b"", {"Retry-After": when})
    with ScriptedModelServer(scripted(limited, Reply())) as server, EndpointClient(server.base_url) as client:
        outcome = client.chat({"messages": USER})
    assert outcome.reply is not None and len(outcome.retries) == 1
    assert 0 <= outcome.retries[0].wait_s <= 1.0


def test_500_twice_then_success() -> None:
    with ScriptedModelServer(scripted(Raw(500, b"oops"), Raw(502, b"bad gateway"), Reply(content="fine"))) as server:
        with EndpointClient(server.base_url, retry=FAST_RETRY) as client:
            outcome = client.chat({"messages": USER})
    assert outcome.reply is not None and outcome.reply.content == "fine"
    assert [(r.attempt, r.wait_s) for r in outcome.retries] == [(1, 0.01), (2, 0.02)]  # backoff_s * attempt
    assert "HTTP 502: bad gateway" in outcome.retries[1].reason


def test_500_forever_is_a_server_error_after_max_retries() -> None:
    with (
        ScriptedModelServer(scripted(Raw(503, b"overloaded"))) as server,
        EndpointClient(server.base_url, retry=FAST_RETRY) as client,
    ):
        outcome = client.chat({"messages": USER})
    assert (outcome.reply, outcome.failure) == (None, "server_error")
    assert len(outcome.retries) == 2 and len(chat_requests(server)) == 3
    assert "HTTP 503: overloaded" in outcome.error and "after 2 retries" in outcome.error


def test_429_forever_is_an_http_error() -> None:
    with (
        ScriptedModelServer(scripted(Raw(429, b"quota"))) as server,
        EndpointClient(server.base_url, retry=FAST_RETRY) as client,
    ):
        outcome = client.chat({"messages": USER})
    assert outcome.failure == "http_error" and len(chat_requests(server)) == 3


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_other_4xx_is_not_retried(status: int) -> None:
    with ScriptedModelServer(scripted(json_raw(status, {"error": "context too long"}))) as server:
        with EndpointClient(server.base_url, retry=FAST_RETRY) as client:
            outcome = client.chat({"messages": USER})
    assert (outcome.failure, outcome.retries, len(chat_requests(server))) == ("http_error", [], 1)
    assert f"HTTP {status}" in outcome.error and "context too long" in outcome.error


def test_chat_401_names_the_key_variable() -> None:
    with (
        ScriptedModelServer(api_key="right") as server,
        EndpointClient(server.base_url, api_key="wrong", api_key_env="MYKEY") as client,
    ):
        outcome = client.chat({"messages": USER})
    assert outcome.failure == "http_error" and outcome.retries == []
    assert "HTTP 401 unauthorized: set the key in $MYKEY (API_KEY_ENV)" in outcome.error


def test_total_retry_wait_is_bounded() -> None:
    policy = RetryPolicy(max_retries=10, max_total_wait_s=0.3, backoff_s=0.01)
    with ScriptedModelServer(scripted(Raw(429, b"", {"Retry-After": "100"}))) as server:
        with EndpointClient(server.base_url, retry=policy) as client:
            started = time.monotonic()
            outcome = client.chat({"messages": USER})
            elapsed_s = time.monotonic() - started
    assert outcome.failure == "http_error"
    assert sum(record.wait_s for record in outcome.retries) == pytest.approx(0.3)
    assert elapsed_s < 1.5


def test_retries_never_sleep_past_the_deadline() -> None:
    with (
        ScriptedModelServer(scripted(Raw(503, b"", {"Retry-After": "5"}))) as server,
        EndpointClient(server.base_url) as client,
    ):
        started = time.monotonic()
        outcome = client.chat({"messages": USER}, deadline=started + 1.0)
        elapsed_s = time.monotonic() - started
    assert (outcome.failure, outcome.retries) == ("server_error", [])
    assert elapsed_s < 0.5


def test_deadline_bounds_a_dripping_body() -> None:
    body = json.dumps({"choices": [{"message": {"content": "x" * 200}}]}).encode()
    with (
        ScriptedModelServer(scripted(Raw(200, body, drip_s=0.05))) as server,
        EndpointClient(server.base_url, retry=FAST_RETRY) as client,
    ):
        started = time.monotonic()
        outcome = client.chat({"messages": USER}, deadline=started + 0.6)
        elapsed_s = time.monotonic() - started
    assert (outcome.failure, outcome.retries) == ("timeout", [])
    assert 0.6 <= elapsed_s < 1.6
    assert "deadline" in outcome.error


def test_deadline_bounds_a_server_that_never_answers() -> None:
    with ScriptedModelServer(latency_s=3) as server, EndpointClient(server.base_url, retry=FAST_RETRY) as client:
        started = time.monotonic()
        outcome = client.chat({"messages": USER}, deadline=started + 0.5)
        elapsed_s = time.monotonic() - started
    assert outcome.failure == "timeout" and elapsed_s < 1.5


def test_default_deadline_is_timeout_s() -> None:
    with ScriptedModelServer(latency_s=3) as server, EndpointClient(server.base_url, timeout_s=0.4) as client:
        started = time.monotonic()
        outcome = client.chat({"messages": USER})
    assert outcome.failure == "timeout" and time.monotonic() - started < 1.4


def test_a_connection_dropped_mid_body_is_retried() -> None:
    body = json.dumps({"choices": [{"message": {"content": "whole"}}]}).encode()
    with ScriptedModelServer(scripted(Raw(200, body, close_after_bytes=10), Raw(200, body))) as server:
        with EndpointClient(server.base_url, retry=FAST_RETRY) as client:
            outcome = client.chat({"messages": USER})
    assert outcome.reply is not None and outcome.reply.content == "whole"
    assert len(outcome.retries) == 1 and "unreachable" in outcome.retries[0].reason


def test_an_unreachable_endpoint_is_retried_then_reported() -> None:
    with ScriptedModelServer() as server:
        url = server.base_url
    with EndpointClient(url, retry=FAST_RETRY) as client:
        outcome = client.chat({"messages": USER})
    assert (outcome.reply, outcome.failure) == (None, "endpoint_unreachable")
    assert len(outcome.retries) == 2 and outcome.error.startswith(f"{url}/v1/chat/completions: unreachable")


def test_max_connections_bounds_concurrency() -> None:
    with ScriptedModelServer(latency_s=0.2) as server, EndpointClient(server.base_url, max_connections=2) as client:
        outcomes: list[ChatOutcome] = []
        threads = [threading.Thread(target=lambda: outcomes.append(client.chat({"messages": USER}))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert all(outcome.reply is not None for outcome in outcomes) and len(outcomes) == 4
    assert server.max_in_flight == 2 and server.in_flight == 0


# --- streaming ------------------------------------------------------------------------------


def fake_clock() -> Any:
    """A clock that ticks one second per reading, so timings are exact."""
    return itertools.count().__next__


def test_openai_stream() -> None:
    reply = Reply(
        content="Sunny and warm.",
        reasoning="Look outside.",
        usage={"prompt_tokens": 6, "completion_tokens": 9},
        timings={"predicted_per_second": 42.0},
    )
    with ScriptedModelServer(scripted(reply)) as server, EndpointClient(server.base_url, model_id="m") as client:
        result = client.stream_chat({"messages": USER, "max_tokens": 16}, clock=fake_clock())
    # Readings: 0 at the start, 1..5 at the five text chunks, 6 at the end.
    assert (result.started_s, result.ttft_s, result.ended_s, result.wall_s) == (0, 1, 6, 6)
    assert result.text_chunks == 5  # "Look ", "outside." + "Sunny ", "and ", "warm."
    assert result.chunk_times_s == [1, 2, 3, 4, 5]  # inter-token gaps are read from these
    assert (result.text, result.reasoning) == ("Sunny and warm.", "Look outside.")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 9)
    assert result.timings == {"predicted_per_second": 42.0}
    assert (result.finish_reason, result.done) == ("stop", True)
    sent = server.requests[-1].json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True} and sent["model"] == "m"


def test_stream_ttft_is_measured_from_the_request() -> None:
    with ScriptedModelServer(scripted(Reply(content="a b c", chunk_delay_s=0.05)), latency_s=0.2) as server:
        with EndpointClient(server.base_url) as client:
            result = client.stream_chat({"messages": USER})
    assert result.ttft_s is not None and 0.2 <= result.ttft_s < result.wall_s
    assert result.wall_s >= 0.2 + 0.05 * 2  # pauses between the three pieces


def test_anthropic_stream() -> None:
    reply = Reply(
        content="Rain.",
        reasoning="Check the sky.",
        tool_calls=[{"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Oslo"}}],
        usage={"prompt_tokens": 30, "completion_tokens": 11},
    )
    with ScriptedModelServer(scripted(reply), api_key="sk-ant") as server:
        with EndpointClient(server.base_url, provider="anthropic", api_key="sk-ant", model_id="claude-x") as client:
            result = client.stream_chat({"messages": USER, "tools": [WEATHER_TOOL]}, clock=fake_clock())
    assert (result.ttft_s, result.text_chunks, result.text, result.reasoning) == (1, 4, "Rain.", "Check the sky.")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 11)
    assert (result.finish_reason, result.done, result.timings) == ("tool_calls", True, None)
    assert result.tool_calls == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    ]
    sent = server.requests[-1]
    assert sent.path == "/v1/messages" and sent.json["stream"] is True and "stream_options" not in sent.json


@pytest.mark.parametrize("provider", ["openai-compatible", "anthropic"])
def test_a_stream_cut_before_its_end_is_not_done(provider: str) -> None:
    with ScriptedModelServer(scripted(Reply(content="half an answer", stream_end=False))) as server:
        with EndpointClient(server.base_url, provider=provider, model_id="m") as client:  # type: ignore[arg-type]
            result = client.stream_chat({"messages": USER})
    assert (result.text, result.done) == ("half an answer", False)


def test_stream_retries_before_the_first_byte() -> None:
    with ScriptedModelServer(scripted(Raw(503, b"loading"), Reply(content="ok"))) as server:
        with EndpointClient(server.base_url, retry=FAST_RETRY) as client:
            result = client.stream_chat({"messages": USER})
    assert result.done and result.text == "ok" and len(result.retries) == 1


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (json_raw(400, {"error": "bad request"}), r"/v1/chat/completions: HTTP 400: .*bad request"),
        (
            Raw(
                200,
                b'data: {"choices": [{"delta": {"content": "a"}}]}\n\ndata: {"error": {"message": "slot died"}}\n\n',
            ),
            "the stream reported an error: .*slot died",
        ),
        (Raw(200, b"data: {not json\n\n"), "unreadable stream chunk: {not json"),
        (Raw(200, b'data: {"choices": [{"delta": "text"}]}\n\n'), "unreadable stream chunk"),
        (Raw(200, b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n' * 5, close_after_bytes=60), "stream broke"),
    ],
)
def test_stream_failures_raise_with_evidence(response: Raw, message: str) -> None:
    with ScriptedModelServer(scripted(response)) as server, EndpointClient(server.base_url, retry=FAST_RETRY) as client:
        with pytest.raises(EndpointError, match=message):
            client.stream_chat({"messages": USER})
    assert len(chat_requests(server)) == 1


def test_anthropic_error_event_raises() -> None:
    body = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    with (
        ScriptedModelServer(scripted(Raw(200, body))) as server,
        EndpointClient(server.base_url, provider="anthropic", model_id="m") as client,
    ):
        with pytest.raises(EndpointError, match="stream reported an error: .*Overloaded"):
            client.stream_chat({"messages": USER})


def test_stream_deadline_bounds_a_drip() -> None:
    body = b'data: {"choices": [{"delta": {"content": "tick"}}]}\n\n' * 20
    with (
        ScriptedModelServer(scripted(Raw(200, body, drip_s=0.02))) as server,
        EndpointClient(server.base_url) as client,
    ):
        started = time.monotonic()
        with pytest.raises(EndpointError, match="deadline"):
            client.stream_chat({"messages": USER}, deadline=started + 0.5)
    assert time.monotonic() - started < 1.5


# --- the key never leaks --------------------------------------------------------------------


def test_the_api_key_appears_in_nothing_the_client_produces() -> None:
    key, password = "sk-SECRET-0123456789", "pw-SECRET-url"
    produced: list[str] = []  # every message, record and repr, ServerInfo aside
    infos: list[str] = []  # ServerInfo keeps the real URL by design; it must still hold no key

    def echo_the_key(request: Request) -> Raw | Reply:
        # Some servers echo the credential they refused; the client must not pass it on.
        max_tokens = request.json.get("max_tokens") if isinstance(request.json, dict) else None
        if max_tokens == 1:
            credentials = f"{request.headers.get('authorization')} {request.headers.get('x-api-key')}"
            return Raw(500, f"upstream refused {credentials}".encode())
        if max_tokens == 2:
            return Raw(200, f"<html>key={key}</html>".encode())
        if max_tokens == 3:
            return Raw(200, f"data: {{bad {key}\n\n".encode())
        return Reply(content="fine")

    def collect(thing: Any) -> None:
        target = infos if isinstance(thing, ServerInfo) else produced
        target.append(thing.model_dump_json() if hasattr(thing, "model_dump_json") else str(thing))
        target.append(repr(thing))

    for provider in ("openai-compatible", "anthropic"):
        with ScriptedModelServer(echo_the_key, api_key=key) as server:
            port = server.base_url.rsplit(":", 1)[1]
            clients = [
                EndpointClient(
                    server.base_url,
                    provider=provider,
                    api_key=key,
                    api_key_env="MYKEY",
                    model_id="m",  # type: ignore[arg-type]
                    retry=FAST_RETRY,
                ),  # type: ignore[arg-type]
                EndpointClient(
                    f"http://u:{password}@127.0.0.1:{port}/v1",
                    provider=provider,
                    api_key=key,  # type: ignore[arg-type]
                    model_id="m",
                    retry=FAST_RETRY,
                ),
                EndpointClient(server.base_url, provider=provider, api_key="wrong", api_key_env="MYKEY"),  # type: ignore[arg-type]
            ]
            for client in clients:
                collect(client)
                collect(client.display_url)
                for action in (client.probe, lambda c=client: c.get("/health")):
                    try:
                        collect(action())
                    except EndpointError as exc:
                        collect(exc)
                for max_tokens in (1, 2, 3, 4):
                    collect(client.chat({"messages": USER, "max_tokens": max_tokens}))
                    try:
                        collect(client.stream_chat({"messages": USER, "max_tokens": max_tokens}))
                    except EndpointError as exc:
                        collect(exc)
                client.close()
    with EndpointClient(f"http://u:{password}@127.0.0.1:{port}", api_key=key, retry=FAST_RETRY) as gone:
        collect(gone.chat({"messages": USER}))
        with pytest.raises(EndpointError) as raised:
            gone.probe()
        collect(raised.value)
        with pytest.raises(EndpointError) as raised:
            gone.stream_chat({"messages": USER})
        collect(raised.value)
    with pytest.raises(EndpointError) as raised:
        read_api_key("MYKEY", {"MYKEY": ""})
    collect(raised.value)

    assert len(produced) > 80 and len(infos) == 8  # the checks below looked at something
    for evidence in ("HTTP 401", "HTTP 500", "bad_reply", "unreadable stream chunk", "***", "fine"):
        assert any(evidence in text for text in produced), evidence
    assert [text for text in produced if key in text or password in text] == []
    assert [text for text in infos if key in text] == []
