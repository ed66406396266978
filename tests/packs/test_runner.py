"""The packs runner end to end against the scripted model server (a real HTTP server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.errors import EndpointError, PackError
from harness.packs import loader
from harness.packs.rescore import rescore
from harness.packs.runner import RunOptions, read_result, run_packs, write_result
from harness.packs.schema import FAILURE_MODES
from tests.conftest import free_port
from tests.doubles.scripted_server import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parents[2]
# The agent packs are run in tests/packs/test_sandboxed_packs.py, test_world_runs.py and test_repo_chores.py.
PACKS = {k: p for k, p in loader.discover_packs(REPO_ROOT / "packs").items()
         if p.meta.sandbox is None and p.meta.world is None and "reasoning" not in p.meta.modes}
SAMPLE = REPO_ROOT / "tests" / "data" / "benchlocal_sample.jsonl"


def _all_scenarios(packs):
    return [s for p in packs for s in p.scenarios]


def _run(packs, model: ScriptedModel, **overrides):
    options = RunOptions(base_url=model.base_url, **{"timeout_override_s": 10, "retry_backoff_s": 0.05, **overrides})
    return run_packs(packs, options)


def _scores(result):
    return {p.pack_id: (p.passed, p.total, p.mean_score) for p in result.packs}


def test_perfect_replies_score_100_on_every_pack():
    packs = list(PACKS.values())
    assert len(packs) == 5 and all(len(p.scenarios) == 15 for p in packs)
    with ScriptedModel(_all_scenarios(packs)) as model:
        result = _run(packs, model)
    assert _scores(result) == {p.meta.id: (15, 15, 100.0) for p in packs}
    assert result.complete and result.sampling.canonical and result.concurrency == 2
    tool_result = next(p for p in result.packs if p.pack_id == "toolcall-15")
    chain = next(s for s in tool_result.scenarios if s.scenario_id == "chain-refund")
    assert [c.name for c in chain.reply.tool_calls] == ["lookup_customer", "get_order", "refund_order"]
    assert len(chain.exchanges) == 4
    # the mock result of turn 1 was sent back to the model as a tool message in turn 2
    second = chain.exchanges[1].full_request(chain.scenario)["messages"]
    assert second[-1]["role"] == "tool" and "A-7731" in second[-1]["content"]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "lookup_customer"


def test_negative_control_every_reply_empty_scores_zero():
    packs = list(PACKS.values())
    with ScriptedModel(_all_scenarios(packs), mode="empty") as model:
        result = _run(packs, model)
    for pack in result.packs:
        assert (pack.passed, pack.mean_score) == (0, 0.0)
        assert pack.failure_counts == {"no_answer_found": 15}


def test_reasoning_only_and_think_blocks_are_scored_from_the_answer():
    pack = PACKS["reasonmath-15"]
    with ScriptedModel(pack.scenarios, mode="reasoning_only") as model:
        result = _run([pack], model)
    assert result.packs[0].passed == 15
    assert {s.reply.content_source for s in result.packs[0].scenarios} == {"reasoning"}
    with ScriptedModel(pack.scenarios, mode="think") as model:
        result = _run([pack], model)
    assert result.packs[0].passed == 15
    assert "<think>" in result.packs[0].scenarios[0].reply.raw_content


def test_truncated_replies_are_token_limit():
    pack = PACKS["structoutput-15"]
    with ScriptedModel(pack.scenarios, mode="length") as model:
        result = _run([pack], model)
    failed = [s for s in result.packs[0].scenarios if s.status != "pass"]
    assert len(failed) == 15 and {s.failure_mode for s in failed} == {"token_limit"}


def test_slow_reply_times_out_and_others_still_finish():
    pack = PACKS["instructfollow-15"].model_copy(update={"scenarios": PACKS["instructfollow-15"].scenarios[:3]})
    slow = pack.scenarios[0].id
    with ScriptedModel(pack.scenarios, modes={slow: "slow"}, delay_s=3) as model:
        result = _run([pack], model, timeout_override_s=0.5)
    by_id = {s.scenario_id: s for s in result.packs[0].scenarios}
    assert by_id[slow].failure_mode == "timeout" and by_id[slow].latency_ms < 2500
    assert [by_id[s.id].failure_mode for s in pack.scenarios[1:]] == ["passed", "passed"]
    assert result.packs[0].infra_failures == 1


def test_server_errors_are_retried_then_recorded():
    pack = PACKS["reasonmath-15"].model_copy(update={"scenarios": PACKS["reasonmath-15"].scenarios[:2]})
    first, second = (s.id for s in pack.scenarios)
    with ScriptedModel(pack.scenarios, modes={first: "error500", second: "error500"}, fail_first=1) as model:
        recovered = _run([pack], model, retries=2)
    assert [(s.failure_mode, s.retries) for s in recovered.packs[0].scenarios] == [("passed", 1), ("passed", 1)]
    recorded = recovered.packs[0].scenarios[0].exchanges[0].retries  # every retry is on the record, with why
    assert len(recorded) == 1 and "HTTP 500" in recorded[0]["reason"] and recorded[0]["attempt"] == 1
    with ScriptedModel(pack.scenarios, modes={first: "error500"}, fail_first=99) as model:
        failed = _run([pack], model, retries=2)
        sent = sum(1 for r in model.requests if r["messages"][:2] == pack.scenarios[0].messages[:2])
    result = failed.packs[0].scenarios[0]
    assert (result.failure_mode, result.retries, sent) == ("server_error", 2, 3)
    assert failed.packs[0].scenarios[1].failure_mode == "passed"


def test_unreachable_endpoint_fails_fast():
    with pytest.raises(EndpointError, match=r"127\.0\.0\.1:\d+/v1/models: unreachable"):
        run_packs([PACKS["reasonmath-15"]], RunOptions(base_url=f"http://127.0.0.1:{free_port()}"))


def test_thinking_control_follows_the_chat_template():
    pack = PACKS["reasonmath-15"].model_copy(update={"scenarios": PACKS["reasonmath-15"].scenarios[:1]})
    with ScriptedModel(pack.scenarios, chat_template="{% if enable_thinking %}<think>{% endif %}") as model:
        result = _run([pack], model, thinking=True, thinking_budget_tokens=100)
        request = model.requests[-1]
    assert request["chat_template_kwargs"] == {"enable_thinking": True}
    assert request["max_tokens"] == 512 + 100 and request["temperature"] == 0
    assert result.thinking.control == "chat_template_kwargs" and result.thinking.requested is True
    with ScriptedModel(pack.scenarios, chat_template="{{ reasoning_effort }}") as model:
        _run([pack], model, thinking=False, sampling_source="server")
        request = model.requests[-1]
    assert request["reasoning_effort"] == "low" and "temperature" not in request


def test_journal_resume_redoes_only_unfinished_work(tmp_path):
    pack = PACKS["instructfollow-15"].model_copy(update={"scenarios": PACKS["instructfollow-15"].scenarios[:4]})
    journal = tmp_path / "run.json.journal.jsonl"
    with ScriptedModel(pack.scenarios, modes={pack.scenarios[3].id: "error500"}, fail_first=99) as model:
        options = RunOptions(base_url=model.base_url, timeout_override_s=10, retries=0)
        first = run_packs([pack], options, journal_path=journal)
    assert first.packs[0].failure_counts == {"passed": 3, "server_error": 1}
    with journal.open("a") as handle:
        handle.write('{"torn": ')  # a crash mid-line
    with ScriptedModel(pack.scenarios) as model:
        options = RunOptions(base_url=model.base_url, timeout_override_s=10, retries=0)
        second = run_packs([pack], options, journal_path=journal, resume=True)
        chat_requests = [r for r in model.requests
                         if r["messages"][0]["content"] != "Count from one to twenty in words, separated by spaces."]
    assert second.packs[0].passed == 4 and len(chat_requests) == 1
    with ScriptedModel(pack.scenarios) as model:
        with pytest.raises(PackError, match="different run"):
            run_packs([pack], RunOptions(base_url=model.base_url, mode="quick"), journal_path=journal, resume=True)


def test_benchlocal_jsonl_runs_through_the_same_runner():
    pack = loader.load_pack(SAMPLE)
    with ScriptedModel(pack.scenarios) as model:
        result = _run([pack], model)
    assert result.packs[0].format == "benchlocal" and result.packs[0].passed == 5
    with ScriptedModel(pack.scenarios, mode="empty") as model:
        assert _run([pack], model).packs[0].mean_score == 0


def test_cli_run_writes_json_prints_table_and_exits_zero(tmp_path, capsys):
    pack = PACKS["toolcall-15"]
    out = tmp_path / "r.json"
    with ScriptedModel(pack.scenarios, modes={"select-stock": "empty", "chain-refund": "empty"}) as model:
        code = cli.main(["packs", "run", "--base-url", model.base_url, "--pack", "toolcall-15", "--save-json", str(out),
                         "--timeout-per-case", "10", "--temperature", "0.3"])
    printed = capsys.readouterr()
    assert code == 0
    assert "| Pack" in printed.out and "| toolcall-15 | 13/15" in printed.out and "NON-CANONICAL" in printed.out
    assert "no_answer_found" in printed.out and "Quality: toolcall-15 13/15 (87%)" in printed.out
    assert "[15/15] toolcall-15" in printed.err and "✗ no_answer_found" in printed.err
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1 and data["sampling"]["source"] == "explicit"
    for scenario in data["packs"][0]["scenarios"]:
        assert scenario["failure_mode"] in FAILURE_MODES and scenario["exchanges"][0]["scenario_messages"] >= 1
    assert not list(tmp_path.glob("*.partial"))


def test_inspect_and_rescore(tmp_path, capsys):
    pack = PACKS["reasonmath-15"]
    with ScriptedModel(pack.scenarios) as model:
        result = _run([pack], model)
    path = write_result(result, tmp_path / "r.json")
    # simulate a verifier/expectation change: the saved definition now expects another answer
    data = json.loads(path.read_text())
    data["packs"][0]["scenarios"][0]["scenario"]["verifier"]["answer"] = "11.95"
    data["packs"][0]["scenarios"][0]["scenario"]["verifier"]["accept"] = []
    path.write_text(json.dumps(data))
    assert cli.main(["rescore", str(path)]) == cli.EXIT_ERROR  # refuses to leave stale numbers silently
    assert "pass --in-place" in capsys.readouterr().err
    assert cli.main(["rescore", str(path), "--in-place"]) == 0
    rescored = read_result(path)
    assert rescored.packs[0].passed == 14 and rescored.packs[0].failure_counts["wrong_answer"] == 1
    assert rescored.rescored[-1]["changed"] == 1
    capsys.readouterr()
    assert cli.main(["inspect", str(path), "--failed"]) == 0
    shown = capsys.readouterr().out
    assert "reasonmath-15/shop-change" in shown and "expected '11.95'" in shown
    assert cli.main(["inspect", str(path), "--scenario", "reasonmath-15/train-meet", "--full"]) == 0
    assert '"max_tokens": 512' in capsys.readouterr().out
    again, changed = rescore(rescored)
    assert changed == [] and again.packs[0].passed == 14


@pytest.mark.parametrize("bench_parallel, expected", [("", 2), ("BENCH_PARALLEL=1\n", 1)])
def test_a_profiles_bench_parallel_sets_the_packs_concurrency(write_conf, tmp_path, bench_parallel, expected):
    pack = PACKS["reasonmath-15"]
    out = tmp_path / "r.json"
    with ScriptedModel(pack.scenarios, slots=2) as model:
        port = model.base_url.rsplit(":", 1)[1]
        conf = write_conf(f"[bench-x]\nNAME=x\nMODEL=tiny.gguf\nIMAGE=img:1\nCTX_SIZE=1024\nPORT={port}\n"
                          f"PARALLEL=2\n{bench_parallel}")
        code = cli.main(["packs", "run", "--profile", "bench-x", "--config", str(conf), "--pack", "reasonmath-15",
                         "--save-json", str(out), "--timeout-per-case", "10", "--no-progress"])
    assert code == 0
    assert json.loads(out.read_text())["concurrency"] == expected
