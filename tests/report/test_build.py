"""The report's view-model is built from the run directory alone: result files for the numbers,
the manifest's records for what ran. No Docker, no server, no models.conf."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report.build import RESULTS_UNREADABLE, build_report
from harness.report.model import NOT_RECORDED
from harness.report.render import render_html, render_markdown
from tests.conftest import REPO_ROOT
from tests.report.fixture import BROKEN, PROFILE, expected_numbers, read_json

REFERENCES = REPO_ROOT / "reference-scores.json"
GENERATED_AT = "2026-03-02 08:00 UTC"


def _build(run_dir: Path):
    return build_report(run_dir, REFERENCES)


def _profile(report, profile_id: str = PROFILE):
    return next(p for p in report.profiles if p.profile == profile_id)


def _rendered(run_dir: Path) -> tuple[str, str, dict]:
    report = _build(run_dir)
    report.generated_at = GENERATED_AT  # the one thing allowed to differ between two builds
    return render_markdown(report), render_html(report), report.model_dump()


def test_numbers_come_from_the_result_files(run_dir):
    profile = _profile(_build(run_dir))
    packs = read_json(run_dir / PROFILE / "packs.json")
    throughput = read_json(run_dir / PROFILE / "throughput.json")
    evalplus = read_json(run_dir / PROFILE / "evalplus" / "humaneval" / "humaneval.result.json")
    assert profile.status == "completed" and profile.reason == ""
    assert [(r.pack, r.passed.k, r.passed.n, r.mean_score) for r in profile.packs] == [
        (p["pack_id"], p["passed"], p["total"], p["mean_score"]) for p in packs["packs"]]
    assert profile.throughput.decode_tps == throughput["decode_tps"]["median"]
    assert profile.throughput.ttft_ms == pytest.approx(throughput["ttft_s"]["median"] * 1000)
    assert profile.throughput.runs == len(throughput["runs"])
    [row] = profile.evalplus
    tasks = evalplus["tasks"]
    assert (row.tasks, row.plus.k, row.base.k) == (
        evalplus["n_tasks"], sum(t["plus_pass"] for t in tasks), sum(t["base_pass"] for t in tasks))
    assert row.empty == evalplus["counts"]["empty"]
    plus_pct = expected_numbers(run_dir)["humaneval_plus"].split(" = ")[1]
    assert profile.quality_line.startswith("Quality: ") and f"HumanEval+ {plus_pct}" in profile.quality_line


def test_verify_checks_come_from_verify_json(run_dir):
    profile = _profile(_build(run_dir))
    checks = read_json(run_dir / PROFILE / "verify.json")["checks"]
    assert [(v.kind, v.check, v.passed, v.detail) for v in profile.verify] == [
        (c["kind"], c["name"], c["passed"], c["detail"]) for c in checks]
    assert _profile(_build(run_dir), BROKEN).verify == []  # never got that far


def test_provenance_comes_from_the_manifest(run_dir):
    report = _build(run_dir)
    manifest = read_json(run_dir / "manifest.json")
    run = manifest["provenance"]
    assert report.harness_version == run["harness_version"]
    assert report.git_commit == f"{run['git_commit']} (dirty tree)"
    assert (report.hostname, report.python_version) == (run["hostname"], run["python_version"])
    recorded = next(p for p in manifest["profiles"] if p["profile"] == PROFILE)["provenance"]
    profile = _profile(report)
    facts = profile.provenance
    assert profile.name == recorded["resolved"]["NAME"]
    assert facts["image"] == recorded["image"] and facts["image id"] == recorded["image_id"]
    assert facts["model sha256"].startswith(recorded["model_sha256"] + " (")
    assert facts["server flags"].startswith(f"--ctx-size {recorded['resolved']['CTX_SIZE']} ")
    assert recorded["resolved"]["EXTRA_ARGS"] in facts["server flags"]
    assert facts["gpus"] == recorded["resolved"]["GPUS"]
    assert facts["pack versions"] == ", ".join(f"{p['pack_id']} {p['version']}"
                                                for p in read_json(run_dir / PROFILE / "packs.json")["packs"])
    broken = _profile(report, BROKEN).provenance
    assert broken["model sha256"].startswith(NOT_RECORDED) and "model file not found" in broken["model sha256"]


def test_todays_models_conf_does_not_change_the_report(run_dir, tmp_path):
    """Build, then rewrite and then delete the models.conf the manifest points to: the same report."""
    conf = Path(read_json(run_dir / "manifest.json")["config"])
    conf.write_text(f"[{PROFILE}]\nNAME=Today's name\nMODEL=other.gguf\nIMAGE=other:latest\nCTX_SIZE=99\nPORT=1\n")
    first = _rendered(run_dir)
    conf.write_text(f"[{PROFILE}]\nNAME=Renamed again\nMODEL=x.gguf\nIMAGE=y:z\nCTX_SIZE=7\nPORT=2\nGPUS=all\n")
    assert _rendered(run_dir) == first
    conf.unlink()
    assert _rendered(run_dir) == first
    markdown = first[0]
    assert "Today's name" not in markdown and "other:latest" not in markdown and "--ctx-size 99" not in markdown


def test_a_run_from_before_provenance_records_says_not_recorded(run_dir):
    manifest = read_json(run_dir / "manifest.json")
    del manifest["provenance"]
    for record in manifest["profiles"]:
        del record["provenance"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    report = _build(run_dir)
    assert report.harness_version == report.git_commit == report.hostname == NOT_RECORDED
    facts = _profile(report).provenance
    assert facts["profile as run"].startswith(NOT_RECORDED)
    assert "image" not in facts and facts["sampling"].startswith("canonical")  # packs.json still tells its part
    assert _profile(report).packs  # the numbers are all still there
    markdown = render_markdown(report)
    assert f"commit `{NOT_RECORDED}`" in markdown


@pytest.mark.parametrize("text", ["{not json", "[]", '{"run_id": "x"}', ""])
def test_a_broken_manifest_is_one_line_naming_the_file(run_dir, text):
    (run_dir / "manifest.json").write_text(text)
    with pytest.raises(HarnessError) as caught:
        _build(run_dir)
    message = str(caught.value)
    assert message.startswith(f"{run_dir / 'manifest.json'}: ") and "\n" not in message


def test_a_missing_manifest_is_one_line(tmp_path):
    with pytest.raises(HarnessError, match="no manifest"):
        _build(tmp_path)


def test_report_verb_turns_a_broken_manifest_into_one_line(run_dir):
    (run_dir / "manifest.json").write_text('{"run_id": 3}')
    done = subprocess.run([sys.executable, "-m", "harness", "report", "--results-dir", str(run_dir.parent),
                           "--run-id", run_dir.name, "--out", str(run_dir.parent)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {run_dir / 'manifest.json'}: not a run manifest")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_broken_packs_json_is_not_shown_as_completed(run_dir):
    (run_dir / PROFILE / "packs.json").write_text('{"kind": "packs", "packs": [')
    profile = _profile(_build(run_dir))
    assert profile.status == RESULTS_UNREADABLE
    assert "packs.json unreadable" in profile.reason
    assert profile.packs == [] and profile.evalplus  # the other results still show
    row = next(line for line in render_markdown(_build(run_dir)).splitlines() if line.startswith(f"| {PROFILE} "))
    assert "completed" not in row and RESULTS_UNREADABLE in row


def test_a_finished_step_without_its_result_file_is_said(run_dir):
    (run_dir / PROFILE / "throughput.json").unlink()
    profile = _profile(_build(run_dir))
    assert profile.status == RESULTS_UNREADABLE
    assert "throughput step done but throughput.json is missing" in profile.reason


def test_broken_verify_json_is_said(run_dir):
    (run_dir / PROFILE / "verify.json").write_text('{"kind": "verify", "checks": "no"}')
    profile = _profile(_build(run_dir))
    assert profile.verify == [] and "verify.json unreadable" in profile.reason


def test_failed_profile_keeps_its_reason_and_step_details(run_dir):
    manifest = read_json(run_dir / "manifest.json")
    recorded = next(p for p in manifest["profiles"] if p["profile"] == BROKEN)
    profile = _profile(_build(run_dir), BROKEN)
    assert (profile.status, profile.reason) == ("failed", recorded["reason"])
    assert [(name, detail) for name, _, _, detail in profile.steps] == [
        (s["name"], s["detail"]) for s in recorded["steps"]]


def test_warnings_and_resumes_recorded_by_the_run_are_shown(run_dir):
    manifest = read_json(run_dir / "manifest.json")
    manifest["warnings"] = ["[bench-smollm2] profile changed since the run started (CTX_SIZE: 4096 → 8192)"]
    manifest["resumed_at"] = ["2026-03-02T01:30:00Z"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    report = _build(run_dir)
    assert report.warnings == manifest["warnings"] and report.resumed_at == ["2026-03-02 01:30 UTC"]
    for text in (render_markdown(report), render_html(report)):
        assert "CTX_SIZE: 4096 → 8192" in text and "resumed 2026-03-02 01:30 UTC" in text
