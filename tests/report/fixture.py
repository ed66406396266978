"""Where the committed hand-made run directory is, and how tests read its result files back."""

from __future__ import annotations

import json
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
