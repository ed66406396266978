"""The packs journal keeps finished work safe: torn lines, mixed selections, silent truncation,
two writers, and an endpoint that dies mid-run."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from harness.errors import PackError
from harness.packs import loader
from harness.packs.runner import RunOptions, run_packs
from harness.packs.summary import quality_line
from tests.doubles.model_server import json_raw
from tests.doubles.scripted_server import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKS = loader.discover_packs(REPO_ROOT / "packs")
PACK = PACKS["instructfollow-15"]


def _options(model: ScriptedModel, **overrides) -> RunOptions:
    return RunOptions(base_url=model.base_url, **{"timeout_override_s": 10, "retries": 0, **overrides})


def _lines(journal: Path) -> list[str]:
    return journal.read_text(encoding="utf-8").splitlines()


def test_a_torn_last_line_is_cut_off_and_its_scenario_run_again(tmp_path):
    journal = tmp_path / "r.json.journal.jsonl"
    with ScriptedModel(PACK.scenarios) as model:
        run_packs([PACK], _options(model), journal_path=journal)
        whole = _lines(journal)
        journal.write_text("\n".join(whole[:-1]) + "\n" + whole[-1][: len(whole[-1]) // 2], encoding="utf-8")
        before = len(model.requests)
        result = run_packs([PACK], _options(model), journal_path=journal, resume=True)
        asked = len(model.requests) - before
    assert result.packs[0].total == 15 and result.packs[0].passed == 15
    assert asked == 1  # only the scenario whose line was torn (a fixed timeout needs no speed probe)
    assert all(json.loads(line) for line in _lines(journal))  # no torn line left behind
    assert len(_lines(journal)) == 16


def test_resuming_with_another_selection_is_refused(tmp_path):
    journal = tmp_path / "j.jsonl"
    with ScriptedModel(PACK.scenarios) as model:
        run_packs([PACK], _options(model), journal_path=journal)
        fewer = PACK.model_copy(update={"scenarios": PACK.scenarios[:3]})
        with pytest.raises(PackError, match="different run \\(selection differ"):
            run_packs([fewer], _options(model), journal_path=journal, resume=True)


def test_an_existing_journal_is_not_truncated_without_resume(tmp_path):
    journal = tmp_path / "j.jsonl"
    with ScriptedModel(PACK.scenarios) as model:
        run_packs([PACK], _options(model), journal_path=journal)
        kept = journal.read_bytes()
        with pytest.raises(PackError, match="holds 15 finished scenario\\(s\\) of an earlier run; pass --resume"):
            run_packs([PACK], _options(model), journal_path=journal)
    assert journal.read_bytes() == kept


def test_a_second_writer_is_refused_while_the_first_holds_the_journal(tmp_path):
    journal = tmp_path / "j.jsonl"
    with journal.open("a") as first:
        fcntl.flock(first.fileno(), fcntl.LOCK_EX)
        with ScriptedModel(PACK.scenarios) as model, \
                pytest.raises(PackError, match="another packs run is writing this journal"):
            run_packs([PACK], _options(model), journal_path=journal)


def test_an_endpoint_that_dies_mid_run_stops_the_run_and_keeps_the_finished_work(tmp_path):
    journal = tmp_path / "j.jsonl"
    answered = {"n": 0}
    with ScriptedModel(PACK.scenarios, slots=1) as model:
        scripted = model.server.respond

        def dies_after_five(request):
            answered["n"] += 1
            return scripted(request) if answered["n"] <= 5 else json_raw(503, {"error": "gone"})

        model.server.respond = dies_after_five
        with pytest.raises(PackError, match=r"stopped after 5 infrastructure failures in a row .* 5 finished "
                                            r"scenario\(s\) are kept .* --resume"):
            run_packs([PACK], _options(model, concurrency=1), journal_path=journal)
        sent = len(model.requests)
    assert sent <= 5 + 5 + 1  # five answers, five failures, at most the one in flight when it stopped
    kept = [json.loads(line) for line in _lines(journal)[1:]]
    assert sum(1 for r in kept if r["failure_mode"] != "server_error") == 5


def test_no_quality_line_for_a_run_with_infrastructure_failures():
    with ScriptedModel(PACK.scenarios, modes={PACK.scenarios[0].id: "error500"}, fail_first=99) as model:
        result = run_packs([PACK], _options(model))
    assert result.packs[0].infra_failures == 1
    assert quality_line(result).startswith("Quality: not reported: 1 scenario(s) failed on the endpoint")


def test_a_long_prompt_is_stored_once_per_file(tmp_path):
    """The scenario's messages live in the result once, not again in every request of every turn."""
    prompt = "word " * 400_000  # 2 MB
    scenario = PACK.scenarios[0].model_copy(update={"messages": [{"role": "user", "content": prompt}]})
    pack = PACK.model_copy(update={"scenarios": [scenario]})
    journal = tmp_path / "r.json.journal.jsonl"
    with ScriptedModel(pack.scenarios) as model:
        result = run_packs([pack], _options(model), journal_path=journal)
        sent = model.requests[-1]["messages"][0]["content"]
    from harness.packs.runner import write_result

    saved = write_result(result, tmp_path / "r.json")
    assert sent == prompt  # the endpoint got all of it
    assert saved.stat().st_size < 1.2 * len(prompt) and journal.stat().st_size < 1.2 * len(prompt)
    exchange = result.packs[0].scenarios[0].exchanges[0]
    assert exchange.full_request(result.packs[0].scenarios[0].scenario)["messages"][0]["content"] == prompt
