"""Text views of a RunResult: the pack table, the failure breakdown and the Quality line."""

from __future__ import annotations

from tabulate import tabulate

from harness.packs.schema import RunResult, ScenarioResult


def _seconds(ms: float | None) -> str:
    return "n/a" if ms is None else f"{ms / 1000:.1f}s"


def pack_table(result: RunResult) -> str:
    """Markdown table: Pack | Pass/Total | Score | p50 | p95 | Status."""
    tag = "" if result.sampling.canonical else " NON-CANONICAL"
    rows = []
    for pack in result.packs:
        status = "ok" if pack.infra_failures == 0 else f"{pack.infra_failures} infra failure(s)"
        judged = sum(s.scenario.verifier.type == "rubric" for s in pack.scenarios)
        status += f" · {judged} judged" if judged else ""
        rows.append([pack.pack_id, f"{pack.passed}/{pack.total}", f"{pack.mean_score:.1f}",
                     _seconds(pack.p50_latency_ms), _seconds(pack.p95_latency_ms), status + tag])
    return tabulate(rows, headers=["Pack", "Pass/Total", "Score", "p50", "p95", "Status"], tablefmt="github")


def failure_breakdown(result: RunResult) -> str:
    """One line per failure mode: count and the scenarios it hit."""
    failed: dict[str, list[ScenarioResult]] = {}
    for pack in result.packs:
        for scenario in pack.scenarios:
            if scenario.failure_mode != "passed":
                failed.setdefault(scenario.failure_mode, []).append(scenario)
    if not failed:
        return "Failure breakdown: none"
    lines = ["Failure breakdown:"]
    for mode, items in sorted(failed.items(), key=lambda kv: -len(kv[1])):
        names = ", ".join(f"{s.pack_id}/{s.scenario_id}" for s in items[:6]) + (" …" if len(items) > 6 else "")
        lines.append(f"  {mode:<20} {len(items):>3}  {names}")
    return "\n".join(lines)


def agent_health_lines(result: RunResult) -> str:
    """Per agent pack: how the model behaved as an agent (empty when no agent pack ran)."""
    lines = []
    for pack in result.packs:
        h = pack.agent_health
        if h is None:
            continue
        turns = "n/a" if h.mean_turns_to_solve is None else f"{h.mean_turns_to_solve:g}"
        overhead = "n/a" if h.mean_sandbox_overhead_ms is None else f"{h.mean_sandbox_overhead_ms / 1000:.2f}s"
        rates = ("tool calls: none" if h.tool_calls == 0 else
                 f"tool hallucinations {h.hallucination_rate:.1%} · schema errors {h.schema_error_rate:.1%}")
        sycophancy = (f" · sycophancy {h.sycophancy_rate:.0%} of {h.false_premises} false premise(s)"
                      if h.sycophancy_rate is not None else "")
        sandbox = f" · sandbox overhead {overhead}/scenario" if h.mean_sandbox_overhead_ms is not None else ""
        lines.append(f"  {pack.pack_id}: turns to solve {turns} · {rates} · loops {h.loop_detections} · refused "
                     f"safe tasks {h.refusals_of_safe_tasks}{sycophancy}{sandbox}")
    return "Agent health:\n" + "\n".join(lines) if lines else ""


def judge_lines(result: RunResult) -> str:
    """Who judged the rubric scenarios and its calibration; what the run left out and why."""
    lines = [f"Note: {note}" for note in result.notes]
    judge, cal = result.judge, result.judge.calibration if result.judge else None
    if judge is not None:
        trust = "not calibrated (no graded references selected)"
        if cal is not None and cal.tasks:
            rho = "n/a" if cal.rank_correlation is None else f"{cal.rank_correlation:+.2f}"
            trust = (f"strong above weak reference in {cal.separated}/{cal.tasks} task(s), rank correlation {rho}"
                     + (f", {cal.errors} judge error(s)" if cal.errors else ""))
        lines.append(f"Rubric judge: {judge.model} at {judge.endpoint} (scores are marked judged); calibration: "
                     f"{trust}")
    return "\n".join(lines)


def quality_line(result: RunResult) -> str:
    """``Quality: pack passed/total (mean score%) · …`` — ready to paste, and only for a run whose every
    scenario got an answer: scenarios lost to the endpoint would read as the model's failures."""
    infra = sum(p.infra_failures for p in result.packs)
    if infra or not result.complete:
        return (f"Quality: not reported: {infra} scenario(s) failed on the endpoint, not the model (see the "
                "failure breakdown); run again with --resume to redo them")
    parts = [f"{p.pack_id} {p.passed}/{p.total} ({p.mean_score:.0f}%)" for p in result.packs]
    tag = " [NON-CANONICAL]" if not result.sampling.canonical else ""
    return "Quality: " + " · ".join(parts) + tag


def summary(result: RunResult) -> str:
    """Everything printed at the end of a run."""
    head = (f"Packs run {result.run_id}: {result.model} at {result.endpoint} ({result.mode}, "
            f"sampling {'canonical' if result.sampling.canonical else result.sampling.source + ' NON-CANONICAL'}, "
            f"thinking {result.thinking.requested} via {result.thinking.control})")
    parts = [head, pack_table(result), failure_breakdown(result), agent_health_lines(result), judge_lines(result),
             quality_line(result)]
    return "\n\n".join(part for part in parts if part)


def describe_scenario(scenario: ScenarioResult, *, full: bool) -> str:
    """One scenario for ``inspect``: verdict, checks, and with ``full`` the requests and replies."""
    lines = [f"{scenario.pack_id}/{scenario.scenario_id} [{scenario.category}] {scenario.status} "
             f"score {scenario.score:.0f} {scenario.failure_mode} ({scenario.latency_ms / 1000:.1f}s, "
             f"{scenario.completion_tokens} completion tokens, budget {scenario.budget_s:g}s)",
             f"  detail: {scenario.detail}"]
    lines += [f"  [{'x' if c.ok else ' '}] {c.name}" + (f" — {c.detail}" if c.detail and not c.ok else "")
              for c in scenario.checks]
    if scenario.reply is not None:
        if scenario.reply.agent is not None:
            a = scenario.reply.agent
            lines.append(f"  agent: {a.turns} turn(s), {a.tool_calls} call(s), ended: {a.end_reason}"
                         + (f", submitted {a.submitted_status}" if a.submitted_status else "")
                         + (f", {a.hallucinations} unknown-tool call(s)" if a.hallucinations else "")
                         + (f", {a.schema_errors} malformed call(s)" if a.schema_errors else ""))
        if (end := scenario.reply.world) is not None:
            lines.append(f"  world at the end: {len(end.memory)} fact(s) in memory, "
                         f"{sum(bool(j.get('active')) for j in end.jobs)} active job(s), {len(end.artifacts)} "
                         f"artifact(s), {len(end.outbox)} email(s) in the outbox, {len(end.calls)} call(s) served")
            if full:
                lines.append(f"  world state: {end.model_dump_json(exclude={'calls', 'status', 'answer'})}")
        if (judged := scenario.reply.judgement) is not None:
            scores = ", ".join(f"{k} {v:g}" + (" (clamped)" if k in judged.clamped else "")
                               for k, v in judged.scores.items())
            lines.append(f"  judged by {judged.judge_model}: " + (f"error: {judged.error}" if judged.error
                                                                 else f"{scores}; {judged.reason}"))
            if full:
                lines.append(f"  judge reply: {judged.reply!r}")
        for call in scenario.reply.tool_calls:
            outcome = call.error or call.result
            shown = str(outcome) if full else str(outcome)[:200]
            lines.append(f"  tool call (turn {call.turn}): {call.name}({call.arguments}) -> {shown}")
        text = scenario.reply.content if full else scenario.reply.content[:300]
        lines.append(f"  reply ({scenario.reply.content_source}, finish={scenario.reply.finish_reason}): {text!r}")
    if full:
        import json
        for index, exchange in enumerate(scenario.exchanges, start=1):
            request = exchange.full_request(scenario.scenario)
            lines.append(f"  --- request {index} ---\n{json.dumps(request, indent=1)}")
            lines.append(f"  --- response {index} ---\n"
                         f"{json.dumps(exchange.response, indent=1) if exchange.response else exchange.error}")
    return "\n".join(lines)
