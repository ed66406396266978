"""harness.regress.baseline and the `baseline` / `diff` verbs over OutcomeSet files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Collection

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
from tests.conftest import GOOD_PROFILE, REPO_ROOT

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


def _harness(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=120)


def _scenarios(n: int, failing: Collection[int] = ()) -> dict[tuple[str, str], bool]:
    """n scenarios over two packs; the ones numbered in `failing` fail, plus every fourth."""
    return {("tool" if i % 2 else "json", f"s{i:03d}"): i % 4 != 0 and i not in failing for i in range(n)}


def test_cli_diff_says_equivalent_worse_or_inconclusive(tmp_path):
    a = _write(tmp_path / "q8.json", outcome_set("q8", _scenarios(80)))
    same = _write(tmp_path / "q4.json", outcome_set("q4", _scenarios(80)))
    done = _harness("diff", a, same, "--margin", "5")
    assert done.returncode == 0, done.stderr
    assert "verdict: equivalent within ±5\n" in done.stdout
    assert "90% CI -3.3 to +3.3" in done.stdout  # ±2.70554/82.70554 over 80 identical scenarios

    # B fails 12 of the 60 that A passed (20%): significantly worse.
    broken = _scenarios(80, failing={1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15})
    planted = _write(tmp_path / "q4-broken.json", outcome_set("q4-broken", broken))
    done = _harness("diff", a, planted, "--margin", "5")
    assert done.returncode == 0 and "regressed (12)" in done.stdout and "verdict: worse\n" in done.stdout

    few_a = _write(tmp_path / "few-a.json", outcome_set("few-a", _scenarios(20)))
    few_b = _write(tmp_path / "few-b.json", outcome_set("few-b", _scenarios(20)))
    done = _harness("diff", few_a, few_b)  # default margin: 5 points
    assert "verdict: inconclusive (need more scenarios): 20 shared scenarios" in done.stdout

    for bad in ("0", "100", "-2", "five", "nan"):
        done = _harness("diff", a, same, "--margin", bad)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        reason = ("expected a number" if bad == "five" else "must be finite" if bad == "nan"
                  else "must be > 0 and < 100 percentage points")
        assert done.stderr.strip().splitlines()[-1].endswith(f"argument --margin: {reason}, got {bad!r}")


def test_cli_baseline_check_with_margin(tmp_path, write_conf, capsys):
    conf = str(write_conf(GOOD_PROFILE))
    results = tmp_path / "results"
    runs = [outcome_set(f"r{i}", _scenarios(40)) for i in range(3)]
    files = [_write(tmp_path / f"r{i}.json", run) for i, run in enumerate(runs)]
    common = ["--config", conf, "--results-dir", str(results)]
    assert main(["baseline", "capture", "bench-tiny", "--outcomes", *files, *common]) == 0
    fresh = _write(tmp_path / "fresh.json", outcome_set("fresh", _scenarios(40)))
    capsys.readouterr()

    # 40 identical scenarios: ±6.3 points, short of ±5, enough for ±10.
    assert main(["baseline", "check", "bench-tiny", "--outcomes", fresh, *common]) == 0
    assert "verdict: inconclusive (need more scenarios): 40 shared scenarios" in capsys.readouterr().out
    saved = tmp_path / "check.json"
    assert main(["baseline", "check", "bench-tiny", "--outcomes", fresh, "--margin", "10", "--save-json", str(saved),
                 *common]) == 0
    assert "verdict: equivalent within ±10" in capsys.readouterr().out
    stored = json.loads(saved.read_text())
    assert stored["verdict"] == "equivalent within ±10" and stored["equivalence"]["margin_points"] == 10
    assert stored["equivalence"]["ci_high_points"] == pytest.approx(100 * 2.70554 / 42.70554, abs=1e-3)

    with pytest.raises(SystemExit) as exited:
        main(["baseline", "check", "bench-tiny", "--outcomes", fresh, "--margin", "0", *common])
    assert exited.value.code == 2 and "must be > 0 and < 100" in capsys.readouterr().err
