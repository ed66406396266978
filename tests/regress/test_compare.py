"""harness.regress.compare: scenario movement, pack deltas, significance and the gate."""

from __future__ import annotations

import json
from math import comb

import pytest

from harness.errors import ComparisonError
from harness.regress.compare import INCONCLUSIVE, compare, format_comparison, regression_gate
from harness.regress.outcomes import OutcomeSet, load_outcome_set


def outcome_set(label: str, verdicts: dict[tuple[str, str], list[bool] | bool], *, canonical: bool = True,
                scores: dict[str, float] | None = None, thinking: str = "off",
                versions: dict[str, str] | None = None) -> OutcomeSet:
    rows = [{"pack_id": p, "scenario_id": s, "passes": v if isinstance(v, list) else [v]}
            for (p, s), v in verdicts.items()]
    repeats = len(rows[0]["passes"]) if rows else 1
    return OutcomeSet(label=label, canonical=canonical, thinking_mode=thinking, repeats=repeats, outcomes=rows,
                      pack_scores=scores or {}, pack_versions=versions or {})


def _exact_p(regressed: int, fixed: int) -> float:
    n = regressed + fixed
    return min(1.0, 2 * sum(comb(n, i) for i in range(min(regressed, fixed) + 1)) / 2**n) if n else 1.0


def test_lists_and_pack_deltas():
    a = outcome_set("A", {("tool", "t1"): True, ("tool", "t2"): False, ("tool", "t3"): True,
                          ("json", "j1"): False, ("json", "j2"): True, ("json", "only-a"): True},
                    scores={"tool": 70.0, "json": 50.0})
    b = outcome_set("B", {("tool", "t1"): True, ("tool", "t2"): True, ("tool", "t3"): False,
                          ("json", "j1"): False, ("json", "j2"): False, ("json", "only-b"): True},
                    scores={"tool": 72.5})
    c = compare(a, b)
    assert c.fixed == [("tool", "t2")]
    assert c.regressed == [("json", "j2"), ("tool", "t3")]
    assert c.stable_pass == [("tool", "t1")]
    assert c.stable_fail == [("json", "j1")]
    assert c.only_in_a == [("json", "only-a")] and c.only_in_b == [("json", "only-b")]
    deltas = {d.pack_id: d for d in c.pack_deltas}
    assert (deltas["tool"].shared, deltas["tool"].passed_a, deltas["tool"].passed_b) == (3, 2, 2)
    assert deltas["tool"].score_delta == pytest.approx(2.5)
    assert (deltas["json"].passed_a, deltas["json"].passed_b, deltas["json"].pass_delta) == (1, 0, -1)
    assert deltas["json"].score_delta is None  # B has no json score: no made-up delta
    assert c.p_value == pytest.approx(_exact_p(2, 1))
    assert not c.significant


def test_significance_and_gate():
    keys = [("pack", f"s{i}") for i in range(20)]
    a = outcome_set("A", {k: True for k in keys})
    b = outcome_set("B", {k: i >= 7 for i, k in enumerate(keys)})  # 7 regressions, 0 fixes
    c = compare(a, b)
    assert len(c.regressed) == 7 and c.p_value == pytest.approx(2 / 2**7)
    assert c.significant and c.significant_regression and regression_gate(c)
    # The same movement the other way round is a significant *improvement*: the gate stays shut.
    reverse = compare(b, a)
    assert reverse.significant and not reverse.significant_regression and not regression_gate(reverse)
    # A stricter alpha turns the same data into "not significant".
    assert not compare(a, b, alpha=0.01).significant


def test_five_regressions_are_not_significant():
    # 5/5 discordant pairs regressing gives p = 0.0625: a ">10 points dropped" rule would fire, we do not.
    keys = [("pack", f"s{i}") for i in range(15)]
    a = outcome_set("A", {k: True for k in keys})
    b = outcome_set("B", {k: i >= 5 for i, k in enumerate(keys)})
    c = compare(a, b)
    assert c.p_value == pytest.approx(0.0625) and not c.significant and not regression_gate(c)


def test_non_canonical_cannot_gate():
    keys = [("pack", f"s{i}") for i in range(10)]
    a = outcome_set("A", {k: True for k in keys})
    b = outcome_set("B", {k: False for k in keys}, canonical=False)
    c = compare(a, b)
    assert c.significant and not c.gateable
    assert any("non-canonical" in note for note in c.notes)
    with pytest.raises(ComparisonError, match="non-canonical"):
        regression_gate(c)


def test_majority_vote_over_repeats_decides_the_verdict():
    a = outcome_set("A", {("p", "x"): [True, True, False], ("p", "y"): [False, False, True]})
    b = outcome_set("B", {("p", "x"): [True, False, False], ("p", "y"): [True, True, False]})
    c = compare(a, b)
    assert c.regressed == [("p", "x")] and c.fixed == [("p", "y")]


def test_notes_on_mismatched_runs():
    a = outcome_set("A", {("p", "x"): True}, thinking="on", versions={"p": "1.0"})
    b = outcome_set("B", {("p", "x"): True}, thinking="off", versions={"p": "1.1"})
    notes = " | ".join(compare(a, b).notes)
    assert "thinking mode differs" in notes and "pack p version differs" in notes


def test_outcome_set_validation():
    with pytest.raises(ValueError, match="listed twice"):
        OutcomeSet(label="x", canonical=True, repeats=1,
                   outcomes=[{"pack_id": "p", "scenario_id": "a", "passes": [True]}] * 2)
    with pytest.raises(ValueError, match="repeats is 2"):
        OutcomeSet(label="x", canonical=True, repeats=2,
                   outcomes=[{"pack_id": "p", "scenario_id": "a", "passes": [True]}])


def test_load_outcome_set_errors_name_file_and_field(tmp_path):
    good = outcome_set("A", {("p", "x"): True})
    path = tmp_path / "a.json"
    path.write_text(good.model_dump_json())
    assert load_outcome_set(path) == good
    bad = json.loads(good.model_dump_json())
    del bad["canonical"]
    path.write_text(json.dumps(bad))
    with pytest.raises(ComparisonError, match=r"a\.json: canonical: Field required"):
        load_outcome_set(path)
    path.write_text(json.dumps({"kind": "packs-run", "packs": []}))
    with pytest.raises(ComparisonError, match="no adapter"):
        load_outcome_set(path)
    path.write_text("{")
    with pytest.raises(ComparisonError, match="not readable JSON"):
        load_outcome_set(path)
    with pytest.raises(ComparisonError, match="not found"):
        load_outcome_set(tmp_path / "missing.json")


# --- equivalence within a margin and the verdict in words ----------------------------------


def _pack(n: int, passing: int, pack: str = "pack") -> dict[tuple[str, str], bool]:
    """n scenarios of one pack, the first `passing` of them passing."""
    return {(pack, f"s{i:03d}"): i < passing for i in range(n)}


def test_identical_runs_with_enough_scenarios_are_equivalent():
    verdicts = _pack(60, 45)
    c = compare(outcome_set("q8", verdicts), outcome_set("q4", verdicts))
    e = c.equivalence
    assert c.verdict == "equivalent within ±5" and e.equivalent and not c.significant
    # No discordant pair over 60: ±z²/(n + z²) = ±2.70554/62.70554 = ±4.31 points, inside ±5.
    assert (e.ci_low_points, e.ci_high_points) == (pytest.approx(-4.3147, abs=1e-3), pytest.approx(4.3147, abs=1e-3))
    assert e.difference_points == 0.0 and e.confidence == pytest.approx(0.9) and e.min_shared == 52
    assert "verdict: equivalent within ±5" in format_comparison(c)


def test_identical_runs_with_few_scenarios_are_inconclusive():
    verdicts = _pack(12, 12)
    c = compare(outcome_set("q8", verdicts), outcome_set("q4", verdicts))
    assert c.verdict == INCONCLUSIVE == "inconclusive (need more scenarios)"
    assert not c.significant and not c.equivalence.equivalent  # "no significant difference" is not "as good"
    text = format_comparison(c)
    assert "verdict: inconclusive (need more scenarios): 12 shared scenarios" in text and "at least 52" in text
    # A wider margin needs fewer scenarios: ±20 points takes 11 identical ones.
    assert compare(outcome_set("q8", verdicts), outcome_set("q4", verdicts), margin_points=20).verdict \
        == "equivalent within ±20"


def test_planted_regression_is_worse():
    # A passes 80 of 100; B fails 16 of those (20% of what A passed) and fixes none.
    a = _pack(100, 80)
    b = {k: passed and int(k[1][1:]) >= 16 for k, passed in a.items()}
    c = compare(outcome_set("q8", a), outcome_set("q4", b))
    assert len(c.regressed) == 16 and c.fixed == []
    assert c.verdict == "worse" and c.significant_regression
    assert c.equivalence.difference_points == pytest.approx(-16.0) and c.equivalence.ci_high_points < 0
    assert not c.equivalence.equivalent
    assert "verdict: worse" in format_comparison(c)


def test_improvement_is_better():
    a = _pack(100, 60)
    b = {k: passed or int(k[1][1:]) < 75 for k, passed in a.items()}  # 15 fixed, none regressed
    c = compare(outcome_set("q8", a), outcome_set("q4", b))
    assert c.verdict == "better" and not c.significant_regression and c.equivalence.ci_low_points > 0


def test_flips_both_ways_can_be_equivalent_or_inconclusive():
    a = _pack(200, 150)
    # 3 regressed and 3 fixed over 200: 90% CI about ±2.4 points, inside ±5.
    b = {k: (passed and int(k[1][1:]) >= 3) or 150 <= int(k[1][1:]) < 153 for k, passed in a.items()}
    c = compare(outcome_set("A", a), outcome_set("B", b))
    assert (len(c.regressed), len(c.fixed)) == (3, 3) and c.verdict == "equivalent within ±5"
    # 5 and 5 over 100: 90% CI about ±5.7 points, reaching past ±5 although 100 >= 52 scenarios.
    a = _pack(100, 50)
    b = {k: (passed and int(k[1][1:]) >= 5) or 50 <= int(k[1][1:]) < 55 for k, passed in a.items()}
    c = compare(outcome_set("A", a), outcome_set("B", b))
    assert c.verdict == INCONCLUSIVE and c.equivalence.ci_high_points > 5
    assert "the 90% CI reaches beyond ±5 points" in format_comparison(c)


def test_a_small_significant_difference_is_worse_and_said_to_be_within_the_margin():
    a = _pack(2000, 1000)
    b = {k: passed and int(k[1][1:]) >= 20 for k, passed in a.items()}  # 20 of 2000: 1 point
    c = compare(outcome_set("A", a), outcome_set("B", b))
    assert c.verdict == "worse" and c.equivalence.equivalent
    assert "verdict: worse (significant, yet within ±5 points)" in format_comparison(c)


def test_per_pack_verdicts():
    a = {**_pack(100, 80, "big"), **_pack(12, 12, "small")}
    b = {k: passed and not (k[0] == "big" and int(k[1][1:]) < 16) for k, passed in a.items()}
    c = compare(outcome_set("A", a), outcome_set("B", b))
    by_pack = {d.pack_id: d for d in c.pack_deltas}
    assert (by_pack["big"].regressed, by_pack["big"].fixed, by_pack["big"].verdict) == (16, 0, "worse")
    assert by_pack["small"].verdict == INCONCLUSIVE and by_pack["small"].equivalence.min_shared == 52
    table = format_comparison(c).splitlines()
    assert any(line.startswith("small") and line.rstrip().endswith(INCONCLUSIVE) for line in table)


def test_verdict_and_interval_are_in_the_json():
    verdicts = _pack(60, 30)
    comparison = compare(outcome_set("A", verdicts), outcome_set("B", verdicts), margin_points=5)
    saved = json.loads(comparison.model_dump_json())
    assert saved["verdict"] == "equivalent within ±5"
    assert saved["equivalence"]["margin_points"] == 5 and saved["equivalence"]["equivalent"] is True
    assert {"ci_low_points", "ci_high_points", "p_value", "difference_points"} <= saved["equivalence"].keys()
    assert saved["pack_deltas"][0]["verdict"] == "equivalent within ±5"


@pytest.mark.parametrize("margin", [0, -1, 100, 150])
def test_compare_refuses_a_margin_outside_0_100(margin):
    with pytest.raises(ValueError, match="margin"):
        compare(outcome_set("A", _pack(3, 1)), outcome_set("B", _pack(3, 1)), margin_points=margin)
