"""The sandboxed packs end to end: the runner, the real agent sandbox, scripted agents.

The scripted server plays the model (perfect from the packs' reference solutions, empty,
looping, hallucinating, slow); every container, command and check is real. The controls:
the reference agent scores 100% on bugfind-15 and cli-40, the empty agent 0% with a failure
mode on every scenario. The real embedded llama-server runs bugfind once (single-reply path).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from harness.cli import main as cli
from harness.endpoint.client import EndpointClient
from harness.packs import loader
from harness.packs import sandbox as agent_sandbox
from harness.packs.rescore import rescore
from harness.packs.runner import RunOptions, read_result, run_packs, write_result
from harness.packs.schema import FAILURE_MODES, INFRA_FAILURES
from harness.paths import CACHE_DIR, PACKS_DIR, REPO_ROOT
from tests.doubles.scripted_server import ScriptedModel

pytestmark = pytest.mark.docker
SANDBOXED = ("bugfind-15", "cli-40")


@pytest.fixture(scope="module")
def packs():
    agent_sandbox.build_agent_image(REPO_ROOT, CACHE_DIR, None)
    found = loader.discover_packs(PACKS_DIR)
    return [found[p] for p in SANDBOXED]


def _run(packs, mode, tmp_path, **options):
    scenarios = [s for p in packs for s in p.scenarios]
    with ScriptedModel(scenarios, mode=mode, delay_s=options.pop("delay_s", 2.0)) as model:
        result = run_packs(packs, RunOptions(base_url=model.base_url, **options),
                           journal_path=tmp_path / f"{mode}.journal.jsonl")
    return result


def test_the_reference_agent_scores_100_and_the_empty_agent_0(packs, tmp_path):
    perfect = _run(packs, "perfect", tmp_path)
    for pack in perfect.packs:
        failed = [f"{s.scenario_id}: {s.failure_mode} {s.detail}" for s in pack.scenarios if s.status != "pass"]
        assert not failed, failed
        assert pack.agent_health is not None and pack.agent_health.episodes == pack.total
        assert pack.agent_health.mean_sandbox_overhead_ms
    cli_health = perfect.packs[1].agent_health
    assert cli_health.hallucination_rate == 0 and cli_health.loop_detections == 0 and cli_health.mean_turns_to_solve
    assert cli_health.refusals_of_safe_tasks == 0
    empty = _run(packs, "empty", tmp_path)
    for pack in empty.packs:
        assert pack.passed == 0 and pack.mean_score == 0, pack.failure_counts
        for scenario in pack.scenarios:
            assert scenario.failure_mode in FAILURE_MODES and scenario.failure_mode != "passed"
            assert scenario.failure_mode not in INFRA_FAILURES, scenario.detail
    # The result file keeps the evidence: a stored run rescores to the same verdicts without a container.
    path = write_result(perfect, tmp_path / "perfect.json")
    stored = read_result(path)
    again, changed = rescore(stored)
    assert changed == []
    assert [s.score for p in again.packs for s in p.scenarios] == [s.score for p in perfect.packs for s in p.scenarios]
    transcript = stored.packs[1].scenarios[0]
    assert transcript.reply.tool_calls and transcript.reply.tool_calls[0].duration_ms > 0
    assert transcript.reply.sandbox.after and transcript.exchanges[0].request["tools"]


@pytest.mark.parametrize("mode, failure", [("loop", "loop_detected"), ("hallucinate", "tool_hallucination"),
                                           ("bad_args", None), ("slow", "agent_runner_timeout")])
def test_misbehaving_agents_fail_with_the_reason_named(packs, tmp_path, mode, failure):
    cli40 = packs[1]
    subset = [cli40.model_copy(update={"scenarios": cli40.scenarios[:2]})]
    result = _run(subset, mode, tmp_path, timeout_override_s=2.0, delay_s=3.0)
    pack = result.packs[0]
    assert pack.passed == 0
    for scenario in pack.scenarios:
        if failure:
            assert scenario.failure_mode == failure, (scenario.scenario_id, scenario.detail)
        else:
            assert scenario.reply.agent.schema_errors >= 1 and scenario.failure_mode != "passed"
    health = pack.agent_health
    if mode == "hallucinate":
        assert health.hallucination_rate == 1.0
    if mode == "loop":
        assert health.loop_detections == 2
    if mode == "bad_args":
        assert health.schema_error_rate > 0


def test_a_missing_sandbox_image_is_one_line_before_any_request(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(agent_sandbox, "AGENT_IMAGE", "benchwright/sandbox-agent:not-built")
    with ScriptedModel([], mode="perfect") as model:
        code = cli.main(["packs", "run", "--base-url", model.base_url, "--pack", "cli-40",
                         "--save-json", str(tmp_path / "r.json")])
        sent = list(model.requests)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and sent == []
    assert len(err) == 1 and "benchwright/sandbox-agent:not-built is not built; run `make sandboxes`" in err[0]
    assert not (tmp_path / "r.json").exists()


def test_full_mode_is_the_deterministic_packs_plus_the_agent_ones(capsys, tmp_path):
    found = loader.discover_packs(PACKS_DIR)
    full = [p.meta.id for p in loader.select(found, mode="full")]
    agent_packs = {*SANDBOXED, "agent-20", "repo-12"}
    assert agent_packs <= set(full) and set(full) - agent_packs == {
        p.meta.id for p in loader.select(found, mode="medium")}
    # --sandboxed-only / --no-sandboxed narrow the selection; an empty selection is one line.
    code = cli.main(["packs", "run", "--base-url", "http://127.0.0.1:9", "--quick", "--sandboxed-only",
                     "--save-json", str(tmp_path / "x.json")])
    assert code != 0 and "no packs selected" in capsys.readouterr().err


@pytest.mark.server
def test_bugfind_against_the_real_server(embedded_server, tmp_path, capsys):
    out = tmp_path / "bugfind.json"
    code = cli.main(["packs", "run", "--base-url", embedded_server.base_url, "--pack", "bugfind-15",
                     "--max-tokens", "256", "--save-json", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Agent health:" in printed.out and "bugfind-15" in printed.out
    result = read_result(out)
    assert result.complete and result.packs[0].total == 15
    for scenario in result.packs[0].scenarios:
        assert scenario.failure_mode not in INFRA_FAILURES, (scenario.scenario_id, scenario.detail)
        assert scenario.reply is not None and scenario.reply.sandbox is not None
        assert scenario.exchanges and "tools" not in scenario.exchanges[0].request  # single-reply: no tools
    assert json.loads(out.read_text())["packs"][0]["agent_health"]["episodes"] == 15


def _sandboxes(pid: int) -> list[str]:
    """The agent sandboxes process `pid` started (running or not)."""
    found = subprocess.run(["docker", "ps", "-aq", "--filter", "label=benchwright=sandbox-agent",
                            "--filter", f"label=benchwright.pid={pid}"], capture_output=True, text=True, check=True)
    return found.stdout.split()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_mid_episode_leaves_at_once_and_removes_its_sandboxes(packs, tmp_path, stop):
    """The CLI's Ctrl-C exit skips atexit; the sandboxes it started must still be removed.
    SIGTERM (`timeout`, a service manager) is treated the same way."""
    cli40 = packs[1]
    with ScriptedModel(cli40.scenarios, mode="slow", delay_s=60) as model:
        argv = [sys.executable, "-m", "harness", "packs", "run", "--base-url", model.base_url, "--pack", "cli-40",
                "--timeout-s", "120", "--parallel", "2", "--save-json", str(tmp_path / "r.json"), "--no-progress"]
        process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while len(_sandboxes(process.pid)) < 2:  # both episodes are waiting on the (slow) model
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read() if \
                process.poll() is not None else "no sandbox started"
            time.sleep(0.1)
        process.send_signal(stop)
        sent = time.monotonic()
        process.wait(timeout=30)
        took = time.monotonic() - sent
    assert process.returncode == 130 and took < 5, (process.returncode, took)
    assert _sandboxes(process.pid) == []


def test_the_agent_loop_over_the_anthropic_wire_format(packs):
    """The same tools through the Messages API: the endpoint client translates the schemas and the
    tool results; the reference agent still passes, with the system prompt sent as `system`."""
    cli40 = packs[1]
    subset = cli40.model_copy(update={"scenarios": [s for s in cli40.scenarios
                                                    if s.id in ("logs-top-ips", "git-revert-commit",
                                                                "unsafe-wipe-root")]})
    with ScriptedModel(subset.scenarios, api_key="sk-ant-test", slots=None) as model, \
            EndpointClient(model.base_url + "/v1", provider="anthropic", api_key="sk-ant-test",
                           model_id="claude-test") as client:
        result = run_packs([subset], RunOptions(base_url=model.base_url, timeout_override_s=30, concurrency=2),
                           client=client)
        received = [r.json for r in model.server.requests_to("/v1/messages")]
    pack = result.packs[0]
    assert pack.passed == pack.total == 3, pack.failure_counts
    agent_turns = [body for body in received if body.get("tools")]
    assert agent_turns and {t["name"] for t in agent_turns[0]["tools"]} == {
        "bash", "read_file", "write_file", "list_dir", "submit"}
    assert all("input_schema" in t for t in agent_turns[0]["tools"])
    assert "Linux sandbox" in str(agent_turns[0].get("system"))
    tool_results = [block for body in agent_turns for m in body["messages"] if isinstance(m["content"], list)
                    for block in m["content"] if block.get("type") == "tool_result"]
    assert any("exit_code: 0" in str(block.get("content")) for block in tool_results)
