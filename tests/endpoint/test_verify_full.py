"""harness.endpoint.verify_full against a scripted model that honours every feature (and, one fault
at a time, does not), and against the real embedded llama-server."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from harness.cli.main import main
from harness.endpoint.client import EndpointClient
from harness.endpoint.verify_full import (
    GROUPS,
    TOKENIZE_TEXT,
    VerifyFullResult,
    first_difference,
    format_result,
    pick_stop,
    run_full_checks,
)
from tests.doubles.model_server import Reply, Request, ScriptedModelServer, json_raw

COUNT = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
TOKEN_ROUTES = {"/tokenize": json_raw(200, {"tokens": [504, 2365, 6354]}),
                "/detokenize": json_raw(200, {"content": " " + TOKENIZE_TEXT})}


def _prompt_tokens(body: dict) -> int:
    return 1 + sum(len(str(message.get("content"))) for message in body["messages"]) // 4


def _usage(body: dict, completion_tokens: int) -> dict:
    prompt_tokens = _prompt_tokens(body)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def honest(request: Request) -> Reply:
    """A model server that honours max_tokens, stop, response_format, grammar and tool_choice."""
    body = request.json
    last = body["messages"][-1]["content"]
    limit = body.get("max_tokens", 32)
    if body.get("tools"):
        return Reply(content=None, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
                     usage=_usage(body, 9))
    response_format = (body.get("response_format") or {}).get("type")
    if response_format == "json_object":
        content = '{"name": "Tom", "age": 3}'
    elif response_format == "json_schema":
        content = '{"answer": 42}'
    elif body.get("grammar"):
        content = "yes"
    elif "my name" in last:
        named = re.search(r"My name is (\w+)", json.dumps(body["messages"]))
        content = named.group(1) if named else "I do not know your name."
    elif "capital of France" in last:
        content = "Paris"
    elif "Count" in last:
        content = COUNT
    elif "Say hello" in last:
        content = "Hello! How can I help you today?"
    else:
        content = "Red, orange and yellow are colours of the rainbow and there are more of them"
    words = content.split(" ")
    finish = "stop"
    for stop in body.get("stop") or []:
        if stop in content:
            content, finish = content[: content.index(stop)], "stop"
    if len(words) > limit:
        content, finish = " ".join(words[:limit]), "length"
    return Reply(content=content, finish_reason=finish, usage=_usage(body, min(len(words), limit)))


def ignores_max_tokens(request: Request) -> Reply:
    return honest(replace(request, json={**request.json, "max_tokens": 1000}))


def ignores_stop(request: Request) -> Reply:
    return honest(replace(request, json={**request.json, "stop": None}))


def stream_differs(request: Request) -> Reply:
    reply = honest(request)
    if request.json.get("stream") and "rainbow" in request.json["messages"][-1]["content"]:
        reply.content = reply.content.replace("orange", "green")
    return reply


def json_mode_prose(request: Request) -> Reply:
    reply = honest(request)
    if (request.json.get("response_format") or {}).get("type") == "json_object":
        reply.content = "Sure! The cat is called Tom and is 3."
    return reply


def broken_tool_arguments(request: Request):
    if request.json.get("tool_choice") != "required":
        return honest(request)
    call = {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Par'}}
    return json_raw(200, {"choices": [{"index": 0, "finish_reason": "tool_calls",
                                       "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
                          "usage": {"prompt_tokens": 20, "completion_tokens": 9}})


def no_usage(request: Request) -> Reply:
    reply = honest(request)
    reply.usage = None
    return reply


def forgets_history(request: Request) -> Reply:
    return honest(replace(request, json={**request.json, "messages": request.json["messages"][-1:]}))


def _run(respond, **server_options) -> VerifyFullResult:
    options = {"routes": TOKEN_ROUTES, **server_options}
    with ScriptedModelServer(respond, **options) as server, EndpointClient(server.base_url, timeout_s=10) as client:
        return run_full_checks(client, name="Zenobia")


def _failed(result: VerifyFullResult) -> dict[str, str]:
    return {check.name: check.detail for check in result.checks if check.kind == "server" and not check.passed}


def test_a_server_that_honours_every_feature_passes_every_check():
    result = _run(honest)
    assert _failed(result) == {}, format_result(result)
    assert all(check.passed for check in result.checks), format_result(result)
    assert [note.split(":")[0] for note in result.notes] == ["no profile to compare settings with"]
    assert {check.group for check in result.checks} == set(GROUPS)
    assert len([c for c in result.checks if c.kind == "server"]) >= 15
    recall = next(c for c in result.checks if c.name.startswith("model recalls"))
    assert "Zenobia" in recall.detail


@pytest.mark.parametrize(("respond", "failing", "evidence"), [
    (ignores_max_tokens, {"max_tokens=5 respected"}, "finish_reason 'stop'"),
    (ignores_stop, {"stop sequence honoured"}, "stop '5': '1, 2, 3, 4, 5, 6, 7, 8, 9, 10'"),
    (stream_differs, {"streaming and non-streaming give the same greedy answer"}, "differ at char 5"),
    (json_mode_prose, {"JSON mode (response_format json_object) returns a JSON object"}, "not JSON"),
    (broken_tool_arguments, {'tool_choice "required": tool-call arguments parse as JSON'},
     "get_weather({\"city\": \"Par): not JSON"),
    (no_usage, {"usage counts present and plausible", "usage in a stream (include_usage)"}, "usage missing"),
    (forgets_history, {"multi-turn history sent and answered"}, "the history did not reach the model"),
], ids=lambda value: getattr(value, "__name__", None))
def test_each_fault_fails_exactly_its_check_with_evidence(respond, failing, evidence):
    result = _run(respond)
    failed = _failed(result)
    assert set(failed) == failing, format_result(result)
    assert any(evidence in detail for detail in failed.values()), failed


def test_a_server_without_the_llama_cpp_extras_gets_notes_not_failures():
    def plain_server(request: Request):
        body = request.json
        if body.get("response_format") or body.get("tool_choice"):
            return json_raw(400, {"error": {"message": f"unsupported field in {sorted(body)}"}})
        return honest(replace(request, json={key: value for key, value in body.items() if key != "grammar"}))

    result = _run(plain_server, slots=None, routes={})  # no /props: not llama.cpp; no /tokenize
    assert _failed(result) == {}, format_result(result)
    notes = " | ".join(result.notes)
    for feature in ("JSON mode not supported", "JSON schema not supported", "GBNF grammar ignored",
                    'tool_choice "required" not supported', "/tokenize absent (HTTP 404)"):
        assert feature in notes, notes


def test_a_dead_endpoint_stops_after_the_smoke_checks():
    with ScriptedModelServer(honest) as server:
        url = server.base_url
    with EndpointClient(url, timeout_s=2) as client:
        result = run_full_checks(client)
    assert {check.group for check in result.checks} == {"Smoke checks (verify)"}
    assert not result.checks[-1].passed
    assert "functional checks not run" in result.notes[0]


def test_pick_stop_and_first_difference():
    assert pick_stop(COUNT) == "5"
    assert pick_stop("alpha beta gamma delta") == "gamma"
    assert pick_stop("5 apples") == "apples"
    assert pick_stop("single") is None and pick_stop("") is None
    assert first_difference("abc", "abc") is None
    assert first_difference("abcd", "abXd") == 2
    assert first_difference("ab", "abc") == 2


def test_format_result_groups_lines_under_headings():
    result = _run(stream_differs)
    text = format_result(result)
    lines = text.splitlines()
    headings = [line for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert headings == [f"{group}:" for group in GROUPS]
    assert "  [FAIL] server     streaming and non-streaming give the same greedy answer: differ at char" in text
    assert re.search(r"^Server checks: (\d+)/\1 passed$", text, re.M) is None
    assert re.search(r"^Server checks: \d+/\d+ passed$", text, re.M)


def test_cli_saves_the_result_and_exits_with_the_failure_count(tmp_path, capsys):
    out = tmp_path / "vf.json"
    with ScriptedModelServer(ignores_stop, routes=TOKEN_ROUTES) as server:
        code = main(["verify-full", server.base_url, "--save-json", str(out), "--timeout-s", "10"])
    printed = capsys.readouterr()
    assert code == 1, printed.out
    saved = VerifyFullResult.model_validate_json(out.read_text())
    assert saved.kind == "verify-full" and saved.profile is None and saved.model == "scripted-model"
    assert [c.name for c in saved.checks if not c.passed] == ["stop sequence honoured"]
    assert "[FAIL] server     stop sequence honoured" in printed.out
    assert "[verify-full] multi-turn" in printed.err
    assert json.loads(out.read_text())["checks"][0]["group"] == "Smoke checks (verify)"


def test_cli_refuses_a_bad_save_path_before_any_request(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    with ScriptedModelServer(honest) as server:
        code = main(["verify-full", server.base_url, "--save-json", str(tmp_path / "a-file" / "x.json")])
        assert server.requests == []
    assert code != 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.docker
@pytest.mark.server
def test_every_server_check_passes_on_the_embedded_llama_server(embedded_server):
    with EndpointClient(embedded_server.base_url, timeout_s=60) as client:
        result = run_full_checks(client, embedded_server.profile)
    print(format_result(result))
    assert _failed(result) == {}, format_result(result)
    names = {check.name for check in result.checks}
    assert {"GBNF grammar (llama.cpp grammar field) followed", "/tokenize and /detokenize round-trip",
            "context size applied", "server slots applied"} <= names, format_result(result)
