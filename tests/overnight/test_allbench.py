"""End to end: all-bench on the real embedded server (two profiles + a broken one), the
report rendered in a real headless Chromium, and kill-and-resume losing nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.serving.images import SMOLLM2_MODEL_FILE
from tests.conftest import REPO_ROOT, free_port

pytestmark = [pytest.mark.docker, pytest.mark.server]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# Small, fixed subsets so CI stays fast; the real model answers every request.
PACK_SELECTION = "toolcall-15/select-weather,instructfollow-15/words-exact-12,structoutput-15/json-person"
RESUME_PACK = "instructfollow-15"  # 15 scenarios, sequential on a 1-slot server: a kill lands mid-run
EVALPLUS_LIMIT = 3


def _conf(tmp: Path, image: str, models_dir: Path) -> Path:
    """Two working bench profiles (different slots/context) and one whose model is corrupt."""
    broken_dir = tmp / "broken-models"
    broken_dir.mkdir()
    (broken_dir / "broken.gguf").write_bytes(b"not a gguf" * 500)
    text = f"""
[DEFAULT]
IMAGE={image}
MODELS_DIR={models_dir}
MODEL={SMOLLM2_MODEL_FILE}
EXTRA_ARGS=--jinja --threads 2 --no-webui
HEALTH_TIMEOUT_S=120
MAX_TOKENS=256

[bench-two-slots]
NAME=SmolLM2 2 slots
CTX_SIZE=4096
PARALLEL=2
PORT={free_port()}

[bench-broken]
NAME=corrupt model
MODELS_DIR={broken_dir}
MODEL=broken.gguf
CTX_SIZE=2048
PORT={free_port()}

[bench-one-slot]
NAME=SmolLM2 1 slot
CTX_SIZE=2048
PARALLEL=1
PORT={free_port()}
"""
    path = tmp / "models.conf"
    path.write_text(text)
    return path


# Every server layer in its short version (the verbs' own tests cover the full ones).
LAYERS = ("--layers", "verify-full,stress,sweep,soak", "--short-layers", "--soak-minutes", "0.15")


def _all_bench(conf: Path, results: Path, run_id: str, *extra: str, packs: str = PACK_SELECTION,
               layers: tuple[str, ...] = ("--layers", "none")) -> list[str]:
    return [sys.executable, "-m", "harness", "all-bench", "--config", str(conf), "--results-dir", str(results),
            "--run-id", run_id, "--packs", packs, "--evalplus-limit", str(EVALPLUS_LIMIT),
            "--throughput-runs", "1", *layers, *extra]


@pytest.fixture(scope="module")
def finished_run(embedded_assets, tmp_path_factory):
    image, models_dir = embedded_assets
    tmp = tmp_path_factory.mktemp("allbench")
    conf = _conf(tmp, image, models_dir)
    results = tmp / "results"
    done = subprocess.run(_all_bench(conf, results, "e2e", layers=LAYERS), capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=1500, stdin=subprocess.DEVNULL)
    manifest = json.loads((results / "e2e" / "manifest.json").read_text())
    return done, manifest, results, tmp


def test_broken_profile_is_recorded_and_the_others_complete(finished_run):
    done, manifest, _, _ = finished_run
    status = {p["profile"]: p for p in manifest["profiles"]}
    assert status["bench-two-slots"]["status"] == "completed", status["bench-two-slots"]
    assert status["bench-one-slot"]["status"] == "completed", status["bench-one-slot"]
    broken = status["bench-broken"]
    assert broken["status"] == "failed" and "server did not start" in broken["reason"]
    assert "model loading error" in broken["reason"] or "gguf" in broken["reason"].lower()
    assert done.returncode == 1, done.stderr[-2000:]  # not every profile completed


def test_the_run_recorded_what_it_ran_and_each_step_left_its_outcome(finished_run):
    _, manifest, results, _ = finished_run
    run = manifest["provenance"]
    assert run["harness_version"] and run["hostname"] and run["python_version"]
    status = {p["profile"]: p for p in manifest["profiles"]}
    for profile_id, record in status.items():
        recorded = record["provenance"]
        assert recorded["image_id"].startswith("sha256:") and recorded["resolved"]["NAME"], profile_id
        assert recorded["compose_env"].count(f"PROFILE='{profile_id}'") == 1
        assert len(recorded["model_sha256"]) == 64
    assert status["bench-broken"]["provenance"]["model_sha256_source"] == "computed"  # no .sha256 beside it
    up = next(s for s in status["bench-broken"]["steps"] if s["name"] == "up")
    outcome = json.loads((results / "e2e" / "bench-broken" / "up.outcome.json").read_text())
    assert outcome["error_type"] == "ServerDied" and up["detail"] == f"exit 2: {outcome['error']}"
    verify = json.loads((results / "e2e" / "bench-two-slots" / "verify.json").read_text())
    assert verify["kind"] == "verify" and all(c["passed"] for c in verify["checks"] if c["kind"] == "server")
    section = (results / "REPORT.md").read_text().split("## bench-two-slots")[1].split("\n## ")[0]
    assert "### Verify" in section and all(c["name"] in section for c in verify["checks"])


def test_every_step_has_a_log_and_the_manifest_has_timings(finished_run):
    _, manifest, results, _ = finished_run
    for record in manifest["profiles"]:
        for step in record["steps"]:
            if step["status"] in ("done", "failed"):
                assert (results / "e2e" / step["log"]).is_file(), step
                assert step["seconds"] is not None and step["started_at"] and step["ended_at"]
    assert manifest["wall_seconds"] > 0 and manifest["overlap_seconds"] is not None


def test_pipelined_evaluation_overlaps_the_next_profile(finished_run):
    _, manifest, _, _ = finished_run
    first = next(p for p in manifest["profiles"] if p["profile"] == "bench-two-slots")
    evaluate = next(s for s in first["steps"] if s["name"] == "evaluate")
    assert evaluate["status"] == "done" and evaluate["background"] is True
    later_starts = [s["started_at"] for p in manifest["profiles"] if p["profile"] != "bench-two-slots"
                    for s in p["steps"] if s["started_at"]]
    assert any(start < evaluate["ended_at"] for start in later_starts if start > evaluate["started_at"])


def _numbers_from_results(results: Path, profile: str) -> dict[str, str]:
    packs = json.loads((results / "e2e" / profile / "packs.json").read_text())
    throughput = json.loads((results / "e2e" / profile / "throughput.json").read_text())
    passed = sum(p["passed"] for p in packs["packs"])
    total = sum(p["total"] for p in packs["packs"])
    evalplus = json.loads((results / "e2e" / profile / "evalplus" / "humaneval" / "humaneval.result.json").read_text())
    plus = sum(t["plus_pass"] for t in evalplus["tasks"])
    return {"packs": f"{passed}/{total}", "decode": f"{throughput['decode_tps']['median']:.1f}",
            "humaneval_plus": f"{plus}/{evalplus['n_tasks']} = {100 * plus / evalplus['n_tasks']:.1f}%"}


def test_markdown_report_carries_the_numbers_of_the_result_files(finished_run):
    _, _, results, _ = finished_run
    text = (results / "REPORT.md").read_text()
    for profile in ("bench-two-slots", "bench-one-slot"):
        numbers = _numbers_from_results(results, profile)
        row = next(line for line in text.splitlines() if line.startswith(f"| {profile} "))
        assert numbers["packs"] in row and numbers["decode"] in row, row
        section = text.split(f"## {profile}")[1].split("\n## ")[0]
        eval_row = next(line for line in section.splitlines() if line.startswith("| HumanEval+ "))
        assert re.search(rf"\|\s+{EVALPLUS_LIMIT}\s+\|", eval_row) and numbers["humaneval_plus"] in eval_row, eval_row
    assert "bench-broken" in text and "server did not start" in text
    assert "Published reference scores" in text and "Quality:" in text
    assert re.search(r"\d+/\d+ = \d+\.\d% \[\d+\.\d–\d+\.\d\]", text), "HumanEval+ with a Wilson interval"


def test_server_layers_land_in_their_result_files_and_the_report(finished_run):
    from harness.endpoint.soak import SoakResult
    from harness.endpoint.stress import StressResult
    from harness.endpoint.sweep import SweepResult
    from harness.endpoint.verify_full import VerifyFullResult

    _, manifest, results, _ = finished_run
    text = (results / "REPORT.md").read_text()
    for profile in ("bench-two-slots", "bench-one-slot"):
        record = next(p for p in manifest["profiles"] if p["profile"] == profile)
        steps = {s["name"]: s for s in record["steps"]}
        out = results / "e2e" / profile
        for layer, model in (("verify-full", VerifyFullResult), ("stress", StressResult), ("sweep", SweepResult),
                             ("soak", SoakResult)):
            assert steps[layer]["status"] == "done", steps[layer]
            model.model_validate_json((out / f"{layer}.json").read_text())
        section = text.split(f"## {profile}")[1].split("\n## ")[0]
        for heading in ("### Verify-full", "### Stress", "### Load sweep", "### Soak"):
            assert heading in section, heading
        sweep = SweepResult.model_validate_json((out / "sweep.json").read_text())
        first = sweep.concurrency_points[0]
        row = rf"\|\s*concurrency\s*\|\s*{first.concurrency} streams?\s*\|\s*{first.completed} / {first.errors}\s*\|" \
              rf"\s*{first.output_tps:.1f}\s*\|"
        assert re.search(row, section), section
        stress = StressResult.model_validate_json((out / "stress.json").read_text())
        assert f"found in {sum(c.passed for c in stress.grid)} of {len(stress.grid)} cells" in section


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (CI installs it: scripts/provision-test-tools.sh)")
def test_html_report_renders_in_headless_chromium(finished_run):
    _, _, results, tmp = finished_run
    html = results / "report.html"
    # no external assets (URLs in text, e.g. a verify check's detail, are fine)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html.read_text())
    screenshot = tmp / "report.png"
    chrome = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1600"]
    subprocess.run([*chrome, f"--screenshot={screenshot}", html.as_uri()], capture_output=True, timeout=120)
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000
    dom = subprocess.run([*chrome, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120).stdout
    for profile in ("bench-two-slots", "bench-one-slot"):
        numbers = _numbers_from_results(results, profile)
        assert numbers["packs"] in dom and numbers["decode"] in dom and numbers["humaneval_plus"] in dom
    assert dom.count("<svg") >= 2 and "bench-broken" in dom
    for profile in ("bench-two-slots", "bench-one-slot"):  # the layers' charts, drawn by the browser
        assert f'id="sweep-{profile}"' in dom and f'id="soak-{profile}-decode"' in dom
    assert dom.count('id="needle-grid') == 2


def test_kill_then_resume_redoes_nothing_and_loses_nothing(embedded_assets, tmp_path):
    image, models_dir = embedded_assets
    conf = _conf(tmp_path, image, models_dir)
    results = tmp_path / "results"
    argv = _all_bench(conf, results, "resume", "--only", "bench-one-slot", packs=RESUME_PACK)
    journal = results / "resume" / "bench-one-slot" / "packs.json.journal.jsonl"
    process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not (journal.is_file() and journal.read_text().count("\n") >= 2):
        time.sleep(0.1)  # header line + at least one finished scenario
    os.killpg(process.pid, signal.SIGKILL)  # the whole run, mid packs step
    process.wait()
    assert journal.is_file(), "the run never reached the packs step"
    before = journal.read_text().splitlines()
    assert 2 <= len(before) < 1 + 15, f"kill did not land mid-pack ({len(before) - 1} scenarios journalled)"
    # the server went down with the run (worst case): resume must bring it back
    subprocess.run(["docker", "rm", "-f", "bw-bench-one-slot-llama-server-1"], capture_output=True)

    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((results / "resume" / "manifest.json").read_text())["profiles"][0]
    assert record["status"] == "completed"
    out = results / "resume" / "bench-one-slot"
    assert (out / "env.log").read_text().count("$ ") == 1  # finished before the kill: not redone
    after = journal.read_text().splitlines()
    assert after[: len(before)] == before  # journalled replies kept, not re-requested
    packs = json.loads((out / "packs.json").read_text())
    ids = [s["scenario_id"] for p in packs["packs"] for s in p["scenarios"]]
    assert len(ids) == len(set(ids)) == 15
