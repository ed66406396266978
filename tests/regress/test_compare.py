"""harness.regress.compare: scenario movement, pack deltas, significance and the gate."""

from __future__ import annotations

import json
from math import comb

import pytest

from harness.errors import ComparisonError
from harness.regress.compare import compare, regression_gate
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
