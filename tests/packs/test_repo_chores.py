"""repo-12 end to end in the real agent sandbox: chores in small git repositories, judged by the
projects' own tests, hidden tests, diff hygiene and reproducibility; plans judged by a rubric judge.

Three scripted agents over real HTTP: the reference (the pack's own solutions, must pass), an
empty one (must fail every scenario) and cheating ones (``tests/data/repo-12-cheats.json``:
editing the tests instead of the code, reformatting, deleting what must stay), each caught by
the checks it names. The judge is the scripted judge double.
"""

from __future__ import annotations

import json

import pytest

from harness.endpoint.client import EndpointClient
from harness.packs import rubric
from harness.packs.loader import load_pack_dir
from harness.packs.runner import RunOptions, run_packs
from harness.packs.schema import ReferenceTurn
from tests.conftest import REPO_ROOT
from tests.doubles.scripted_judge import ScriptedJudge
from tests.doubles.scripted_server import ScriptedModel

pytestmark = pytest.mark.docker

CHEATS = json.loads((REPO_ROOT / "tests" / "data" / "repo-12-cheats.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def repo12():
    return load_pack_dir(REPO_ROOT / "packs" / "repo-12")


def _run(pack, scenarios_for_model, modes=None):
    with ScriptedModel(scenarios_for_model, modes=modes) as model, ScriptedJudge("thorough") as double, \
            EndpointClient(double.base_url) as client:
        judging = rubric.Judge(client=client, info=client.probe(), profile="bench-judge")
        result = run_packs([pack], RunOptions(base_url=model.base_url, timeout_override_s=120, concurrency=2),
                           rubric_judge=judging)
        return result, double.prompts


def test_the_reference_agent_passes_and_plans_are_judged_on_the_files_written(repo12):
    result, prompts = _run(repo12, repo12.scenarios)
    pack = result.packs[0]
    assert pack.passed == pack.total == 12, {s.scenario_id: s.detail for s in pack.scenarios if s.status != "pass"}
    plan = next(s for s in pack.scenarios if s.scenario_id == "auth-plan")
    written = plan.reply.sandbox.after["PLAN.md"].text
    assert written and written[:200] in plan.reply.judgement.prompt[1]["content"]
    assert plan.reply.judgement.judge_profile == "bench-judge" and set(plan.reply.judgement.scores) == {
        c.id for c in rubric.rubric_of(plan.scenario).criteria}
    calibration = result.judge.calibration
    assert calibration.tasks == 2 and calibration.separated == 2  # the strong references are the thorough ones
    assert len(prompts) == 4 + 2
    health = pack.agent_health
    assert health.mean_sandbox_overhead_ms and health.mean_turns_to_solve


def test_empty_and_cheating_agents_fail_and_cheats_are_caught_by_diff_hygiene(repo12):
    cheat_ids = set(CHEATS)
    assert len(cheat_ids) >= 5
    scripted = [s.model_copy(update={"reference_turns": [ReferenceTurn.model_validate(t)
                                                         for t in CHEATS[s.id]["turns"]]})
                if s.id in cheat_ids else s for s in repo12.scenarios]
    modes = {s.id: "empty" for s in repo12.scenarios if s.id not in cheat_ids}
    result, prompts = _run(repo12, scripted, modes)
    pack = result.packs[0]
    assert pack.passed == 0
    by_id = {s.scenario_id: s for s in pack.scenarios}
    for scenario_id, cheat in CHEATS.items():
        failed = [c.name for c in by_id[scenario_id].checks if not c.ok]
        assert by_id[scenario_id].failure_mode == "verifier_fail", (scenario_id, by_id[scenario_id].detail)
        for name in cheat["caught_by"]:
            assert any(name in f for f in failed), (scenario_id, name, failed)
    for scenario_id in modes:
        assert by_id[scenario_id].failure_mode in ("no_answer_found", "verifier_fail"), by_id[scenario_id].detail
    # a plan that was never written is not sent to the judge: only the calibration was
    assert len(prompts) == 4
    assert by_id["auth-plan"].reply.judgement is None and by_id["auth-plan"].detail.startswith("not judged")
