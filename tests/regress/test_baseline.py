"""harness.regress.baseline and the `baseline` / `diff` verbs over OutcomeSet files."""

from __future__ import annotations

import json

import pytest

from harness.cli.main import main
from harness.errors import ComparisonError
from harness.regress.baseline import (
    Baseline,
    baseline_path,
    build_baseline,
    check_against_baseline,
    load_baseline,
    write_baseline,
)
from tests.conftest import GOOD_PROFILE

from .test_compare import outcome_set

KEYS = [("tool", f"t{i}") for i in range(8)] + [("json", f"j{i}") for i in range(4)]


def runs_with(flaky_passes: list[bool]) -> list:
    """Three single-repeat runs: t* always pass, j* always fail, tool/t0 flaky as given."""
    runs = []
    for repeat, flaky in enumerate(flaky_passes):
        verdicts = {k: k[0] == "tool" for k in KEYS}
        verdicts[("tool", "t0")] = flaky
        runs.append(outcome_set(f"run{repeat}", verdicts, scores={"tool": 80.0 + repeat, "json": 10.0}))
    return runs


def test_build_baseline_aggregates_repeats():
    built = build_baseline("bench-x", "off", runs_with([True, False, False]))
    by_key = {(s.pack_id, s.scenario_id): s for s in built.scenarios}
    assert built.runs == 3 and built.canonical
    assert by_key[("tool", "t0")].pass_count == 1 and not by_key[("tool", "t0")].majority_passed
    assert by_key[("tool", "t1")].pass_count == 3 and by_key[("tool", "t1")].majority_passed
    assert by_key[("json", "j0")].pass_count == 0
    assert built.pack_scores == {"json": 10.0, "tool": pytest.approx(81.0)}


def test_build_baseline_refuses_bad_inputs():
    with pytest.raises(ComparisonError, match="at least 3 repeats, got 2"):
        build_baseline("bench-x", "off", runs_with([True, True]))
    runs = runs_with([True, True, True])
    runs[2] = outcome_set("short", {k: True for k in KEYS[:-1]})
    with pytest.raises(ComparisonError, match="scenario set differs"):
        build_baseline("bench-x", "off", runs)
    with pytest.raises(ComparisonError, match="thinking mode"):
        build_baseline("bench-x", "on", runs_with([True, True, True]))


def test_round_trip_and_check(tmp_path):
    built = build_baseline("bench-x", "off", runs_with([True, True, False]))
    path = write_baseline(built, baseline_path(tmp_path, "bench-x", "off"))
    assert path == tmp_path / "baselines" / "bench-x__off.json"
    assert not path.with_name(path.name + ".partial").exists()
    loaded = load_baseline(path)
    assert loaded == built and isinstance(loaded, Baseline)
    fresh = outcome_set("fresh", {k: k[0] == "tool" and k != ("tool", "t0") for k in KEYS})
    c = check_against_baseline(loaded, fresh)
    assert c.regressed == [("tool", "t0")] and c.fixed == [] and not c.significant


def _write(path, outcome) -> str:
    path.write_text(outcome.model_dump_json())
    return str(path)


def test_cli_capture_check_and_exit_on_regression(tmp_path, write_conf, capsys):
    conf = str(write_conf(GOOD_PROFILE))
    results = tmp_path / "results"
    files = [_write(tmp_path / f"r{i}.json", run) for i, run in enumerate(runs_with([True, True, True]))]
    common = ["--config", conf, "--results-dir", str(results)]
    assert main(["baseline", "capture", "bench-tiny", "--outcomes", *files, *common]) == 0
    stored = json.loads((results / "baselines" / "bench-tiny__off.json").read_text())
    assert stored["runs"] == 3 and len(stored["scenarios"]) == len(KEYS)

    # Every tool scenario regresses: 8 discordant pairs, all one way, p = 2/256 < 0.05.
    broken = _write(tmp_path / "broken.json", outcome_set("broken", {k: False for k in KEYS}))
    assert main(["baseline", "check", "bench-tiny", "--outcomes", broken, *common]) == 0  # informational
    assert main(["baseline", "check", "bench-tiny", "--outcomes", broken, "--exit-on-regression", *common]) == 1
    out = capsys.readouterr().out
    assert "regressed (8)" in out and "p = 0.007812" in out

    # One regression is not significant: the gate stays open.
    one = _write(tmp_path / "one.json", outcome_set("one", {k: k[0] == "tool" and k != ("tool", "t3") for k in KEYS}))
    assert main(["baseline", "check", "bench-tiny", "--outcomes", one, "--exit-on-regression", *common]) == 0

    # A non-canonical run cannot gate: error exit, one line naming the reason.
    sampled = _write(tmp_path / "sampled.json", outcome_set("sampled", {k: False for k in KEYS}, canonical=False))
    assert main(["baseline", "check", "bench-tiny", "--outcomes", sampled, "--exit-on-regression", *common]) == 2
    assert "non-canonical" in capsys.readouterr().err

    missing = ["baseline", "check", "bench-tiny", "--outcomes", one, "--thinking-mode", "on", *common]
    assert main(missing) == 2
    assert "no baseline" in capsys.readouterr().err


def test_cli_diff_saves_json(tmp_path, capsys):
    a = _write(tmp_path / "a.json", outcome_set("A", {("p", "x"): True, ("p", "y"): False}, scores={"p": 50.0}))
    b = _write(tmp_path / "b.json", outcome_set("B", {("p", "x"): False, ("p", "y"): True}, scores={"p": 55.0}))
    out_path = tmp_path / "diff.json"
    assert main(["diff", a, b, "--save-json", str(out_path)]) == 0
    text = capsys.readouterr().out
    assert "fixed (1): p/y" in text and "regressed (1): p/x" in text and "+5.0" in text
    saved = json.loads(out_path.read_text())
    assert saved["fixed"] == [["p", "y"]] and saved["p_value"] == 1.0 and saved["pack_deltas"][0]["score_delta"] == 5.0
