"""Filling the report view-model from a run directory — never from logs, today's models.conf or checkout.

A run directory holds ``manifest.json`` (steps, and what the run ran: harness commit, resolved
profiles, image ids, model checksums, recorded when the run started) and, per profile,
``verify.json`` (verify checks), ``throughput.json`` (throughput bench), ``packs.json``
(quality packs), ``evalplus/<dataset>/`` (EvalPlus results) and the server layers'
``verify-full.json``, ``stress.json``, ``sweep.json``, ``soak.json`` (read by ``layers.py``).
Each adapter reads one typed result file; a missing file simply leaves its section out, and an
unreadable one is reported in the profile's status and reason instead of breaking the whole report.

Every cross-profile figure names its rig (where the profile's server ran, from the manifest),
and no figure pools profiles: a point of the quality-versus-speed chart is one profile on one rig.
Model text (prompts, replies, reasoning, tool calls) reaches the view-model cut to a bounded
length, with the whole length kept so the page can say what it left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.endpoint.telemetry import gpu_lines
from harness.endpoint.throughput import PromptLength, ThroughputResult, unstable_figures
from harness.endpoint.verify import VerifyResult
from harness.errors import HarnessError
from harness.evalplus.results import EvalRunResult
from harness.overnight.manifest import (
    Manifest,
    ProfileProvenance,
    ProfileRecord,
    RigFingerprint,
    RunProvenance,
    read_manifest,
)
from harness.packs.runner import read_result as read_packs_result
from harness.packs.schema import RunResult, ScenarioResult
from harness.packs.summary import quality_line
from harness.packs.thinking import reasoning_notes
from harness.report import layers
from harness.report.model import (
    NOT_RECORDED,
    AgentHealthRow,
    AgenticRow,
    CheckView,
    EvalRow,
    Excerpt,
    Interval,
    PackRow,
    PackScenarios,
    ProfileReport,
    ReferenceRow,
    Report,
    RigRow,
    ScenarioView,
    ThroughputView,
    ToolCallView,
    Tradeoff,
    TradeoffPoint,
    VerifyRow,
)
from harness.stats import wilson_interval

RESULTS_UNREADABLE = "results unreadable"  # the status of a profile that ended well but whose results do not read
# How much model text one scenario of the HTML drill-down shows: enough to read, bounded so that a
# run of thousands of scenarios (or one reply of megabytes) still opens quickly.
TEXT_LIMIT_CHARS = 4000  # a prompt message, the reply, the reasoning
SHORT_LIMIT_CHARS = 600  # a tool call's arguments or result, a check's detail, a request error
TOOL_CALLS_SHOWN = 40  # per scenario; the rest are counted
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
        pp[_pp_label(length)] = length.pp_tps.median if length.pp_tps else None
    return ThroughputView(
        ttft_ms=result.ttft_s.median * 1000 if result.ttft_s else None,
        decode_tps=result.decode_tps.median if result.decode_tps else None,
        wall_tps=result.wall_tps.median if result.wall_tps else None,
        pp_tps=pp,
        concurrency_tps={str(level.streams): level.aggregate_tps for level in result.concurrency},
        early_stops=result.stopped_early_runs, runs=len(result.runs),
        load_s=result.load_time_s, vram_peak_mib=result.vram_peak_mib,
        vram_note=result.vram_note or "", notes=result.notes, spreads=_spreads(result),
        unstable=unstable_figures(result), gpu=gpu_lines(result.gpu) if result.gpu is not None else [])


def _pp_label(length: PromptLength) -> str:
    return f"~{length.target_tokens} prompt tokens ({length.pp_source})"


def _spreads(result: ThroughputResult) -> dict[str, str]:
    """Each measure's median (min–max) over its runs, as the throughput table shows it."""
    spreads = {"ttft": result.ttft_s.model_copy(update={k: getattr(result.ttft_s, k) * 1000 for k in
                                                        ("median", "min", "max")}).text(0) if result.ttft_s else "",
               "decode": result.decode_tps.text() if result.decode_tps else "",
               "wall": result.wall_tps.text() if result.wall_tps else ""}
    for length in result.prompt_processing:
        if length.pp_tps:
            spreads[_pp_label(length)] = length.pp_tps.text()
    for level in result.concurrency:
        if level.aggregate_spread:
            spreads[f"streams:{level.streams}"] = level.aggregate_spread.text()
    return {key: text for key, text in spreads.items() if text}


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
    facts["rig"] = record.rig
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


LAYER_ADAPTERS: dict[str, Callable[[Path, str], Any]] = {
    "verify-full": lambda path, _profile: layers.verify_full_rows(path),
    "stress": lambda path, _profile: layers.stress_view(path),
    "sweep": layers.sweep_view,
    "soak": layers.soak_view,
}


def _missing_results(record: ProfileRecord, out: Path) -> list[str]:
    """Result files a finished step should have left and did not."""
    done = {s.name for s in record.steps if s.status.value == "done"}
    expected = {step: out / f"{step}.json" for step in ("throughput", "packs", *LAYER_ADAPTERS)}
    missing = [f"{step} step done but {path.name} is missing" for step, path in expected.items()
               if step in done and not path.is_file()]
    if "evaluate" in done and not any(out.glob("evalplus/*/*.result.json")):
        missing.append("evaluate step done but no evalplus/<dataset>/<dataset>.result.json")
    return missing


def excerpt(text: str, limit: int = TEXT_LIMIT_CHARS) -> Excerpt:
    """`text` cut at `limit` characters, keeping its whole length."""
    return Excerpt(text=text[:limit], chars=len(text))


def _as_text(value: Any) -> str:
    """A string as it is; any other value (read from JSON) as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _message_text(message: dict[str, Any]) -> str:
    """A chat message's text: its content (text parts joined, other parts as JSON) and any tool calls."""
    content = message.get("content")
    if isinstance(content, list):
        parts = [part.get("text", "") if isinstance(part, dict) and part.get("type") == "text" else _as_text(part)
                 for part in content]
        text = "\n".join(parts)
    else:
        text = "" if content is None else _as_text(content)
    if message.get("tool_calls"):
        text += ("\n" if text else "") + "tool calls: " + _as_text(message["tool_calls"])
    return text


def _agent_line(result: ScenarioResult) -> str:
    agent = result.reply.agent if result.reply else None
    if agent is None:
        return ""
    return (f"{agent.turns} turn(s), {agent.tool_calls} tool call(s), ended: {agent.end_reason}"
            + (f", submitted {agent.submitted_status}" if agent.submitted_status else "")
            + (f", {agent.hallucinations} unknown-tool call(s)" if agent.hallucinations else "")
            + (f", {agent.schema_errors} malformed call(s)" if agent.schema_errors else "")
            + (", loop detected" if agent.loop_detected else ""))


def _judge_line(result: ScenarioResult) -> str:
    judged = result.reply.judgement if result.reply else None
    if judged is None:
        return ""
    if judged.error:
        return f"judged by {judged.judge_model}: error: {judged.error}"
    scores = ", ".join(f"{name} {score:g}" + (" (clamped)" if name in judged.clamped else "")
                       for name, score in judged.scores.items())
    return f"judged by {judged.judge_model}: {scores}" + (f"; {judged.reason}" if judged.reason else "")


def scenario_view(profile: str, result: ScenarioResult) -> ScenarioView:
    """One scenario of a packs result as the drill-down shows it, every model text cut to a bounded length."""
    reply = result.reply
    scenario = result.scenario
    calls = reply.tool_calls if reply else []
    view = ScenarioView(
        scenario_id=result.scenario_id, anchor="s:" + "/".join(
            "_".join(part.split()) for part in (profile, result.pack_id, result.scenario_id)),
        category=result.category, status=result.status, score=result.score, failure_mode=result.failure_mode,
        detail=excerpt(result.detail, SHORT_LIMIT_CHARS),
        checks=[CheckView(name=c.name, ok=c.ok, detail=excerpt(c.detail, SHORT_LIMIT_CHARS)) for c in result.checks],
        prompt=[(str(m.get("role", "?")), excerpt(_message_text(m))) for m in scenario.messages],
        tools_offered=[str((tool.get("function") or tool).get("name", "?")) for tool in scenario.tools or []
                       if isinstance(tool, dict)],
        tool_calls=[ToolCallView(turn=c.turn, name=c.name, arguments=excerpt(_as_text(c.arguments), SHORT_LIMIT_CHARS),
                                 outcome=excerpt(c.error if c.error is not None else _as_text(c.result),
                                                 SHORT_LIMIT_CHARS), failed=c.error is not None)
                    for c in calls[:TOOL_CALLS_SHOWN]],
        tool_calls_left_out=max(0, len(calls) - TOOL_CALLS_SHOWN),
        agent_line=_agent_line(result), judge_line=_judge_line(result),
        errors=[excerpt(e.error, SHORT_LIMIT_CHARS) for e in result.exchanges if e.error],
        latency_s=result.latency_ms / 1000, budget_s=result.budget_s, retries=result.retries,
        prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens)
    if reply is not None:
        view.content, view.reasoning = excerpt(reply.content), excerpt(reply.reasoning)
        view.content_source, view.finish_reason = reply.content_source, reply.finish_reason or ""
    return view


def drilldown(profile: str, result: RunResult) -> list[PackScenarios]:
    """Every scenario of every pack of a profile, for the HTML report to open one by one."""
    return [PackScenarios(pack=pack.pack_id, scenarios=[scenario_view(profile, s) for s in pack.scenarios])
            for pack in result.packs]


def profile_report(record: ProfileRecord, run_dir: Path) -> ProfileReport:
    """Everything the report says about one profile of a run."""
    out = run_dir / record.profile
    report = ProfileReport(profile=record.profile, rig=record.rig, status=record.status, reason=record.reason,
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
            report.pack_notes = list(packs.notes) + reasoning_notes(packs)
            report.judge_line = judge_line(packs)
            report.quality_line = quality_line(packs)
            report.scenarios = drilldown(record.profile, packs)
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
    for step, read in LAYER_ADAPTERS.items():  # verify-full, stress, sweep, soak: each its own section
        path = out / f"{step}.json"
        if path.is_file():
            try:
                setattr(report, step.replace("-", "_"), read(path, record.profile))
            except (OSError, ValueError) as exc:
                problems.append(f"{path.name} unreadable: {_first_line(exc)}")
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


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For each (quality, speed) point, whether no other point is at least as good on both and better on one."""
    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] >= b[0] and a[1] >= b[1] and a != b
    return [not any(dominates(other, point) for other in points) for point in points]


def _step_outcome(p: ProfileReport, step: str) -> tuple[str, str] | None:
    """How a profile's step ended when it did not end done: (status, the first clause of its detail)."""
    found = next(((status, detail) for name, status, _, detail in p.steps if name == step), None)
    if found is None or found[0] == "done":
        return None
    status, detail = found
    first = (detail.splitlines() or [""])[0].removeprefix(f"{status}: ").split("; ")[0]
    return {"pending": "did not run", "running": "did not finish"}.get(status, status), first[:160]


def _why_not_plotted(p: ProfileReport) -> str:
    """Why a profile has no point on the quality-versus-speed chart ("" when it has one)."""
    missing: dict[str, tuple[str, str] | None] = {}
    if p.throughput is None:
        missing["throughput"] = _step_outcome(p, "throughput")
    if not sum(row.passed.n for row in p.packs):
        missing["packs"] = _step_outcome(p, "packs")
    outcomes = list(missing.values())
    if len(outcomes) == 2 and (both := outcomes[0]) is not None and both == outcomes[1]:  # one cause, said once
        return f"throughput and packs steps {both[0]}" + (f" ({both[1]})" if both[1] else "")
    reasons = []
    for step, outcome in missing.items():
        what = "no throughput result" if step == "throughput" else "no pack results"
        reasons.append(what if outcome is None else f"{what}: {step} step {outcome[0]}"
                       + (f" ({outcome[1]})" if outcome[1] else ""))
    if p.throughput is not None and p.throughput.decode_tps is None:
        api = " (a hosted API: no token timings)" if "served by" in p.provenance else ""
        reasons.insert(0, f"throughput measured no decode rate{api}")
    return "; ".join(reasons)


def tradeoff(profiles: list[ProfileReport]) -> Tradeoff:
    """Pack pass rate against decode tokens/s, one point per profile (each on its rig), the front marked."""
    chart = Tradeoff()
    for p in profiles:
        decode = p.throughput.decode_tps if p.throughput is not None else None
        why = _why_not_plotted(p)
        if why or decode is None:
            chart.not_plotted.append((p.label, why))
            continue
        passed = interval(sum(row.passed.k for row in p.packs), sum(row.passed.n for row in p.packs))
        chart.points.append(TradeoffPoint(profile=p.profile, rig=p.rig, label=p.label, passed=passed,
                                          decode_tps=decode))
    for point, on_front in zip(chart.points, pareto_front([(x.passed.pct, x.decode_tps) for x in chart.points]),
                               strict=True):
        point.frontier = on_front
    plotted = {x.profile for x in chart.points}
    pack_sets = {p.label: tuple(f"{row.pack} {row.version}" for row in p.packs) for p in profiles
                 if p.profile in plotted}
    if len(set(pack_sets.values())) > 1:
        chart.notes.append("The profiles ran different packs, so their pass rates are over different scenarios: "
                           + "; ".join(f"{label}: {', '.join(packs)}" for label, packs in pack_sets.items()) + ".")
    if len({x.rig for x in chart.points}) > 1:
        chart.notes.append("Decode speed depends on the rig as much as on the profile: each point is one profile "
                           "on one rig.")
    return chart


def _gib(size: int | None) -> str:
    return NOT_RECORDED if size is None else f"{size / 2**30:.1f} GiB"


def rig_row(fingerprint: RigFingerprint, profiles: list[str]) -> RigRow:
    """One rig as the Rigs table shows it."""
    system = " / ".join(filter(None, [fingerprint.os, fingerprint.kernel]))
    gpus = "; ".join(fingerprint.gpus) or "none"
    if fingerprint.gpu_driver:
        gpus += f" (driver {fingerprint.gpu_driver})"
    if fingerprint.gpu_note:
        gpus += f" — {fingerprint.gpu_note}"
    state = "reachable" if fingerprint.reachable else "unreachable"
    return RigRow(rig=fingerprint.rig, endpoint=fingerprint.endpoint, engine=_recorded(fingerprint.engine_version),
                  system=system or NOT_RECORDED, cpus=_recorded(fingerprint.cpus),
                  memory=_gib(fingerprint.memory_bytes), gpus=gpus,
                  state=state + (f": {fingerprint.note}" if fingerprint.note else ""), profiles=profiles)


def rig_rows(manifest: Manifest) -> tuple[list[RigRow], str]:
    """The Rigs table (one row per recorded fingerprint, plus rigs a profile used without one), or one line."""
    used: dict[str, list[str]] = {}
    for record in manifest.profiles:
        used.setdefault(record.rig, []).append(record.profile)
    if not manifest.rigs:
        return [], (f"Rigs: {NOT_RECORDED} by this run; profiles ran on " + ", ".join(sorted(used)) + "."
                    if used else "")
    rows = [rig_row(fingerprint, used.get(name, [])) for name, fingerprint in manifest.rigs.items()]
    rows += [RigRow(rig=name, state=f"{NOT_RECORDED}: no fingerprint of this rig in the manifest", profiles=names)
             for name, names in used.items() if name not in manifest.rigs and name != "api"]
    return rows, ""


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
    if len({p.rig for p in report.profiles}) > 1:  # several rigs: every cross-profile figure says which
        for p in report.profiles:
            p.label = f"{p.profile} @ {p.rig}"
    report.tradeoff = tradeoff(report.profiles)
    report.rigs, report.rigs_note = rig_rows(manifest)
    if manifest.provenance is not None:
        run = manifest.provenance
        report.harness_version, report.git_commit = run.harness_version, _commit(run)
        report.python_version, report.hostname = run.python_version, run.hostname
    return report
