"""gsm-30: the generator is deterministic, its answers are right, and the committed pack is its output."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

from harness.packs import loader
from harness.packs.schema import Reply
from harness.packs.verifiers import judge

REPO_ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("gen_gsm30", REPO_ROOT / "scripts" / "gen_gsm30.py")
assert _SPEC and _SPEC.loader
gen = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gen)

# The answers again, written from the problem statements rather than taken from the generator.
RECOMPUTE = {
    "bakery": lambda v: v["trays"] * v["per_tray"] - v["sold"] - v["given"],
    "savings": lambda v: v["weekly"] * v["weeks"] - v["spent"],
    "garden": lambda v: v["rows"] * v["per_row"] * v["per_plant"],
    "bus": lambda v: v["start"] - v["off1"] + v["on1"] - v["off2"] + v["on2"],
    "reading": lambda v: (5 * v["weekday_pages"] + 2 * v["weekend_pages"]) * v["weeks"],
    "change": lambda v: 100 * v["bill"] - v["apples"] * v["apple_cents"] - v["pears"] * v["pear_cents"],
    "trip": lambda v: v["speed"] * v["hours"] + v["walk_km"],
    "bill": lambda v: (v["bill"] + v["tip"]) / v["friends"],
    "ages": lambda v: v["age"] * 2 + v["older_by"] + 2 * v["years"],
    "discount": lambda v: v["price"] - v["price"] * v["percent_off"] / 100,
}


def test_ten_templates_three_instances_each_with_other_numbers_and_names():
    rows = gen.scenarios()
    assert len(rows) == 30
    assert Counter(r["category"] for r in rows) == {t: 3 for t in RECOMPUTE}
    for template in RECOMPUTE:
        mine = [r for r in rows if r["category"] == template]
        assert len({json.dumps(r["expected"]["values"], sort_keys=True) for r in mine}) == 3, template
        assert len({r["expected"]["name"] for r in mine}) == 3, template


def test_answers_recomputed_independently_match_and_numbers_are_in_the_question():
    for row in gen.scenarios():
        values, question = row["expected"]["values"], row["messages"][-1]["content"]
        answer = RECOMPUTE[row["category"]](values)
        assert answer == int(answer) and answer >= 0, row["id"]  # exact, whole, sensible
        assert row["verifier"]["answer"] == str(int(answer)) == str(row["expected"]["answer"]), row["id"]
        for value in values.values():
            assert str(value) in question, (row["id"], value)
        assert row["expected"]["name"] in question


def test_generation_is_deterministic_and_the_seed_matters():
    assert gen.render() == gen.render()
    assert gen.render(seed=1)["scenarios.jsonl"] != gen.render()["scenarios.jsonl"]


def test_committed_pack_is_the_generator_output(tmp_path):
    assert gen.main(["--check"]) == 0
    (tmp_path / "pack.json").write_text("{}")
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1


def test_the_pack_loads_and_reference_answers_pass_while_off_by_one_fails():
    pack = loader.load_pack(REPO_ROOT / "packs" / "gsm-30")
    assert pack.meta.default_thinking and "reasoning" in pack.meta.modes and pack.meta.thinking_max_tokens
    for scenario in pack.scenarios:
        good = judge(scenario, Reply(content=scenario.reference_turns[0].content, content_source="content"))
        assert good.failure_mode == "passed", scenario.id
        wrong = int(scenario.verifier.model_extra["answer"]) + 1
        bad = judge(scenario, Reply(content=f"ANSWER: {wrong}", content_source="content"))
        assert bad.failure_mode == "wrong_answer", scenario.id
