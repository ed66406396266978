"""Where the committed hand-made run directory is, and how tests read its result files back."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from tests.conftest import REPO_ROOT

RUN_FIXTURE = REPO_ROOT / "tests" / "data" / "run-fixture"
PROFILE = "bench-smollm2"  # completed: verify, throughput, packs and HumanEval+ results
BROKEN = "bench-broken"  # its server never started: no result files


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def expected_numbers(run_dir: Path) -> dict[str, str]:
    """The figures the report must show for PROFILE, computed here from its result files."""
    out = run_dir / PROFILE
    packs, throughput = read_json(out / "packs.json"), read_json(out / "throughput.json")
    evalplus = read_json(out / "evalplus" / "humaneval" / "humaneval.result.json")
    n = evalplus["n_tasks"]
    base = sum(t["base_pass"] for t in evalplus["tasks"])
    plus = sum(t["plus_pass"] for t in evalplus["tasks"])
    return {
        "packs": f"{sum(p['passed'] for p in packs['packs'])}/{sum(p['total'] for p in packs['packs'])}",
        "decode": f"{throughput['decode_tps']['median']:.1f}",
        "ttft": f"{throughput['ttft_s']['median'] * 1000:.0f}",
        "wall": f"{throughput['wall_tps']['median']:.1f}",
        "humaneval_base": f"{base}/{n} = {100 * base / n:.1f}%",
        "humaneval_plus": f"{plus}/{n} = {100 * plus / n:.1f}%",
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def set_pack_passes(packs_path: Path, passed: int) -> int:
    """Make the first `passed` scenarios of the packs result pass and the rest fail; returns the total."""
    data = read_json(packs_path)
    index = 0
    for pack in data["packs"]:
        for scenario in pack["scenarios"]:
            ok = index < passed
            scenario.update(score=100.0 if ok else 0.0, status="pass" if ok else "fail",
                            failure_mode="passed" if ok else "wrong_answer")
            index += 1
        pack["passed"] = sum(s["status"] == "pass" for s in pack["scenarios"])
        pack["partial"] = 0
    write_json(packs_path, data)
    return index


def add_profile(run_dir: Path, profile: str, *, rig: str = "local", decode_tps: float | None = None,
                passed: int | None = None, throughput: bool = True) -> None:
    """Another completed profile: PROFILE's result files under a new name, on `rig`, with its decode rate
    and pack passes set (None keeps PROFILE's); without `throughput`, as if that step failed."""
    shutil.copytree(run_dir / PROFILE, run_dir / profile)
    manifest = read_json(run_dir / "manifest.json")
    record = copy.deepcopy(next(p for p in manifest["profiles"] if p["profile"] == PROFILE))
    record.update(profile=profile, rig=rig)
    if not throughput:
        (run_dir / profile / "throughput.json").unlink()
        step = next(s for s in record["steps"] if s["name"] == "throughput")
        step.update(status="failed", detail="exit 2: endpoint unreachable: connection refused")
    manifest["profiles"].append(record)
    write_json(run_dir / "manifest.json", manifest)
    if decode_tps is not None and throughput:
        data = read_json(run_dir / profile / "throughput.json")
        data["decode_tps"]["median"] = decode_tps
        write_json(run_dir / profile / "throughput.json", data)
    if passed is not None:
        set_pack_passes(run_dir / profile / "packs.json", passed)


def set_rig(run_dir: Path, profile: str, rig: str) -> None:
    manifest = read_json(run_dir / "manifest.json")
    next(p for p in manifest["profiles"] if p["profile"] == profile)["rig"] = rig
    write_json(run_dir / "manifest.json", manifest)
