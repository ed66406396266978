"""The report on a large run: a synthetic run directory of 1,000 scenarios (4 profiles on 2 rigs,
5 packs of 50 scenarios each, with conversations, reasoning, tool calls, checks and a few
very long replies), rendered to REPORT.md and report.html; prints the time to build and render,
the HTML size, and the time headless Chromium takes to open the page, beside its time to open
an empty page (its own start-up).

    .venv/bin/python scripts/perf_report.py [--scenarios 1000] [--keep DIR]

Nothing here asserts; the numbers are for people (and notes) to read.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from harness.endpoint.throughput import BenchSettings, Spread, ThroughputResult  # noqa: E402
from harness.files import write_text_atomic  # noqa: E402
from harness.overnight.manifest import (  # noqa: E402
    Manifest,
    ProfileRecord,
    RigFingerprint,
    StepRecord,
    StepStatus,
)
from harness.packs.runner import aggregate  # noqa: E402
from harness.packs.schema import (  # noqa: E402
    Check,
    Exchange,
    Reply,
    RunResult,
    Sampling,
    SamplingProvenance,
    Scenario,
    ScenarioResult,
    ThinkingState,
    TimeoutPolicy,
    ToolCallRecord,
    VerifierSpec,
)
from harness.report.build import build_report  # noqa: E402
from harness.report.render import write_reports  # noqa: E402

START = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
PROFILES = {"bench-a": ("local", 104.0), "bench-b": ("local", 61.5), "bench-c": ("rig2", 233.0),
            "bench-d": ("rig2", 180.2)}
PACKS = 5
WORDS = ("the quick brown fox jumps over a lazy dog while the model explains step by step why its answer "
         "is right and which tool it would call next <tag> & \"quotes\"").split()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _text(rng: random.Random, chars: int) -> str:
    """About `chars` characters of words, with markup characters among them (escaping costs bytes too)."""
    return " ".join(rng.choices(WORDS, k=chars // 4 + 1))[:chars]


def _scenario(rng: random.Random, pack: str, index: int) -> ScenarioResult:
    score = rng.choice([100.0, 100.0, 100.0, 70.0, 0.0])
    status = "pass" if score >= 85 else "partial" if score >= 60 else "fail"
    mode = "passed" if status == "pass" else rng.choice(["wrong_answer", "verifier_fail", "invalid_json"])
    long_reply = index % 97 == 0  # now and then a reply of tens of thousands of characters
    calls = [ToolCallRecord(turn=t + 1, name="lookup", arguments={"query": _text(rng, 60)},
                            result={"rows": [_text(rng, 40) for _ in range(3)]}) for t in range(index % 4)]
    scenario = Scenario(id=f"{pack}-s{index:03d}", category="synthetic",
                        messages=[{"role": "system", "content": _text(rng, 200)},
                                  {"role": "user", "content": _text(rng, 600)}],
                        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
                        verifier=VerifierSpec(type="exact"))
    reply = Reply(content=_text(rng, 40_000 if long_reply else 1_500), reasoning=_text(rng, 1_000 * (index % 2)),
                  content_source="content", finish_reason="stop", tool_calls=calls, turns=len(calls) + 1)
    checks = [Check(name=f"check {k}", ok=status == "pass" or k > 0, detail=_text(rng, 80)) for k in range(3)]
    return ScenarioResult(pack_id=pack, scenario_id=scenario.id, category="synthetic", score=score, status=status,
                          failure_mode=mode, detail="" if status == "pass" else _text(rng, 120), checks=checks,
                          reply=reply, exchanges=[Exchange(request={"model": "m"}, latency_ms=900.0)],
                          prompt_tokens=rng.randint(150, 400), completion_tokens=rng.randint(50, 900),
                          latency_ms=rng.uniform(300, 9000), budget_s=60, scenario=scenario)


def _packs(rng: random.Random, profile: str, per_pack: int) -> RunResult:
    packs = [aggregate(f"pack-{p}", "1.0.0", f"packs/pack-{p}", "benchwright",
                       [_scenario(rng, f"pack-{p}", i) for i in range(per_pack)]) for p in range(PACKS)]
    return RunResult(run_id="perf", started_at=START.isoformat(), finished_at=START.isoformat(),
                     harness_version="0.1.0", endpoint="http://127.0.0.1:18080", model="synthetic", profile=profile,
                     mode="scenario", concurrency=1, complete=True,
                     sampling=SamplingProvenance(canonical=True, source="canonical", params=Sampling(temperature=0)),
                     thinking=ThinkingState(requested=None, control="none"),
                     timeouts=TimeoutPolicy(measured_tps=100.0), packs=packs)


def _throughput(profile: str, decode_tps: float) -> ThroughputResult:
    return ThroughputResult(created_at=START.isoformat(), endpoint="http://127.0.0.1:18080", model="synthetic",
                            profile=profile, server_kind="llama.cpp", settings=BenchSettings(), ignore_eos_sent=True,
                            slots=1, slots_source="settings", n_ctx_per_slot=4096, runs=[],
                            ttft_s=Spread(n=5, median=0.05, min=0.04, max=0.06),
                            decode_tps=Spread(n=5, median=decode_tps, min=decode_tps, max=decode_tps),
                            wall_tps=None, stopped_early_runs=0, decode_na_runs=0, prompt_processing=[],
                            concurrency=[], vram_peak_mib=None, vram_note=None, load_time_s=None,
                            load_time_note=None)


def write_run(run_dir: Path, scenarios: int) -> None:
    """A finished run of `scenarios` scenarios over PROFILES x PACKS, with throughput and rig fingerprints."""
    rng = random.Random(16)
    per_pack = max(1, scenarios // (len(PROFILES) * PACKS))
    records = []
    for profile, (rig, decode) in PROFILES.items():
        out = run_dir / profile
        write_text_atomic(out / "packs.json", _packs(rng, profile, per_pack).model_dump_json())
        write_text_atomic(out / "throughput.json", _throughput(profile, decode).model_dump_json())
        steps = [StepRecord(name=name, status=StepStatus.done, seconds=1.0) for name in ("throughput", "packs")]
        records.append(ProfileRecord(profile=profile, rig=rig, status="completed", steps=steps))
    rigs = {"local": RigFingerprint(rig="local", engine_version="27.3.1", cpus=16, memory_bytes=64 * 2**30),
            "rig2": RigFingerprint(rig="rig2", endpoint="ssh://bench@rig2", engine_version="26.1.4", cpus=32,
                                   memory_bytes=128 * 2**30, gpus=["NVIDIA GeForce RTX 3090, 24576 MiB"])}
    manifest = Manifest(run_id=run_dir.name, config="/srv/bench/models.conf", options={}, created_at=START,
                        updated_at=START + timedelta(hours=1), profiles=records, rigs=rigs)
    write_text_atomic(run_dir / "manifest.json", manifest.model_dump_json(indent=1))


def _chromium_seconds(url: str, action: str, profile_dir: Path, repeats: int) -> float:
    """Median wall time of headless Chromium loading `url` and then doing `action` (--dump-dom: the DOM once
    loaded; --screenshot=PATH: laid out and painted)."""
    times = []
    for _ in range(repeats):
        started = time.monotonic()
        subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1200,1600", f"--user-data-dir={profile_dir}", action, url],
                       capture_output=True, timeout=300, check=True)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="Chromium loads per page (the median is printed)")
    parser.add_argument("--keep", type=Path, help="write the run and the reports here instead of a temporary dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="perf-report-") as tmp:
        root = args.keep or Path(tmp)
        run_dir = root / "results" / "perf-run"
        write_run(run_dir, args.scenarios)
        started = time.monotonic()
        report = build_report(run_dir, REPO_ROOT / "reference-scores.json")
        built = time.monotonic() - started
        markdown, page = write_reports(report, root / "out")
        rendered = time.monotonic() - started - built
        total = sum(len(s.scenarios) for p in report.profiles for s in p.scenarios)
        print(f"scenarios: {total} ({len(report.profiles)} profiles x {PACKS} packs)")
        print(f"build: {built:.2f} s; render both files: {rendered:.2f} s")
        print(f"report.html: {page.stat().st_size:,} bytes ({page.stat().st_size / 2**20:.2f} MiB); "
              f"REPORT.md: {markdown.stat().st_size:,} bytes")
        if CHROMIUM is None:
            print("chromium: not installed (scripts/provision-test-tools.sh installs it); open time not measured")
            return 0
        blank = root / "blank.html"
        blank.write_text("<!DOCTYPE html><title>blank</title>", encoding="utf-8")
        chrome_profile = root / "chromium-profile"
        _chromium_seconds(blank.as_uri(), "--dump-dom", chrome_profile, 1)  # a first start warms the disk caches
        for name, action in (("--dump-dom", "--dump-dom"), ("--screenshot", f"--screenshot={root / 'shot.png'}")):
            empty = _chromium_seconds(blank.as_uri(), action, chrome_profile, args.repeats)
            full = _chromium_seconds(page.as_uri(), action, chrome_profile, args.repeats)
            print(f"chromium --headless {name}, median of {args.repeats}: report.html {full:.2f} s, "
                  f"empty page {empty:.2f} s, so {full - empty:.2f} s for the report itself")
    return 0


if __name__ == "__main__":
    sys.exit(main())
