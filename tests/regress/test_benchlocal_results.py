"""benchlocal-cli result files feed diff and baselines through the adapter in harness.regress.outcomes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import ComparisonError
from harness.packs import loader
from harness.packs.runner import RunOptions, run_packs, write_result
from harness.packs.schema import ReferenceTurn
from harness.regress.outcomes import load_outcome_set, outcomes_from_benchlocal
from tests.doubles.scripted_server import ScriptedModel

DATA = Path(__file__).resolve().parents[1] / "data" / "benchlocal"
UPSTREAM = DATA / "result-upstream.json"


def test_upstream_result_becomes_an_outcome_set():
    outcomes = load_outcome_set(UPSTREAM)
    assert outcomes.verdicts() == {("bl-gsm", "GSM-0000"): True, ("bl-gsm", "GSM-0000#2"): False,
                                   ("bl-gsm", "GSM-0002"): True, ("bl-gsm", "MC-1"): False,
                                   ("hermesagent-20", "HA-2"): True}  # the stub and the skipped pack are left out
    assert outcomes.canonical and outcomes.thinking_mode == "default" and outcomes.repeats == 1
    assert outcomes.pack_scores == {"bl-gsm": 50.0, "hermesagent-20": 100.0}
    assert outcomes.pack_versions["bl-gsm"] == "0.1.0"
    assert outcomes.label.startswith("tiny-model-q4@benchlocal-cli 0.9.9")


def test_repeats_overrides_and_forced_thinking():
    data = json.loads(UPSTREAM.read_text())
    gsm = data["packs"][0]
    second = copy.deepcopy(gsm["scenarios"])
    for run in second:
        run["repeat_index"] = 2
    gsm["scenarios"] += second
    data["packs"] = [gsm]  # every scenario of the run repeated twice
    data.update(sampling_overrides={"temperature": 0.7}, thinking_mode="force-off")
    outcomes = outcomes_from_benchlocal(data)
    assert outcomes.repeats == 2 and not outcomes.canonical and outcomes.thinking_mode == "off"
    assert next(o for o in outcomes.outcomes if o.scenario_id == "GSM-0000#2").passes == [False, False]
    server = outcomes_from_benchlocal({**data, "sampling_overrides": None, "sampling_source": "server"})
    assert server.canonical is False


def test_damaged_upstream_result_is_one_line_naming_the_file(tmp_path):
    data = json.loads(UPSTREAM.read_text())
    data["packs"][0]["scenarios"][0]["passed"] = "maybe"
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ComparisonError, match=r"old\.json: .*passed") as caught:
        load_outcome_set(bad)
    assert "\n" not in str(caught.value)
    data = json.loads(UPSTREAM.read_text())
    data["packs"][0]["scenarios"][0]["repeat_index"] = 2  # one scenario has a second repeat, the others not
    bad.write_text(json.dumps(data))
    with pytest.raises(ComparisonError, match=r"old\.json: scenario bl-gsm/.* fewer verdicts"):
        load_outcome_set(bad)


def test_diff_compares_an_old_benchlocal_run_with_a_new_one(tmp_path, capsys):
    pack = loader.load_pack(DATA / "gsm.jsonl")
    replies = {"GSM-0000": "ANSWER: 31", "GSM-0000#2": "ANSWER: 950", "GSM-0002": "ANSWER: 3.75", "MC-1": "ANSWER: B"}
    scripted = [s.model_copy(update={"reference_turns": [ReferenceTurn(content=replies[s.id])]})
                for s in pack.scenarios]
    with ScriptedModel(scripted) as model:
        new = run_packs([pack], RunOptions(base_url=model.base_url, timeout_override_s=10, retries=0))
    assert new.packs[0].passed == 4
    ours = write_result(new, tmp_path / "new.json")
    out = tmp_path / "cmp.json"
    assert main(["diff", str(UPSTREAM), str(ours), "--save-json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GSM-0000#2" in printed and "MC-1" in printed  # the two scenarios the old run failed are fixed now
    saved = json.loads(out.read_text())
    assert "GSM-0000#2" in json.dumps(saved) and "HA-1" not in json.dumps(saved)
