"""Two rigs for real: this machine's engine and a second Docker engine started beside it (its own
socket, data root and bridge, registered as a Docker context). all-bench runs one profile on each
at the same time, survives the second engine being killed mid-run, and a resume finishes the
lost rig's profile alone. The real embedded llama-server answers on both rigs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from harness.serving.images import SMOLLM2_MODEL_FILE
from tests.conftest import REPO_ROOT, free_port

pytestmark = [pytest.mark.docker, pytest.mark.server]

# 8 scenarios, one at a time on a 1-slot server: long enough to kill the rig mid-pack, short enough for make test
SCENARIOS = ("words-exact-12", "bullets-three-fruits", "lowercase-only", "uppercase-warning", "headers-report",
             "order-planets", "required-phrases", "numbered-steps")
PACK = ",".join(f"instructfollow-15/{s}" for s in SCENARIOS)


def _conf(tmp: Path, image: str, models_dir: Path, context: str) -> Path:
    text = f"""
[DEFAULT]
IMAGE={image}
MODELS_DIR={models_dir.resolve()}
MODEL={SMOLLM2_MODEL_FILE}
EXTRA_ARGS=--jinja --threads 1 --no-webui
HEALTH_TIMEOUT_S=120
MAX_TOKENS=128
CTX_SIZE=2048
PARALLEL=1

[bench-here]
NAME=SmolLM2 on this machine
PORT={free_port()}

[bench-there]
NAME=SmolLM2 on rig two
DOCKER_CONTEXT={context}
PORT={free_port()}
"""
    path = tmp / "models.conf"
    path.write_text(text)
    return path


def _all_bench(conf: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "harness", "all-bench", "--config", str(conf), "--results-dir", str(results),
            "--run-id", "rigs", "--packs", PACK, "--datasets", "", "--throughput-runs", "0", "--layers", "none"]


def _manifest(results: Path) -> dict:
    try:
        return json.loads((results / "rigs" / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _step(record: dict, name: str) -> dict:
    return next(step for step in record["steps"] if step["name"] == name)


def _span(record: dict) -> tuple[datetime, datetime]:
    steps = [s for s in record["steps"] if s["started_at"] and s["ended_at"]]
    return (min(datetime.fromisoformat(s["started_at"]) for s in steps),
            max(datetime.fromisoformat(s["ended_at"]) for s in steps))


def test_two_rigs_in_parallel_one_lost_mid_run_then_resumed(embedded_assets, second_engine, tmp_path):
    image, models_dir = embedded_assets
    conf = _conf(tmp_path, image, models_dir, second_engine.context)
    results = tmp_path / "results"
    killed_at: list[float] = []

    def kill_rig_two_mid_pack() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            there = next((p for p in _manifest(results).get("profiles", []) if p["profile"] == "bench-there"), None)
            journal = tmp_path / "results" / "rigs" / "bench-there" / "packs.json.journal.jsonl"
            if there and _step(there, "packs")["status"] == "running" and journal.is_file() and \
                    len(journal.read_text().splitlines()) >= 3:
                second_engine.kill()
                killed_at.append(time.monotonic())
                return
            time.sleep(0.5)

    watcher = threading.Thread(target=kill_rig_two_mid_pack, daemon=True)
    watcher.start()
    started = time.monotonic()
    done = subprocess.run(_all_bench(conf, results), capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    wall = time.monotonic() - started
    watcher.join(timeout=5)
    assert killed_at, f"the rig was never killed mid-pack:\n{done.stderr[-3000:]}"
    manifest = _manifest(results)
    status = {p["profile"]: p for p in manifest["profiles"]}
    here, there = status["bench-here"], status["bench-there"]

    # the lost rig is recorded with its reason; the other rig finished its profile
    assert done.returncode == 1
    assert here["status"] == "completed" and here["rig"] == "local", here
    assert there["status"] == "failed" and there["rig"] == second_engine.context
    assert "server died during packs" in there["reason"] and "engine" in there["reason"], there["reason"]
    assert _step(there, "packs")["status"] == "failed"  # its journal keeps the scenarios it finished
    # both rigs ran at once: their spans overlap for most of the shorter one
    (h0, h1), (t0, t1) = _span(here), _span(there)
    overlap = (min(h1, t1) - max(h0, t0)).total_seconds()
    assert overlap > 0.5 * min((h1 - h0).total_seconds(), (t1 - t0).total_seconds()), (overlap, here, there)
    assert wall < sum(manifest["rig_seconds"].values()), (wall, manifest["rig_seconds"])
    assert set(manifest["rigs"]) == {"local", second_engine.context}
    rig_two = manifest["rigs"][second_engine.context]
    assert rig_two["reachable"] and rig_two["endpoint"] == second_engine.host and rig_two["cpus"] >= 1
    print(f"parallel rigs: wall {wall:.0f}s, steps per rig {manifest['rig_seconds']}")  # for the note

    # resume with the rig back: only the lost profile runs, on its rig, and finishes
    second_engine.restart()
    resumed = subprocess.run(_all_bench(conf, results), capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "[bench-here] already completed in this run; skipped" in resumed.stderr
    manifest = _manifest(results)
    status = {p["profile"]: p for p in manifest["profiles"]}
    assert status["bench-there"]["status"] == "completed", status["bench-there"]
    packs = json.loads((results / "rigs" / "bench-there" / "packs.json").read_text())
    assert [len(p["scenarios"]) for p in packs["packs"]] == [len(SCENARIOS)]
    report = (results / "REPORT.md").read_text()
    assert second_engine.context in report and "local" in report
    # nothing of this run left behind on either rig (other tests' servers may run beside it)
    for engine in (["docker"], ["docker", "--context", second_engine.context]):
        for profile in ("bench-here", "bench-there"):
            left = subprocess.run([*engine, "ps", "-aq", "--filter", f"label=benchwright.profile={profile}"],
                                  capture_output=True, text=True, check=True).stdout.split()
            assert left == [], (engine, profile, left)
