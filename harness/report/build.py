"""Filling the report view-model from a run's result files — never from logs.

A run directory holds ``manifest.json`` and, per profile, ``throughput.json`` (throughput
bench), ``packs.json`` (quality packs) and ``evalplus/<dataset>/`` (EvalPlus results). Each
adapter reads one typed result file; a missing file simply leaves its section out, and an
unreadable one is reported in the profile's reason instead of breaking the whole report.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from harness import __version__
from harness.errors import HarnessError
from harness.evalplus.results import EvalRunResult
from harness.overnight.manifest import Manifest
from harness.packs.summary import quality_line
from harness.packs.runner import read_result as read_packs_result
from harness.packs.schema import RunResult
from harness.serving.profiles import load_profiles
from harness.report.model import (EvalRow, Interval, PackRow, ProfileReport, ReferenceRow, Report, ThroughputView)
from harness.stats import wilson_interval
from harness.endpoint.throughput import ThroughputResult


def interval(k: int, n: int) -> Interval:
    """k/n with its Wilson 95% interval, in percent."""
    low, high = wilson_interval(k, n) if n else (0.0, 0.0)
    return Interval(k=k, n=n, pct=100 * k / n if n else 0.0, low=100 * low, high=100 * high)


def throughput_view(path: Path) -> ThroughputView:
    result = ThroughputResult.model_validate_json(path.read_text(encoding="utf-8"))
    pp = {}
    for length in result.prompt_processing:
        pp[f"~{length.target_tokens} prompt tokens ({length.pp_source})"] = length.pp_tps.median if length.pp_tps else None
    return ThroughputView(
        ttft_ms=result.ttft_s.median * 1000 if result.ttft_s else None,
        decode_tps=result.decode_tps.median if result.decode_tps else None,
        wall_tps=result.wall_tps.median if result.wall_tps else None,
        pp_tps=pp,
        concurrency_tps={str(level.streams): level.aggregate_tps for level in result.concurrency},
        early_stops=result.stopped_early_runs, runs=len(result.runs),
        load_s=result.load_time_s, vram_peak_mib=result.vram_peak_mib,
        vram_note=result.vram_note or "")


def pack_rows(result: RunResult) -> list[PackRow]:
    rows = []
    for pack in result.packs:
        status = "complete" if pack.infra_failures == 0 else f"{pack.infra_failures} infra failures"
        rows.append(PackRow(pack=pack.pack_id, version=pack.version, passed=interval(pack.passed, pack.total),
                            mean_score=pack.mean_score,
                            p50_s=pack.p50_latency_ms / 1000 if pack.p50_latency_ms is not None else None,
                            p95_s=pack.p95_latency_ms / 1000 if pack.p95_latency_ms is not None else None,
                            status=status))
    return rows


DATASET_LABELS = {"humaneval": "HumanEval+", "humaneval-mini": "HumanEval+ Mini",
                  "humaneval-noextreme": "HumanEval+ NoExtreme", "mbpp": "MBPP+", "mbpp-noextreme": "MBPP+ NoExtreme"}


def eval_row(result: EvalRunResult) -> EvalRow:
    """One dataset's pass@1 (base and plus tests) with intervals and the answer counts."""
    base = sum(t.base_pass for t in result.tasks)
    plus = sum(t.plus_pass for t in result.tasks)
    return EvalRow(dataset=result.dataset, label=DATASET_LABELS.get(result.dataset, result.dataset), tasks=result.n_tasks, base=interval(base, result.n_tasks),
                   plus=interval(plus, result.n_tasks), empty=result.counts.get("empty", 0),
                   truncated=result.counts.get("truncated", 0),
                   recovered=result.counts.get("recovered_from_reasoning", 0),
                   min_time_limit_s=result.min_time_limit_s)


def eval_results(profile_dir: Path) -> list[EvalRunResult]:
    """Every `evalplus/<dataset>/<dataset>.result.json` of a profile, in dataset order."""
    return [EvalRunResult.model_validate_json(path.read_text(encoding="utf-8"))
            for path in sorted(profile_dir.glob("evalplus/*/*.result.json"))]


def evalplus_quality(rows: list[EvalRow]) -> str:
    """`HumanEval+ 12.2% (base 14.0%, n=164)` parts for the paste-ready Quality line."""
    return " · ".join(f"{r.label} {r.plus.pct:.1f}% (base {r.base.pct:.1f}%, n={r.tasks})" for r in rows)


def _failure_breakdown(result: RunResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pack in result.packs:
        for mode, count in pack.failure_counts.items():
            if mode != "passed" and count:
                counts[mode] = counts.get(mode, 0) + count
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def _model_checksum(model_path: Path) -> str:
    recorded = model_path.with_name(model_path.name + ".sha256")
    if recorded.is_file():
        return recorded.read_text(encoding="utf-8").split()[0]
    return "not recorded (no <model>.sha256 beside the file)"


def _provenance(profile_id: str, config: Path, run_dir: Path, packs: RunResult | None) -> dict[str, str]:
    facts: dict[str, str] = {}
    try:
        profile = load_profiles(config).get(profile_id)
    except HarnessError:
        profile = None
    if profile is not None:
        facts["image"] = profile.image
        facts["model file"] = str(profile.model_path)
        facts["model sha256"] = _model_checksum(profile.model_path)
        facts["server flags"] = (f"--ctx-size {profile.ctx_size} --n-gpu-layers {profile.n_gpu_layers} "
                                 f"--parallel {profile.parallel} {profile.extra_args}").strip()
        facts["gpus"] = profile.gpus
    env_file = run_dir / profile_id / "compose.env"
    if env_file.is_file():
        facts["compose .env"] = str(env_file)
    if packs is not None:
        sampling = packs.sampling
        facts["sampling"] = ("canonical (temperature 0)" if sampling.canonical
                             else f"NON-CANONICAL ({sampling.source}): {sampling.params.model_dump(exclude_none=True)}")
        facts["thinking"] = f"{packs.thinking.requested} via {packs.thinking.control}"
        facts["pack versions"] = ", ".join(f"{p.pack_id} {p.version}" for p in packs.packs)
    return facts


def _git_commit(repo_root: Path) -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo_root, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if done.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_root,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return done.stdout.strip() + ("-dirty" if dirty else "")


def load_references(path: Path) -> tuple[list[ReferenceRow], str]:
    """Published reference scores with their source and date, as committed in reference-scores.json."""
    if not path.is_file():
        return [], f"{path.name} not found: no published reference scores shown"
    data = json.loads(path.read_text(encoding="utf-8"))
    sources = data.get("metadata", {}).get("sources", {})
    rows = [ReferenceRow(model=name, humaneval_plus=entry.get("humaneval_plus"), mbpp_plus=entry.get("mbpp_plus"),
                         source=sources.get(entry.get("source", ""), entry.get("source", "")))
            for name, entry in data.get("models", {}).items()]
    rows.sort(key=lambda row: -(row.humaneval_plus or 0))
    note = data.get("metadata", {}).get("note", "")
    return rows, f"Published pass@1 (greedy) figures, for comparison only. {note}".strip()


def profile_report(record, run_dir: Path, config: Path) -> ProfileReport:
    """Everything the report says about one profile of a run."""
    out = run_dir / record.profile
    report = ProfileReport(profile=record.profile, status=record.status, reason=record.reason,
                           steps=[(s.name, s.status.value, s.seconds) for s in record.steps])
    problems = []
    packs: RunResult | None = None
    if (out / "packs.json").is_file():
        try:
            packs = read_packs_result(out / "packs.json")
            report.packs = pack_rows(packs)
            report.failure_breakdown = _failure_breakdown(packs)
            report.quality_line = quality_line(packs)
        except (HarnessError, ValidationError, ValueError) as exc:
            problems.append(f"packs.json unreadable: {str(exc).splitlines()[0]}")
    try:
        report.evalplus = [eval_row(result) for result in eval_results(out)]
    except (ValidationError, ValueError) as exc:
        problems.append(f"EvalPlus result unreadable: {str(exc).splitlines()[0]}")
    if report.evalplus:
        coding = evalplus_quality(report.evalplus)
        report.quality_line = f"{report.quality_line} · {coding}" if report.quality_line else f"Quality: {coding}"
    if (out / "throughput.json").is_file():
        try:
            report.throughput = throughput_view(out / "throughput.json")
        except (ValidationError, ValueError) as exc:
            problems.append(f"throughput.json unreadable: {str(exc).splitlines()[0]}")
    up = next((s for s in record.steps if s.name == "up" and s.seconds is not None), None)
    if report.throughput is not None and report.throughput.load_s is None and up is not None:
        report.throughput.load_s = up.seconds  # the up step is exactly "from up to healthy"
    try:
        profile = load_profiles(config).get(record.profile)
        report.name = profile.name if profile else ""
    except HarnessError:
        pass
    report.provenance = _provenance(record.profile, config, run_dir, packs)
    if problems:
        report.reason = "; ".join(filter(None, [report.reason, *problems]))
    return report


def build_report(run_dir: Path, repo_root: Path, references_path: Path) -> Report:
    """The whole report of one run directory."""
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise HarnessError(f"{manifest_path}: no manifest (is {run_dir} a run directory from all-bench?)")
    manifest = Manifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    config = Path(manifest.config)
    references, note = load_references(references_path)
    return Report(
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), run_id=manifest.run_id,
        harness_version=__version__, git_commit=_git_commit(repo_root), wall_seconds=manifest.wall_seconds,
        overlap_seconds=manifest.overlap_seconds, pipelined=manifest.pipelined,
        profiles=[profile_report(record, run_dir, config) for record in manifest.profiles],
        references=references, reference_note=note)
