"""Rubric judges: parsing judge replies, the rubric verdict, runs with and without --judge, calibration.

The judge is a scripted double (``tests/doubles/scripted_judge.py``) over real HTTP; the model
being judged is the scripted pack model. The rubric scenarios here are single replies judged
on their answer; the sandboxed ones (repo-12) are in ``test_repo_chores.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import PackError
from harness.packs import rubric
from harness.packs.loader import load_pack_dir
from harness.packs.runner import RunOptions, run_packs
from harness.packs.schema import CalibrationItem, Judgement, Reply, Scenario
from harness.packs.verifiers import judge
from harness.stats import spearman
from tests.conftest import REPO_ROOT
from tests.doubles.scripted_judge import ScriptedJudge
from tests.doubles.scripted_server import ScriptedModel

CRITERIA = {"coverage": "Covers the risks", "actionable": "Steps someone can follow"}
STRONG = ("Rotate the keys first. " + "Store secrets in the vault, scope every token to one service, audit "
          "access weekly, and alert on unusual reads. " * 10).strip()
WEAK = "Use passwords."


def _criterion(cid: str, text: str) -> dict:
    return {"id": cid, "description": text, "anchors": {str(n): f"{text}: level {n}" for n in range(1, 6)}}


def _rubric_scenario(sid: str, answer: str) -> dict:
    return {"id": sid, "category": "plan", "messages": [{"role": "user", "content": f"Plan {sid}: how do we "
                                                                                    "protect our API keys?"}],
            "verifier": {"type": "rubric", "rubric": {
                "criteria": [_criterion(cid, text) for cid, text in CRITERIA.items()], "evidence": ["answer"],
                "references": [{"grade": "strong", "answer": STRONG}, {"grade": "weak", "answer": WEAK}]}},
            "reference_turns": [{"content": answer}]}


@pytest.fixture
def plan_pack(tmp_path: Path) -> Path:
    """Two rubric scenarios (one answered thoroughly, one tersely) and one deterministic one."""
    folder = tmp_path / "plans-3"
    folder.mkdir()
    (folder / "pack.json").write_text(json.dumps({"id": "plans-3", "version": "1.0.0", "modes": ["full"]}))
    rows = [_rubric_scenario("keys-thorough", STRONG), _rubric_scenario("keys-terse", WEAK),
            {"id": "capital", "messages": [{"role": "user", "content": "Capital of France? Reply ANSWER: <city>"}],
             "verifier": {"type": "answer_match", "answers": ["Paris"]},
             "reference_turns": [{"content": "ANSWER: Paris"}]}]
    (folder / "scenarios.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def _scenario(plan_pack: Path, sid: str) -> Scenario:
    return next(s for s in load_pack_dir(plan_pack).scenarios if s.id == sid)


# ---- parsing a judge's reply ---------------------------------------------------------------

def test_scores_parse_from_plain_fenced_and_surrounded_json():
    ids = ["coverage", "actionable"]
    assert rubric.parse_scores('{"scores": {"coverage": 4, "actionable": 2}, "reason": "ok"}', ids) == (
        {"coverage": 4.0, "actionable": 2.0}, [], "ok")
    fenced = 'Grading:\n```json\n{"scores": {"coverage": 5, "actionable": "3"}}\n```\nDone.'
    assert rubric.parse_scores(fenced, ids)[0] == {"coverage": 5.0, "actionable": 3.0}
    prose = 'I would say {"scores": {"coverage": 1, "actionable": 1}} overall.'
    assert rubric.parse_scores(prose, ids)[0] == {"coverage": 1.0, "actionable": 1.0}


@pytest.mark.parametrize("text, why", [
    ("Looks good, 4/5", "no JSON object"),
    ('{"score": 4}', "no JSON object"),
    ('{"scores": {"coverage": 4}}', "'actionable'"),
    ('{"scores": {"coverage": 4, "actionable": "high"}}', "not a number"),
    ('{"scores": {"coverage": 4, "actionable": true}}', "not a number"),
    ('{"scores": {"coverage": 4, "actionable": NaN}}', "not a number"),
])
def test_unparseable_judge_replies_say_why(text, why):
    with pytest.raises(ValueError, match=why):
        rubric.parse_scores(text, ["coverage", "actionable"])


def test_out_of_range_scores_are_clamped_and_recorded():
    scores, clamped, _ = rubric.parse_scores('{"scores": {"coverage": 9, "actionable": -3}}',
                                             ["coverage", "actionable"])
    assert scores == {"coverage": 5.0, "actionable": 1.0} and clamped == ["coverage", "actionable"]


# ---- the verdict ------------------------------------------------------------------------------

def _judged(scores: dict[str, float] | None, error: str | None = None) -> Reply:
    return Reply(content="a plan", judgement=Judgement(judge_model="j", judge_endpoint="http://j", prompt=[],
                                                       scores=scores or {}, error=error))


def test_rubric_verdict_maps_the_mean_onto_0_to_100(plan_pack):
    scenario = _scenario(plan_pack, "keys-thorough")
    assert judge(scenario, _judged({"coverage": 5, "actionable": 5})).score == 100
    middling = judge(scenario, _judged({"coverage": 3, "actionable": 4}))
    assert middling.score == 62.5 and middling.failure_mode == "verifier_fail" and middling.status == "partial"
    assert [c.detail for c in middling.checks] == ["3/5", "4/5"]


def test_no_judgement_or_a_failed_judge_is_judge_error_never_a_score(plan_pack):
    scenario = _scenario(plan_pack, "keys-thorough")
    for reply in (Reply(content="a plan"), _judged(None, error="unparseable judge reply: no JSON")):
        verdict = judge(scenario, reply)
        assert (verdict.score, verdict.failure_mode) == (0, "judge_error")


def test_rubric_asks_for_every_anchor_and_both_references(tmp_path):
    bad = _rubric_scenario("x", "y")
    del bad["verifier"]["rubric"]["criteria"][0]["anchors"]["3"]
    folder = tmp_path / "bad-1"
    folder.mkdir()
    (folder / "pack.json").write_text(json.dumps({"id": "bad-1", "version": "1"}))
    (folder / "scenarios.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(PackError, match="anchors needs a non-empty text for each of 1, 2, 3, 4, 5"):
        load_pack_dir(folder)
    bad = _rubric_scenario("x", "y")
    bad["verifier"]["rubric"]["references"] = [{"grade": "strong", "answer": "s"}, {"grade": "strong", "answer": "t"}]
    (folder / "scenarios.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(PackError, match="a strong and a weak"):
        load_pack_dir(folder)


# ---- calibration arithmetic ----------------------------------------------------------------------

def test_spearman_handles_ties_and_constant_sides():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 1, 0, 0], [5, 4, 2, 1]) == pytest.approx(0.894, abs=1e-3)
    assert spearman([1, 1], [1, 2]) is None


def test_calibration_counts_tasks_where_strong_beats_weak():
    items = [CalibrationItem(pack_id="p", scenario_id=s, grade=g, judged_mean=m)
             for s, g, m in [("a", "strong", 4.5), ("a", "weak", 2.0), ("b", "strong", 3.0), ("b", "weak", 3.0)]]
    items.append(CalibrationItem(pack_id="p", scenario_id="c", grade="weak", judged_mean=None, error="x"))
    summary = rubric.summarise(items)
    assert (summary.tasks, summary.separated, summary.agreement, summary.errors) == (2, 1, 0.5, 1)
    assert summary.rank_correlation is not None and summary.rank_correlation > 0


# ---- runs against a judge double over HTTP ----------------------------------------------------------

def _run(plan_pack: Path, judge_mode: str | None, tmp_path: Path, journal: Path | None = None):
    pack = load_pack_dir(plan_pack)
    with ScriptedModel(pack.scenarios) as model:
        options = RunOptions(base_url=model.base_url, mode="full", timeout_override_s=30)
        if judge_mode is None:
            return run_packs([pack], options, journal_path=journal), None
        with ScriptedJudge(judge_mode) as double:
            from harness.endpoint.client import EndpointClient
            client = EndpointClient(double.base_url)
            try:
                judging = rubric.Judge(client=client, info=client.probe(), profile="bench-judge")
                return run_packs([pack], options, rubric_judge=judging, journal_path=journal), double
            finally:
                client.close()


def test_a_judged_run_stores_prompt_reply_scores_identity_and_calibration(plan_pack, tmp_path):
    result, double = _run(plan_pack, "thorough", tmp_path)
    scenarios = {s.scenario_id: s for s in result.packs[0].scenarios}
    thorough, terse = scenarios["keys-thorough"], scenarios["keys-terse"]
    assert (thorough.score, thorough.status) == (100, "pass")
    assert (terse.score, terse.failure_mode) == (0, "verifier_fail")
    record = thorough.reply.judgement
    assert record.judge_model == "judge-model" and record.judge_profile == "bench-judge"
    assert STRONG[:60] in record.prompt[1]["content"] and "coverage" in record.prompt[1]["content"]
    assert json.loads(record.reply)["scores"] == {"coverage": 5, "actionable": 5}
    assert scenarios["capital"].score == 100  # deterministic scenarios are never sent to the judge
    assert not any("Capital of France" in p for p in double.prompts)
    calibration = result.judge.calibration
    assert (result.judge.model, calibration.tasks, calibration.separated, calibration.agreement) == (
        "judge-model", 2, 2, 1.0)
    assert calibration.rank_correlation == pytest.approx(1.0)
    assert len(double.prompts) == 2 + 4  # two replies judged, two references per task calibrated


def test_an_inverted_judge_fails_its_calibration(plan_pack, tmp_path):
    result, _ = _run(plan_pack, "inverse", tmp_path)
    calibration = result.judge.calibration
    assert (calibration.separated, calibration.agreement) == (0, 0.0)
    assert calibration.rank_correlation == pytest.approx(-1.0)


@pytest.mark.parametrize("mode", ["malformed", "missing", "error500"])
def test_a_judge_that_does_not_give_scores_is_judge_error(plan_pack, tmp_path, mode):
    result, _ = _run(plan_pack, mode, tmp_path)
    judged = [s for s in result.packs[0].scenarios if s.scenario.verifier.type == "rubric"]
    assert {(s.score, s.failure_mode) for s in judged} == {(0, "judge_error")}
    assert all(s.reply.judgement.error for s in judged)
    assert result.judge.calibration.errors == 4 and result.judge.calibration.agreement is None


def test_extreme_judge_scores_are_clamped_and_marked(plan_pack, tmp_path):
    result, _ = _run(plan_pack, "extreme", tmp_path)
    thorough = next(s for s in result.packs[0].scenarios if s.scenario_id == "keys-thorough")
    assert thorough.reply.judgement.scores == {"coverage": 5.0, "actionable": 1.0}
    assert thorough.reply.judgement.clamped == ["coverage", "actionable"]
    assert thorough.score == 50.0 and any("(clamped)" in c.detail for c in thorough.checks)


def test_without_a_judge_rubric_scenarios_are_left_out_and_the_result_says_so(plan_pack, tmp_path):
    result, _ = _run(plan_pack, None, tmp_path)
    assert [s.scenario_id for s in result.packs[0].scenarios] == ["capital"]
    assert result.judge is None
    assert result.notes == ["plans-3: 2 rubric-judged scenario(s) not run (keys-thorough, keys-terse): "
                            "no --judge PROFILE given"]


def test_judge_errors_are_redone_on_resume_with_a_working_judge(plan_pack, tmp_path):
    journal = tmp_path / "run.journal.jsonl"
    first, _ = _run(plan_pack, "malformed", tmp_path, journal)
    assert sum(s.failure_mode == "judge_error" for s in first.packs[0].scenarios) == 2
    pack = load_pack_dir(plan_pack)
    with ScriptedModel(pack.scenarios) as model, ScriptedJudge("thorough") as double:
        from harness.endpoint.client import EndpointClient
        client = EndpointClient(double.base_url)
        judging = rubric.Judge(client=client, info=client.probe())
        again = run_packs([pack], RunOptions(base_url=model.base_url, mode="full", timeout_override_s=30),
                          rubric_judge=judging, journal_path=journal, resume=True)
        client.close()
    assert {s.scenario_id: s.failure_mode for s in again.packs[0].scenarios} == {
        "keys-thorough": "passed", "keys-terse": "verifier_fail", "capital": "passed"}


def test_judge_calibrate_command_prints_agreement_and_correlation(plan_pack, tmp_path):
    with ScriptedJudge("fenced") as double:
        done = subprocess.run([sys.executable, "-m", "harness", "judge", "calibrate", "--judge", double.base_url,
                               "--packs-dir", str(plan_pack.parent), "--save-json", str(tmp_path / "cal.json")],
                              capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "plans-3/keys-thorough" in done.stdout and "5.00" in done.stdout and "1.00" in done.stdout
    assert ("Judge judge-model: separated strong from weak in 2/2 task(s) (agreement 100%); rank correlation "
            "+1.00; 0 judge error(s)") in done.stdout
    assert json.loads((tmp_path / "cal.json").read_text())["separated"] == 2


def test_judge_calibrate_without_rubrics_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness", "judge", "calibrate", "--judge", "http://127.0.0.1:9",
                           "--packs-dir", str(REPO_ROOT / "packs"), "--pack", "toolcall-15"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("error: no pack in") and "rubric" in done.stderr


@pytest.mark.server
def test_the_real_server_as_judge_gives_scores_or_judge_errors_never_guesses(embedded_server, plan_pack, tmp_path):
    """Any profile can judge; SmolLM2 is a poor judge, and calibration is there to show it."""
    done = subprocess.run([sys.executable, "-m", "harness", "judge", "calibrate", "--judge", embedded_server.base_url,
                           "--packs-dir", str(plan_pack.parent), "--save-json", str(tmp_path / "cal.json")],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    calibration = json.loads((tmp_path / "cal.json").read_text())
    assert len(calibration["items"]) == 4
    for item in calibration["items"]:  # each reference either scored 1-5 or recorded why not
        assert (item["judged_mean"] is not None and 1 <= item["judged_mean"] <= 5) or item["error"]
    assert "separated strong from weak in" in done.stdout


def test_packs_run_with_judge_prints_the_judge_and_its_calibration(plan_pack, tmp_path):
    pack = load_pack_dir(plan_pack)
    out = tmp_path / "judged.json"
    with ScriptedModel(pack.scenarios) as model, ScriptedJudge("thorough") as double:
        done = subprocess.run([sys.executable, "-m", "harness", "packs", "run", "--base-url", model.base_url,
                               "--pack-file", str(plan_pack), "--judge", double.base_url, "--no-progress",
                               "--save-json", str(out)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| plans-3 | 2/3" in done.stdout and "ok · 2 judged" in done.stdout
    assert (f"Rubric judge: judge-model at {double.base_url} (scores are marked judged); calibration: strong above "
            "weak reference in 2/2 task(s), rank correlation +1.00") in done.stdout
    shown = subprocess.run([sys.executable, "-m", "harness", "inspect", str(out), "--scenario", "keys-terse"],
                           capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert "judged by judge-model: coverage 1, actionable 1;" in shown.stdout
