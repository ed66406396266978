"""The regression gate refuses to judge what it cannot: too little overlap between a fresh run
and its baseline is its own non-zero outcome, never a pass; a baseline needs n >= 3 repeats."""

from __future__ import annotations

import pytest

from harness.errors import ComparisonError
from harness.regress.baseline import build_baseline
from harness.regress.compare import compare, regression_gate
from tests.regress.test_compare import outcome_set


@pytest.mark.parametrize("shared", [0, 6, 59])
def test_too_little_overlap_cannot_gate(shared):
    """A fresh run that shares 0, 6 or 59 of 75 scenarios cannot clear (or fail) the gate."""
    baseline = outcome_set("base", {("p", f"s{i}"): True for i in range(75)})
    fresh = outcome_set("fresh", {**{("p", f"s{i}"): True for i in range(shared)},
                                  **{("q", f"new{i}"): True for i in range(20)}})
    c = compare(baseline, fresh)
    assert any("too few to judge" in note for note in c.notes)
    with pytest.raises(ComparisonError, match=f"cannot judge: {shared} of 75 scenarios"):
        regression_gate(c)


def test_enough_overlap_gates():
    baseline = outcome_set("base", {("p", f"s{i}"): True for i in range(75)})
    fresh = outcome_set("fresh", {("p", f"s{i}"): True for i in range(60)})
    assert regression_gate(compare(baseline, fresh)) is False


def test_a_baseline_needs_three_repeats():
    one = outcome_set("one", {("p", "s"): True})
    with pytest.raises(ComparisonError, match="at least 3 repeats, got 1"):
        build_baseline("bench-x", "off", [one])
