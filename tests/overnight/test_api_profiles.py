"""Overnight runs of API profiles (scripted OpenAI- and Anthropic-format endpoints): env/up/down
are skipped, the rest runs, the report says what was measured over the network, and the spend
guard stops a profile cleanly and lets a higher limit resume it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.overnight.manifest import Manifest
from tests.conftest import REPO_ROOT
from tests.doubles.model_server import Reply, ScriptedModelServer
from tests.doubles.scripted_server import ScriptedModel

PACK_SCENARIOS = "instructfollow-15/words-exact-12,toolcall-15/chain-refund"
CODE = "```python\ndef has_close_elements(numbers, threshold):\n    return any(abs(a - b) < threshold " \
       "for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```"


def _harness(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL, env=env)


def _scenarios():
    from harness.packs import loader

    packs = loader.discover_packs(REPO_ROOT / "packs")
    return [s for ref in PACK_SCENARIOS.split(",") for s in packs[ref.split("/")[0]].scenarios
            if s.id == ref.split("/")[1]]


def _manifest(results: Path, run_id: str) -> Manifest:
    return Manifest.model_validate_json((results / run_id / "manifest.json").read_text())


def test_an_openai_compatible_api_profile_runs_without_compose_and_the_spend_guard_stops_and_resumes(
        write_conf, tmp_path):
    results = tmp_path / "results"
    with ScriptedModel(_scenarios(), api_key="sk-or-test", slots=None,
                       model_ids=("router/other", "router/model-x")) as model:
        def conf(limit: int) -> Path:
            return write_conf(f"[bench-api]\nNAME=Router model\nPROVIDER=openai-compatible\n"
                              f"BASE_URL={model.base_url}/v1\nMODEL_ID=router/model-x\nAPI_KEY_ENV=BW_ROUTER_KEY\n"
                              f"PARALLEL=2\nMAX_TOTAL_TOKENS={limit}\n")

        env = {**os.environ, "BW_ROUTER_KEY": "sk-or-test"}
        argv = ["run-bench", "bench-api", "--results-dir", str(results), "--run-id", "api", "--packs",
                PACK_SCENARIOS, "--datasets", "", "--throughput-runs", "1", "--layers", "none"]
        stopped = _harness(*argv, "--config", str(conf(60)), env=env)
        first = _manifest(results, "api")
        first_report = (results / "REPORT.md").read_text()
        resumed = _harness(*argv, "--config", str(conf(1_000_000)), env=env)
        paths = {r.path for r in model.server.requests}
    assert stopped.returncode == 1, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    record = first.profiles[0]
    assert record.status == "failed" and "stopped by spend guard" in record.reason, record.reason
    steps = {s.name: s for s in record.steps}
    assert all(steps[n].status.value == "skipped" and "API profile" in steps[n].detail for n in ("env", "up", "down"))
    assert (results / "api" / "bench-api" / "spend.jsonl").is_file()
    assert "stopped by spend guard" in first_report

    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    final = _manifest(results, "api").profiles[0]
    assert final.status == "completed", final.reason
    assert {s.name: s.status.value for s in final.steps}["packs"] == "done"
    assert "/v1/chat/completions" in paths
    report = (results / "REPORT.md").read_text()
    assert "measured over the network" in report
    assert "sk-or-test" not in "".join(p.read_text(errors="replace") for p in results.rglob("*") if p.is_file())
    packs = json.loads((results / "api" / "bench-api" / "packs.json").read_text())
    assert packs["model"] == "router/model-x" and packs["packs"]


@pytest.mark.docker
def test_an_anthropic_profile_benchmarks_end_to_end_with_sandboxed_evaluation(write_conf, tmp_path):
    from harness.serving import images  # noqa: F401 - the sandbox image is built by run-bench itself

    def answer(request):
        text = json.dumps(request.json)
        if "has_close_elements" in text:
            return Reply(content=CODE)
        return Reply(content="Paris is the capital of France.", usage={"prompt_tokens": 12, "completion_tokens": 40})

    results = tmp_path / "results"
    with ScriptedModelServer(answer, api_key="sk-ant-test", slots=None) as server:
        conf = write_conf(f"[bench-claude]\nNAME=Claude (scripted)\nPROVIDER=anthropic\nBASE_URL={server.base_url}\n"
                          "MODEL_ID=claude-test\nAPI_KEY_ENV=BW_ANTHROPIC_TEST_KEY\n")
        done = _harness("run-bench", "bench-claude", "--config", str(conf), "--results-dir", str(results),
                        "--run-id", "claude", "--packs", "instructfollow-15/words-exact-12", "--datasets",
                        "humaneval", "--evalplus-limit", "1", "--throughput-runs", "1", "--layers", "none",
                        env={**os.environ, "BW_ANTHROPIC_TEST_KEY": "sk-ant-test"})
        wires = {r.wire for r in server.requests if r.wire}
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert wires == {"anthropic"}
    record = _manifest(results, "claude").profiles[0]
    assert record.status == "completed"
    result = json.loads((results / "claude" / "bench-claude" / "evalplus" / "humaneval" /
                         "humaneval.result.json").read_text())
    assert result["tasks"][0]["base_pass"] is True  # the scripted answer is right, and was run in the sandbox


def test_local_and_api_profiles_compare_on_the_same_agent_pack_in_one_report_table(write_conf, tmp_path):
    """The same agent pack against an OpenAI-compatible endpoint and a priced Anthropic one: one
    all-bench, one table with quality, time per turn, TTFT, tokens and (only where priced) cost."""
    from harness.packs import loader

    agent20 = loader.discover_packs(REPO_ROOT / "packs")["agent-20"]
    results = tmp_path / "results"
    with ScriptedModel(agent20.scenarios, api_key="sk-ant-test", slots=None) as model:
        conf = write_conf(f"[bench-local]\nNAME=Local (scripted)\nPROVIDER=openai-compatible\n"
                          f"BASE_URL={model.base_url}/v1\nMODEL_ID=scripted-model\nAPI_KEY_ENV=BW_LOCAL_KEY\n\n"
                          f"[bench-claude]\nNAME=Claude (scripted)\nPROVIDER=anthropic\nBASE_URL={model.base_url}\n"
                          "MODEL_ID=claude-test\nAPI_KEY_ENV=BW_ANTHROPIC_TEST_KEY\nPRICE_IN_PER_MTOK=3\n"
                          "PRICE_OUT_PER_MTOK=15\n")
        done = _harness("all-bench", "--config", str(conf), "--results-dir", str(results), "--run-id", "cmp",
                        "--packs", "agent-20", "--datasets", "", "--throughput-runs", "1", "--layers", "none",
                        env={**os.environ, "BW_LOCAL_KEY": "sk-ant-test", "BW_ANTHROPIC_TEST_KEY": "sk-ant-test"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (results / "REPORT.md").read_text().partition("### Agent packs across profiles")[2].partition("\n## ")[0]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| bench-")}
    assert set(rows) == {"bench-local", "bench-claude"}
    for cells in rows.values():
        assert cells[0] == "api" and cells[1] == "agent-20" and cells[2] == "20/20"
        assert cells[5] != "n/a" and cells[7] != "n/a"
    packs = json.loads((results / "cmp" / "bench-claude" / "packs.json").read_text())["packs"][0]["scenarios"]
    prompt, completion = (sum(s[k] for s in packs) for k in ("prompt_tokens", "completion_tokens"))
    assert rows["bench-claude"][8] == f"${(prompt * 3 + completion * 15) / 1_000_000:.4f}"
    assert rows["bench-local"][8] == "n/a"
