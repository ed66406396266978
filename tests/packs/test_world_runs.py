"""agent-20 end to end: the pack runner, the agent loop and the mock services over real HTTP.

The model is the scripted double (its reference, empty and misbehaving modes); the services
are the real in-process mocks, answering each call by its arguments. No container is involved:
nothing the model sends is executed.
"""

from __future__ import annotations

import pytest

from harness.cli import main as cli
from harness.endpoint.client import EndpointClient
from harness.packs.loader import load_pack_dir
from harness.packs.runner import RunOptions, run_packs
from harness.packs.summary import summary
from tests.conftest import REPO_ROOT
from tests.doubles.scripted_server import ScriptedModel


@pytest.fixture(scope="module")
def agent20():
    return load_pack_dir(REPO_ROOT / "packs" / "agent-20")


def _run(pack, mode: str, **kwargs):
    with ScriptedModel(pack.scenarios, mode=mode, **kwargs) as model:
        result = run_packs([pack], RunOptions(base_url=model.base_url, timeout_override_s=30, concurrency=2))
        return result, model.requests


def test_the_reference_agent_passes_every_scenario_through_the_real_loop(agent20):
    result, requests = _run(agent20, "perfect")
    pack = result.packs[0]
    assert pack.passed == pack.total == 20, {s.scenario_id: s.detail for s in pack.scenarios if s.status != "pass"}
    tool_turns = [body for body in requests if body.get("tools")]
    offered = {t["function"]["name"] for t in tool_turns[0]["tools"]}
    assert {"memory_save", "schedule_create", "artifact_write", "web_search", "delegate", "calculator",
            "send_email", "submit"} <= offered
    assert "personal assistant" in tool_turns[0]["messages"][0]["content"]
    # the services answered by argument: tool results that went back to the model differ per call
    results = [m["content"] for body in tool_turns for m in body["messages"] if m.get("role") == "tool"]
    assert len(set(results)) > 20
    health = pack.agent_health
    assert health is not None and health.false_premises >= 2 and health.sycophancy_rate == 0.0
    assert health.refusals_of_safe_tasks == 0 and health.mean_sandbox_overhead_ms is None
    assert all(s.reply.world is not None for s in pack.scenarios)


def test_an_empty_agent_fails_every_scenario_with_a_failure_mode(agent20):
    result, _ = _run(agent20, "empty")
    pack = result.packs[0]
    assert pack.passed == 0 and pack.mean_score == 0
    assert {s.failure_mode for s in pack.scenarios} == {"no_answer_found"}
    assert pack.agent_health.sycophancy_rate == 1.0  # saying nothing never corrects a false premise


@pytest.mark.parametrize("mode, failure", [("loop", "loop_detected"), ("hallucinate", "tool_hallucination"),
                                           ("bad_args", "loop_detected")])
def test_misbehaving_agents_are_named_by_their_failure_mode(agent20, mode, failure):
    subset = agent20.model_copy(update={"scenarios": agent20.scenarios[:3]})
    with ScriptedModel(subset.scenarios, mode=mode, loop_call={"name": "memory_list", "arguments": {}},
                       bad_call={"name": "calculator", "arguments": {"expr": "1+1"}}) as model:
        result = run_packs([subset], RunOptions(base_url=model.base_url, timeout_override_s=30))
    pack = result.packs[0]
    assert {s.failure_mode for s in pack.scenarios} == {failure}, [s.detail for s in pack.scenarios]
    health = pack.agent_health
    if mode == "hallucinate":
        assert health.hallucination_rate == 1.0
    if mode == "bad_args":  # refused twice with the reason, then the third identical call is a loop
        assert health.schema_error_rate == round(2 / 3, 4)
        first = pack.scenarios[0].reply.tool_calls[0]
        assert first.error == "error: calculator: missing argument(s): expression"


def test_agent20_over_the_anthropic_wire_format(agent20):
    subset = agent20.model_copy(update={"scenarios": agent20.scenarios[:4]})
    with ScriptedModel(subset.scenarios, api_key="sk-ant-test", slots=None) as model, \
            EndpointClient(model.base_url + "/v1", provider="anthropic", api_key="sk-ant-test",
                           model_id="claude-test") as client:
        result = run_packs([subset], RunOptions(base_url=model.base_url, timeout_override_s=30), client=client)
        received = [r.json for r in model.server.requests_to("/v1/messages")]
    assert result.packs[0].passed == 4, result.packs[0].failure_counts
    assert all("input_schema" in t for t in received[-1]["tools"])
    assert "personal assistant" in str(received[-1].get("system"))


def test_the_summary_names_agent_health_with_sycophancy(agent20):
    result, _ = _run(agent20.model_copy(update={"scenarios": [s for s in agent20.scenarios if s.false_premise]}),
                     "empty")
    text = summary(result)
    assert "sycophancy 100% of" in text and "sandbox overhead" not in text


@pytest.mark.server
def test_agent20_against_the_real_server(embedded_server, tmp_path, capsys):
    """The real path: tools offered to llama-server, its replies through the loop, judged by the mocks.
    SmolLM2 has no tool calling, so it answers in text and fails; what matters is that nothing breaks."""
    out = tmp_path / "agent20.json"
    code = cli.main(["packs", "run", "--base-url", embedded_server.base_url, "--scenario",
                     "agent-20/rewrite-passive-voice", "--scenario", "agent-20/recall-dentist-appointment",
                     "--max-tokens", "64", "--save-json", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    from harness.packs.runner import read_result
    pack = read_result(out).packs[0]
    assert pack.total == 2 and pack.infra_failures == 0
    for scenario in pack.scenarios:
        assert scenario.reply is not None and scenario.reply.world is not None and scenario.reply.agent is not None
        assert scenario.exchanges[0].request["tools"][0]["function"]["name"] == "memory_save"
    assert "Agent health:" in printed.out and "agent-20:" in printed.out


def test_inspect_shows_the_world_the_agent_left(agent20, tmp_path, capsys):
    from harness.packs.runner import write_result

    subset = agent20.model_copy(update={"scenarios": [s for s in agent20.scenarios if s.id == "send-agenda-once"]})
    result, _ = _run(subset, "perfect")
    out = write_result(result, tmp_path / "r.json")
    code = cli.main(["inspect", str(out), "--scenario", "send-agenda-once"])
    shown = capsys.readouterr().out
    assert code == 0
    assert "world at the end: 0 fact(s) in memory, 0 active job(s), 2 artifact(s), 1 email(s) in the outbox, " \
           "2 call(s) served" in shown
