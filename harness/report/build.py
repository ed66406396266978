"""Filling the report view-model from a run directory — never from logs, today's models.conf or checkout.

A run directory holds ``manifest.json`` (steps, and what the run ran: harness commit, resolved
profiles, image ids, model checksums, recorded when the run started) and, per profile,
``verify.json`` (verify checks), ``throughput.json`` (throughput bench), ``packs.json``
(quality packs) and ``evalplus/<dataset>/`` (EvalPlus results). Each adapter reads one typed
result file; a missing file simply leaves its section out, and an unreadable one is reported
in the profile's status and reason instead of breaking the whole report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from harness.endpoint.throughput import ThroughputResult
from harness.endpoint.verify import VerifyResult
from harness.errors import HarnessError
from harness.evalplus.results import EvalRunResult
from harness.overnight.manifest import Manifest, ProfileProvenance, ProfileRecord, RunProvenance, read_manifest
from harness.packs.runner import read_result as read_packs_result
from harness.packs.schema import RunResult
from harness.packs.summary import quality_line
from harness.report.model import (
    NOT_RECORDED,
    AgentHealthRow,
    AgenticRow,
    EvalRow,
    Interval,
    PackRow,
    ProfileReport,
    ReferenceRow,
    Report,
    ThroughputView,
    VerifyRow,
)
from harness.stats import wilson_interval

RESULTS_UNREADABLE = "results unreadable"  # the status of a profile that ended well but whose results do not read
# Resolved-profile keys the provenance table shows in its own rows; every other key goes in "other profile keys".
_SHOWN_KEYS = {"id", "source", "NAME", "IMAGE", "MODEL", "MODELS_DIR", "CTX_SIZE", "N_GPU_LAYERS", "PARALLEL",
               "EXTRA_ARGS", "GPUS"}


def interval(k: int, n: int) -> Interval:
    """k/n with its Wilson 95% interval, in percent."""
    low, high = wilson_interval(k, n) if n else (0.0, 0.0)
    return Interval(k=k, n=n, pct=100 * k / n if n else 0.0, low=100 * low, high=100 * high)


def throughput_view(path: Path) -> ThroughputView:
    result = ThroughputResult.model_validate_json(path.read_text(encoding="utf-8"))
    pp = {}
    for length in result.prompt_processing:
        label = f"~{length.target_tokens} prompt tokens ({length.pp_source})"
        pp[label] = length.pp_tps.median if length.pp_tps else None
    return ThroughputView(
        ttft_ms=result.ttft_s.median * 1000 if result.ttft_s else None,
        decode_tps=result.decode_tps.median if result.decode_tps else None,
        wall_tps=result.wall_tps.median if result.wall_tps else None,
        pp_tps=pp,
        concurrency_tps={str(level.streams): level.aggregate_tps for level in result.concurrency},
        early_stops=result.stopped_early_runs, runs=len(result.runs),
        load_s=result.load_time_s, vram_peak_mib=result.vram_peak_mib,
        vram_note=result.vram_note or "", notes=result.notes)


def pack_rows(result: RunResult) -> list[PackRow]:
    rows = []
    for pack in result.packs:
        status = "complete" if pack.infra_failures == 0 else f"{pack.infra_failures} infra failures"
        judged = sum(s.scenario.verifier.type == "rubric" for s in pack.scenarios)
        if judged:
            status += f" · {judged} judged"
        rows.append(PackRow(pack=pack.pack_id, version=pack.version, passed=interval(pack.passed, pack.total),
                            mean_score=pack.mean_score,
                            p50_s=pack.p50_latency_ms / 1000 if pack.p50_latency_ms is not None else None,
                            p95_s=pack.p95_latency_ms / 1000 if pack.p95_latency_ms is not None else None,
                            status=status, judged=judged))
    return rows


def judge_line(result: RunResult) -> str:
    """Who judged the rubric scenarios, and how far to trust it (its calibration)."""
    judge = result.judge
    if judge is None or not any(s.scenario.verifier.type == "rubric" for p in result.packs for s in p.scenarios):
        return ""
    who = f"{judge.model}" + (f" (profile {judge.profile})" if judge.profile else "")
    cal = judge.calibration
    if cal is None or not cal.tasks:
        trust = "not calibrated"
    else:
        rho = "n/a" if cal.rank_correlation is None else f"{cal.rank_correlation:+.2f}"
        trust = (f"calibration: strong reference above weak in {cal.separated}/{cal.tasks} task(s), "
                 f"rank correlation {rho}" + (f", {cal.errors} judge error(s)" if cal.errors else ""))
    return f"Judged scores come from {who}, an LLM's judgement, not a check; {trust}."


def agentic_rows(profile: str, result: RunResult, prices: tuple[float | None, float | None],
                 ttft_ms: float | None) -> list[AgenticRow]:
    """The agent packs of one profile: quality, time per turn, tokens and (where priced) cost."""
    rows = []
    for pack in result.packs:
        if pack.agent_health is None or not pack.scenarios:
            continue
        exchanges = [e.latency_ms for s in pack.scenarios for e in s.exchanges if e.error is None]
        prompt = sum(s.prompt_tokens for s in pack.scenarios)
        completion = sum(s.completion_tokens for s in pack.scenarios)
        cost = None
        if prices[0] is not None and prices[1] is not None:
            cost = round((prompt * prices[0] + completion * prices[1]) / 1_000_000, 4)
        rows.append(AgenticRow(profile=profile, pack=pack.pack_id, passed=interval(pack.passed, pack.total),
                               mean_score=pack.mean_score,
                               turn_s=round(sum(exchanges) / len(exchanges) / 1000, 2) if exchanges else None,
                               ttft_ms=ttft_ms, tokens_per_scenario=round((prompt + completion) / len(pack.scenarios)),
                               cost_usd=cost))
    return rows


def _prices(record: ProfileRecord) -> tuple[float | None, float | None]:
    resolved = record.provenance.resolved if record.provenance is not None else {}

    def price(key: str) -> float | None:
        value = resolved.get(key)
        return float(value) if isinstance(value, (int, float)) else None
    return price("PRICE_IN_PER_MTOK"), price("PRICE_OUT_PER_MTOK")


DATASET_LABELS = {"humaneval": "HumanEval+", "humaneval-mini": "HumanEval+ Mini",
                  "humaneval-noextreme": "HumanEval+ NoExtreme", "mbpp": "MBPP+", "mbpp-noextreme": "MBPP+ NoExtreme"}


def agent_health_rows(result: RunResult) -> list[AgentHealthRow]:
    """One row per sandboxed pack: turns to solve, hallucinations, schema errors, loops, refusals."""
    return [AgentHealthRow(pack=p.pack_id, episodes=h.episodes, mean_turns_to_solve=h.mean_turns_to_solve,
                           hallucination_rate=h.hallucination_rate, schema_error_rate=h.schema_error_rate,
                           loop_detections=h.loop_detections, refusals_of_safe_tasks=h.refusals_of_safe_tasks,
                           false_premises=h.false_premises, sycophancy_rate=h.sycophancy_rate,
                           sandbox_overhead_s=h.mean_sandbox_overhead_ms / 1000
                           if h.mean_sandbox_overhead_ms is not None else None)
            for p in result.packs if (h := p.agent_health) is not None]


def eval_row(result: EvalRunResult) -> EvalRow:
    """One dataset's pass@1 (base and plus tests) with intervals and the answer counts."""
    base = sum(t.base_pass for t in result.tasks)
    plus = sum(t.plus_pass for t in result.tasks)
    return EvalRow(dataset=result.dataset, label=DATASET_LABELS.get(result.dataset, result.dataset),
                   tasks=result.n_tasks, base=interval(base, result.n_tasks), plus=interval(plus, result.n_tasks),
                   empty=result.counts.get("empty", 0), truncated=result.counts.get("truncated", 0),
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


def _recorded(value: object, note: str = "") -> str:
    if value not in (None, ""):
        return str(value)
    return f"{NOT_RECORDED} ({note})" if note else NOT_RECORDED


def _profile_facts(record: ProfileProvenance) -> dict[str, str]:
    """The provenance rows of one profile, from what the manifest recorded when the run started."""
    resolved = record.resolved
    facts: dict[str, str] = {}
    if record.is_api:
        facts["served by"] = "a hosted API (no image or model file of ours)"
    else:
        facts["image"] = _recorded(record.image)
        digests = f" ({', '.join(record.image_digests)})" if record.image_digests else ""
        facts["image id"] = _recorded(record.image_id, record.image_note) + digests
        if record.image_id and record.image_note:
            facts["image id"] += f"; {record.image_note}"
        size = f" ({record.model_bytes / 2**20:,.1f} MiB)" if record.model_bytes is not None else ""
        facts["model file"] = _recorded(record.model_path) + size
        how = record.model_sha256_source + (f" in {record.model_sha256_seconds:.1f} s"
                                            if record.model_sha256_seconds is not None else "")
        facts["model sha256"] = (f"{record.model_sha256} ({how})" if record.model_sha256
                                 else _recorded(None, record.model_note))
        if "CTX_SIZE" in resolved:
            flags = (f"--ctx-size {resolved['CTX_SIZE']} --n-gpu-layers {resolved.get('N_GPU_LAYERS', 0)} "
                     f"--parallel {resolved.get('PARALLEL', 1)} {resolved.get('EXTRA_ARGS') or ''}")
            facts["server flags"] = flags.strip()
        facts["gpus"] = str(resolved.get("GPUS", NOT_RECORDED))
        if record.compose_env is not None:
            facts["compose .env"] = f"recorded in manifest.json ({len(record.compose_env.splitlines())} lines)"
    others = [f"{key}={value}" for key, value in resolved.items() if key not in _SHOWN_KEYS and value not in (None, "")]
    if others:
        facts["other profile keys"] = ", ".join(others)
    facts["models.conf"] = str(resolved.get("source", NOT_RECORDED))
    facts["recorded at"] = f"{record.recorded_at:%Y-%m-%d %H:%M:%S UTC}"
    return facts


def _provenance(record: ProfileRecord, packs: RunResult | None) -> dict[str, str]:
    if record.provenance is None:
        facts = {"profile as run": f"{NOT_RECORDED} (this run predates provenance records)"}
    else:
        facts = _profile_facts(record.provenance)
    if packs is not None:
        sampling = packs.sampling
        facts["sampling"] = ("canonical (temperature 0)" if sampling.canonical
                             else f"NON-CANONICAL ({sampling.source}): {sampling.params.model_dump(exclude_none=True)}")
        facts["thinking"] = f"{packs.thinking.requested} via {packs.thinking.control}"
        facts["pack versions"] = ", ".join(f"{p.pack_id} {p.version}" for p in packs.packs)
    return facts


def _commit(run: RunProvenance) -> str:
    if run.git_commit is None:
        return _recorded(None, run.git_note)
    return run.git_commit + (" (dirty tree)" if run.git_dirty else "")


def verify_rows(path: Path) -> list[VerifyRow]:
    """The verify check list of a profile, from its verify.json."""
    result = VerifyResult.model_validate_json(path.read_text(encoding="utf-8"))
    return [VerifyRow(kind=c.kind, check=c.name, passed=c.passed, detail=c.detail) for c in result.checks]


def load_references(path: Path) -> tuple[list[ReferenceRow], str]:
    """Published reference scores with their source and date, as committed in reference-scores.json."""
    if not path.is_file():
        return [], f"{path.name} not found: no published reference scores shown"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: unreadable reference scores ({_first_line(exc)})") from None
    sources = data.get("metadata", {}).get("sources", {})
    rows = [ReferenceRow(model=name, humaneval_plus=entry.get("humaneval_plus"), mbpp_plus=entry.get("mbpp_plus"),
                         source=sources.get(entry.get("source", ""), entry.get("source", "")))
            for name, entry in data.get("models", {}).items()]
    rows.sort(key=lambda row: -(row.humaneval_plus or 0))
    note = data.get("metadata", {}).get("note", "")
    return rows, f"Published pass@1 (greedy) figures, for comparison only. {note}".strip()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _missing_results(record: ProfileRecord, out: Path) -> list[str]:
    """Result files a finished step should have left and did not."""
    done = {s.name for s in record.steps if s.status.value == "done"}
    expected = {"throughput": out / "throughput.json", "packs": out / "packs.json"}
    missing = [f"{step} step done but {path.name} is missing" for step, path in expected.items()
               if step in done and not path.is_file()]
    if "evaluate" in done and not any(out.glob("evalplus/*/*.result.json")):
        missing.append("evaluate step done but no evalplus/<dataset>/<dataset>.result.json")
    return missing


def profile_report(record: ProfileRecord, run_dir: Path) -> ProfileReport:
    """Everything the report says about one profile of a run."""
    out = run_dir / record.profile
    report = ProfileReport(profile=record.profile, status=record.status, reason=record.reason,
                           steps=[(s.name, s.status.value, s.seconds, s.detail) for s in record.steps])
    if record.provenance is not None:
        report.name = str(record.provenance.resolved.get("NAME", ""))
    problems = _missing_results(record, out)
    if (out / "verify.json").is_file():
        try:
            report.verify = verify_rows(out / "verify.json")
        except (OSError, ValueError) as exc:
            problems.append(f"verify.json unreadable: {_first_line(exc)}")
    packs: RunResult | None = None
    if (out / "packs.json").is_file():
        try:
            packs = read_packs_result(out / "packs.json")
            report.packs = pack_rows(packs)
            report.failure_breakdown = _failure_breakdown(packs)
            report.agent_health = agent_health_rows(packs)
            report.pack_notes = list(packs.notes)
            report.judge_line = judge_line(packs)
            report.quality_line = quality_line(packs)
        except (HarnessError, ValidationError, ValueError) as exc:
            problems.append(f"packs.json unreadable: {_first_line(exc)}")
        else:
            if not packs.complete:
                problems.append("packs.json: not every selected scenario has a result")
    try:
        report.evalplus = [eval_row(result) for result in eval_results(out)]
    except (OSError, ValueError) as exc:
        problems.append(f"EvalPlus result unreadable: {_first_line(exc)}")
    if report.evalplus:
        coding = evalplus_quality(report.evalplus)
        report.quality_line = f"{report.quality_line} · {coding}" if report.quality_line else f"Quality: {coding}"
    if (out / "throughput.json").is_file():
        try:
            report.throughput = throughput_view(out / "throughput.json")
        except (OSError, ValueError) as exc:
            problems.append(f"throughput.json unreadable: {_first_line(exc)}")
    up = next((s for s in record.steps if s.name == "up" and s.seconds is not None), None)
    if report.throughput is not None and report.throughput.load_s is None and up is not None:
        report.throughput.load_s = up.seconds  # the up step is exactly "from up to healthy"
    report.provenance = _provenance(record, packs)
    if packs is not None:
        report.agentic = agentic_rows(record.profile, packs, _prices(record),
                                      report.throughput.ttft_ms if report.throughput else None)
    if problems:
        report.reason = "; ".join(filter(None, [report.reason, *problems]))
        if report.status == "completed":  # never shown as completed without saying its results do not read
            report.status = RESULTS_UNREADABLE
    return report


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M UTC}"


def build_report(run_dir: Path, references_path: Path) -> Report:
    """The whole report of one run directory; reads nothing outside it but the published reference scores."""
    manifest: Manifest = read_manifest(run_dir / "manifest.json")
    references, note = load_references(references_path)
    report = Report(
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), run_id=manifest.run_id,
        started_at=_utc(manifest.created_at), resumed_at=[_utc(moment) for moment in manifest.resumed_at],
        warnings=list(manifest.warnings), wall_seconds=manifest.wall_seconds,
        overlap_seconds=manifest.overlap_seconds, pipelined=manifest.pipelined,
        profiles=[profile_report(record, run_dir) for record in manifest.profiles],
        references=references, reference_note=note)
    if manifest.provenance is not None:
        run = manifest.provenance
        report.harness_version, report.git_commit = run.harness_version, _commit(run)
        report.python_version, report.hostname = run.python_version, run.hostname
    return report
