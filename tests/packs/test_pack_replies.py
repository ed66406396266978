"""Every scenario of our deterministic packs against its own replies (packs/<id>/replies.jsonl):
a right answer (``good``), a near miss (``near``) and a right answer in an unusual form (``edge``).
A second set (tests/data/replies-blind/<id>.jsonl) was written by someone who saw only the prompts and
the mock tools' answers, never the verifiers.

The verifiers must pass good and edge replies and fail near misses. The counts are printed;
the goal is at most 2 of 75 near misses passing and at least 70 of 75 good and of 75 edge
replies passing. Recorded tool results must be what the scenario's mocks answer today.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.packs import loader
from harness.packs.runner import mock_result
from harness.packs.schema import Pack, Reply, ToolCallRecord
from harness.packs.verifiers import judge

PACKS_DIR = Path(__file__).resolve().parents[2] / "packs"
BLIND_DIR = Path(__file__).resolve().parents[1] / "data" / "replies-blind"
SETS = {"own": lambda pack_id: PACKS_DIR / pack_id / "replies.jsonl",
        "blind": lambda pack_id: BLIND_DIR / f"{pack_id}.jsonl"}
OUR_PACKS = ("toolcall-15", "instructfollow-15", "structoutput-15", "reasonmath-15", "dataextract-15")
KINDS = ("good", "near", "edge")


def _replies(pack_id: str, which: str = "own") -> list[dict]:
    path = SETS[which](pack_id)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _reply(recorded: dict) -> Reply:
    calls = [ToolCallRecord(turn=i, name=c["name"], arguments=c["arguments"], result=c.get("result"))
             for i, c in enumerate(recorded.get("tool_calls") or [], start=1)]
    return Reply(content=recorded["content"], raw_content=recorded["content"], content_source="content",
                 tool_calls=calls, finish_reason="stop", turns=len(calls) + 1)


@pytest.fixture(scope="module")
def packs() -> dict[str, Pack]:
    return {pack_id: loader.load_pack(PACKS_DIR / pack_id) for pack_id in OUR_PACKS}


@pytest.mark.parametrize("which", SETS)
@pytest.mark.parametrize("pack_id", OUR_PACKS)
def test_every_scenario_has_one_reply_of_each_kind(packs, pack_id, which):
    recorded = [(r["scenario"], r["kind"]) for r in _replies(pack_id, which)]
    wanted = [(s.id, kind) for s in packs[pack_id].scenarios for kind in KINDS]
    assert sorted(recorded) == sorted(wanted)


@pytest.mark.parametrize("which", SETS)
@pytest.mark.parametrize("pack_id", OUR_PACKS)
def test_recorded_tool_results_are_what_the_mocks_answer(packs, pack_id, which):
    scenarios = {s.id: s for s in packs[pack_id].scenarios}
    for r in _replies(pack_id, which):
        for call in r.get("tool_calls") or []:
            assert call["result"] == mock_result(scenarios[r["scenario"]], call["name"], call["arguments"]), \
                f"{pack_id}/{r['scenario']} {r['kind']}: {call['name']}"


@pytest.mark.parametrize("which", SETS)
def test_verifiers_pass_right_answers_and_fail_near_misses(packs, capsys, which):
    passed = {kind: 0 for kind in KINDS}
    total = {kind: 0 for kind in KINDS}
    misjudged = []
    for pack_id in OUR_PACKS:
        scenarios = {s.id: s for s in packs[pack_id].scenarios}
        for r in _replies(pack_id, which):
            verdict = judge(scenarios[r["scenario"]], _reply(r))
            ok = verdict.status == "pass"
            passed[r["kind"]] += ok
            total[r["kind"]] += 1
            if ok == (r["kind"] == "near"):
                misjudged.append(f"{pack_id}/{r['scenario']} {r['kind']}: {verdict.score} {verdict.detail[:160]}")
    with capsys.disabled():
        print(f"\n{which} replies: near misses passing: {passed['near']}/{total['near']}; right answers passing: "
              f"good {passed['good']}/{total['good']}, edge {passed['edge']}/{total['edge']}")
        for line in misjudged:
            print(f"  misjudged: {line}")
    assert total == {"good": 75, "near": 75, "edge": 75}
    assert passed["near"] <= 2, misjudged
    assert passed["good"] >= 70 and passed["edge"] >= 70, misjudged
