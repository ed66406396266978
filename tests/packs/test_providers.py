"""Packs against API providers: the Anthropic wire format with tool calls, keys from the
environment, and the spend guard stopping a run cleanly and resuming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.endpoint.client import EndpointClient
from harness.packs import loader
from harness.packs.runner import RunOptions, read_result, run_packs
from tests.doubles.scripted_server import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKS = loader.discover_packs(REPO_ROOT / "packs")
QUICK = loader.select(PACKS, mode="quick")


def _harness(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_an_anthropic_endpoint_runs_the_quick_packs_with_tool_calls():
    scenarios = [s for p in QUICK for s in p.scenarios]
    with ScriptedModel(scenarios, api_key="sk-ant-test", slots=None) as model, \
            EndpointClient(model.base_url + "/v1", provider="anthropic", api_key="sk-ant-test",
                           model_id="claude-test") as client:
        result = run_packs(QUICK, RunOptions(base_url=model.base_url, timeout_override_s=10, concurrency=2),
                           client=client)
        received = model.server.requests_to("/v1/messages")
    assert {p.pack_id for p in result.packs} == {"toolcall-15", "instructfollow-15"}
    assert all(p.passed == p.total == 15 for p in result.packs), [(p.pack_id, p.failure_counts) for p in result.packs]
    assert result.thinking.control == "anthropic" and result.model == "claude-test"
    # What went over the wire was the Messages API: tools with input_schema, tool_use answered by tool_result.
    assert all(r.headers.get("x-api-key") == "sk-ant-test" for r in received)
    with_tools = [r.json for r in received if r.json.get("tools")]
    assert with_tools and all("input_schema" in tool for body in with_tools for tool in body["tools"])
    results = [block for r in received for m in r.json["messages"] if isinstance(m["content"], list)
               for block in m["content"] if block.get("type") == "tool_result"]
    assert results, "no tool_result block was sent back"
    chain = next(s for p in result.packs for s in p.scenarios if s.scenario_id == "chain-refund")
    assert [c.name for c in chain.reply.tool_calls] == ["lookup_customer", "get_order", "refund_order"]


def test_the_cli_reads_the_key_from_the_named_variable_and_never_writes_it(tmp_path):
    scenarios = [s for p in QUICK for s in p.scenarios]
    key = "sk-ant-never-written-0123456789"
    save = tmp_path / "r.json"
    with ScriptedModel(scenarios, api_key=key, slots=None) as model:
        base = ["packs", "run", "--base-url", model.base_url, "--provider", "anthropic", "--model", "claude-test",
                "--quick", "--api-key-env", "BW_TEST_ANTHROPIC_KEY", "--timeout-s", "10", "--no-progress"]
        missing = _harness(*base, "--save-json", str(save), env={k: v for k, v in os.environ.items()
                                                                  if k != "BW_TEST_ANTHROPIC_KEY"})
        nothing_written = not save.exists() and not list(tmp_path.iterdir())
        done = _harness(*base, "--save-json", str(save), env={**os.environ, "BW_TEST_ANTHROPIC_KEY": key})
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "BW_TEST_ANTHROPIC_KEY" in missing.stderr and nothing_written
    assert done.returncode == 0, done.stderr
    assert "Quality:" in done.stdout
    assert read_result(save).packs[0].passed == 15
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or key.encode() not in path.read_bytes(), path
    assert key not in done.stdout + done.stderr


def test_the_spend_guard_stops_a_run_cleanly_and_a_higher_limit_resumes_it(write_conf, tmp_path):
    pack = PACKS["instructfollow-15"]
    with ScriptedModel(pack.scenarios, slots=None) as model:
        def conf(limit: int) -> Path:
            return write_conf(f"[bench-api]\nNAME=API\nPROVIDER=openai-compatible\nBASE_URL={model.base_url}/v1\n"
                              f"MODEL_ID=scripted-model\nMAX_TOTAL_TOKENS={limit}\n")

        save = tmp_path / "r.json"
        argv = ["packs", "run", "--profile", "bench-api", "--pack", "instructfollow-15", "--timeout-s", "10",
                "--save-json", str(save), "--resume", "--no-progress"]
        stopped = _harness(*argv, "--config", str(conf(150)), env=dict(os.environ))
        journal = save.with_name(save.name + ".journal.jsonl")
        kept = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
        no_result = not save.exists()
        sent_before = len(model.requests)
        resumed = _harness(*argv, "--config", str(conf(100_000)), env=dict(os.environ))
        sent_after = len(model.requests) - sent_before
    assert stopped.returncode == 2 and "stopped by spend guard" in stopped.stderr, stopped.stderr
    assert "MAX_TOTAL_TOKENS is 150" in stopped.stderr and "Quality:" not in stopped.stdout
    assert no_result
    assert 0 < len(kept) < 15
    assert resumed.returncode == 0, resumed.stderr
    assert read_result(save).packs[0].total == 15
    # only the unfinished scenarios were asked again (plus the speed probe)
    assert sent_after <= 15 - len(kept) + 1
