"""The server layers' result files (verify-full, stress, sweep, soak) as report views.

One adapter per layer, like ``build.throughput_view``: the templates never read the layers'
JSON, so a layer's format change touches only its adapter here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.endpoint.soak import Drift, SoakResult, SoakWindow
from harness.endpoint.stress import StressResult
from harness.endpoint.sweep import Percentiles, SweepPoint, SweepResult
from harness.endpoint.telemetry import gpu_lines
from harness.endpoint.verify_full import VerifyFullResult
from harness.report.model import (
    ChartSeries,
    LayerView,
    LineChartView,
    NeedleCellView,
    StressView,
    TableView,
    VerifyRow,
)


def _fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def _pcts(value: Percentiles | None, *which: str) -> str:
    """``p50 / p99`` of a distribution in ms, as the tables show it."""
    if value is None:
        return "n/a"
    return " / ".join(f"{getattr(value, name):.0f}" for name in which)


def verify_full_rows(path: Path) -> list[VerifyRow]:
    result = VerifyFullResult.model_validate_json(path.read_text(encoding="utf-8"))
    return [VerifyRow(kind=c.kind, check=f"{c.group}: {c.name}", passed=c.passed, detail=c.detail)
            for c in result.checks]


def stress_view(path: Path) -> StressView:
    result = StressResult.model_validate_json(path.read_text(encoding="utf-8"))
    found = sum(cell.passed for cell in result.grid)
    server = [p for p in result.probes if p.kind == "server"]
    lines = [f"Needle in a haystack: found in {found} of {len(result.grid)} cells ({result.n_ctx_per_slot} tokens per "
             f"slot, {result.n_ctx_source}; needle value random per run, seed {result.needle.seed}; "
             f"prompt sized by {result.needle.token_count_method})",
             f"Boundary probes: {sum(p.passed for p in server)} of {len(server)} server checks passed"]
    if result.server_died:
        lines.insert(0, f"SERVER DIED: {result.server_died}")
    depths = sorted({cell.depth_pct for cell in result.grid})
    fills = sorted({cell.fill_pct for cell in result.grid})
    depths_f, fills_f = [float(d) for d in depths], [float(f) for f in fills]
    by_place = {(cell.depth_pct, cell.fill_pct): cell for cell in result.grid}

    def shown(depth: int, fill: int) -> str:
        cell = by_place.get((depth, fill))
        if cell is None:
            return "—"
        latency = f" ({cell.latency_s:.1f} s)" if cell.latency_s is not None else ""
        return ("found" if cell.passed else "error" if cell.error else "missed") + latency

    table = TableView(headers=["Needle depth"] + [f"fill {f}%" for f in fills],
                      rows=[[f"{d}%"] + [shown(d, f) for f in fills] for d in depths])
    return StressView(lines=lines, table=table, notes=result.notes, depths=depths_f, fills=fills_f,
                      cells=[NeedleCellView(depth_pct=c.depth_pct, fill_pct=c.fill_pct, passed=c.passed,
                                            latency_s=c.latency_s, prompt_tokens=c.prompt_tokens, error=c.error or "")
                             for c in result.grid],
                      probes=[VerifyRow(kind=p.kind, check=p.name, passed=p.passed, detail=p.detail)
                              for p in result.probes],
                      log_tail=result.log_tail)


def _load(point: SweepPoint) -> str:
    if point.mode == "concurrency":
        return f"{point.concurrency} stream{'' if point.concurrency == 1 else 's'}"
    drawn = f" (drawn {point.realized_rate_rps:.2f})" if point.realized_rate_rps is not None else ""
    return f"{point.offered_rate:g} req/s{drawn}"  # a short Poisson draw can arrive well off the offered rate


def sweep_view(path: Path, profile: str) -> LayerView:
    result = SweepResult.model_validate_json(path.read_text(encoding="utf-8"))
    lines = []
    overhead = result.client_overhead
    if overhead is not None and overhead.ttft_ms is not None:
        lines.append(f"Load generator's own overhead (instant local server, {overhead.concurrency} streams): TTFT p50 "
                     f"{overhead.ttft_ms.p50:.2f} ms, p99 {overhead.ttft_ms.p99:.2f} ms; it drove up to "
                     f"{overhead.request_tps:.0f} req/s")
    elif result.client_overhead_note:
        lines.append(f"Load generator's own overhead: {result.client_overhead_note}")
    if result.concurrency_saturated_at is not None:
        lines.append(f"Concurrency sweep saturated at {result.concurrency_saturated_at} streams: "
                     f"{result.concurrency_saturation_reason}")
    if result.rate_saturated_at is not None:
        lines.append(f"Rate sweep saturated at {result.rate_saturated_at:g} req/s: {result.rate_saturation_reason}")
    if result.slo:
        lines.append("Goodput: requests per second that met every SLO ("
                     + ", ".join(f"{key} ≤ {value:g}" for key, value in result.slo.items()) + ")")
    elif result.goodput_note:
        lines.append(f"Goodput: {result.goodput_note}")
    lines.append("Latencies are timed from when each request was scheduled, so queueing in the client counts "
                 "(no coordinated omission)")
    lines += gpu_lines(result.gpu)
    points = result.concurrency_points + result.rate_points
    table = TableView(headers=["Mode", "Load", "OK / errors", "Output tok/s", "Req/s", "Goodput req/s",
                               "TTFT ms p50 / p90 / p99", "ITL ms p50 / p99", "TPOT ms p50", "E2E ms p50 / p99"],
                      rows=[[p.mode, _load(p), f"{p.completed} / {p.errors}", _fmt(p.output_tps),
                             _fmt(p.request_tps, "{:.2f}"), _fmt(p.goodput_rps, "{:.2f}"),
                             _pcts(p.ttft_ms, "p50", "p90", "p99"), _pcts(p.itl_ms, "p50", "p99"),
                             _pcts(p.tpot_ms, "p50"), _pcts(p.e2e_ms, "p50", "p99")] for p in points])
    series = []
    for mode, mode_points in (("concurrency", result.concurrency_points), ("rate", result.rate_points)):
        for pct in ("p50", "p99"):
            xy = [(p.output_tps, getattr(p.ttft_ms, pct)) for p in mode_points if p.ttft_ms is not None]
            if xy:
                series.append(ChartSeries(label=f"{mode} TTFT {pct}", points=xy))
    chart = LineChartView(chart_id=f"sweep-{profile}", title="Throughput against latency (load sweep)",
                          x_label="output tokens/s", y_label="TTFT ms (from schedule)", series=series)
    notes = list(result.notes) + ([f"errors: {p.first_error}" for p in points if p.first_error][:3])
    return LayerView(lines=lines, table=table, charts=[chart], notes=notes)


def _drift(what: str, drift: Drift | None, unit: str) -> str | None:
    if drift is None:
        return None
    interval = (f" (95% {drift.low:+.1f} … {drift.high:+.1f})" if drift.low is not None and drift.high is not None
                else " (no interval: under 3 windows)")
    pct = f", {drift.pct_per_hour:+.1f}% of the first window per hour" if drift.pct_per_hour is not None else ""
    return f"{what} drift {drift.slope_per_hour:+.1f} {unit}/hour{interval}{pct}, over {drift.n} windows"


def soak_view(path: Path, profile: str) -> LayerView:
    result = SoakResult.model_validate_json(path.read_text(encoding="utf-8"))
    lines = [f"{result.settings.mode} soak, {result.duration_s / 60:.1f} of {result.settings.minutes:g} minutes in "
             f"{len(result.windows)} windows of {result.settings.window_s:g} s at concurrency "
             f"{result.settings.concurrency or result.slots}; mix {', '.join(result.settings.mix)}",
             f"{result.requests_total} requests, {result.errors_total} errors, {result.restarts_total} restarts "
             "not caused by the soak" + (f", {result.fresh_restarts} fresh-mode restarts" if result.fresh_restarts
                                          else "")]
    if result.ended_early:
        lines.insert(0, f"ENDED EARLY: {result.ended_early}")
    lines += [line for line in (_drift("Decode tok/s", result.decode_drift, "tok/s"),
                                _drift("Prompt tok/s", result.prompt_drift, "tok/s"),
                                _drift("Server memory", result.mem_drift, "MiB")) if line]
    if result.memory_grows:
        lines.append("MEMORY GROWS: the memory slope's 95% interval lies above zero")
    if result.decode_slows:
        lines.append("DECODE SLOWS: the decode slope's 95% interval lies below zero")
    lines += gpu_lines(result.gpu)
    table = TableView(headers=["Window", "t (s)", "Requests", "Errors", "Decode tok/s, median (min–max)",
                               "Prompt tok/s, median (min–max)", "Memory MiB", "VRAM MiB", "Restarts"],
                      rows=[[str(w.index), f"{w.t_start_s:.0f}–{w.t_end_s:.0f}", str(w.requests), str(w.errors),
                             w.decode_tps.text() if w.decode_tps else "n/a",
                             w.prompt_tps.text() if w.prompt_tps else "n/a", _fmt(w.mem_mib, "{:.0f}"),
                             _fmt(w.vram_mib, "{:.0f}"), str(w.restarts)] for w in result.windows])

    def over_time(pick: Callable[[SoakWindow], float | None]) -> list[tuple[float, float]]:
        return [((w.t_start_s + w.t_end_s) / 120, value) for w in result.windows if (value := pick(w)) is not None]

    speed = LineChartView(chart_id=f"soak-{profile}-decode", title="Soak: tokens/s over time",
                          x_label="minutes", y_label="tokens/s (window median)",
                          series=[ChartSeries(label="decode", points=over_time(
                                      lambda w: w.decode_tps.median if w.decode_tps else None)),
                                  ChartSeries(label="prompt", points=over_time(
                                      lambda w: w.prompt_tps.median if w.prompt_tps else None))])
    memory = LineChartView(chart_id=f"soak-{profile}-memory", title="Soak: memory over time",
                           x_label="minutes", y_label="MiB",
                           series=[ChartSeries(label="container", points=over_time(lambda w: w.mem_mib)),
                                   ChartSeries(label="VRAM", points=over_time(lambda w: w.vram_mib))])
    errors = [f"window {w.index}: {w.errors} error(s), first: {w.first_error}" for w in result.windows if w.errors]
    return LayerView(lines=lines, table=table, charts=[speed, memory], notes=list(result.notes) + errors[:5])
