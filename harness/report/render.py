"""Rendering a Report into results/REPORT.md and results/report.html (jinja2 templates).

Tables are built here as rows (strings), then laid out by tabulate (markdown) or the HTML
template; charts are inline SVG drawn by a template macro, so the HTML needs no external
assets and opens from disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import jinja2
from tabulate import tabulate

from harness.files import write_text_atomic
from harness.report.model import Interval, LineChartView, ProfileReport, Report, StressView, Tradeoff

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
REFERENCE_CHART_MODELS = 6
# The quality-versus-speed scatter, in SVG user units: plot area inside the margins.
SCATTER_W, SCATTER_H = 680, 380
SCATTER_LEFT, SCATTER_RIGHT, SCATTER_TOP, SCATTER_BOTTOM = 56, 24, 16, 44


def _fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def _interval(value: Interval | None) -> str:
    return "—" if value is None else f"{value.k}/{value.n} = {value}"


def _markdown_table(rows: list, headers: list[str]) -> str:
    if not rows:
        return "_(none)_"
    cells = [[str(cell).replace("|", "\\|").replace("\n", " ") for cell in row] for row in rows]  # one line per row
    # numbers as written: parsed, "104.0" would become "104" and no longer match the HTML or the result file
    return tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)


def _summary_row(p: ProfileReport) -> list[str]:
    humaneval = next((e for e in p.evalplus if e.dataset.startswith("humaneval")), None)
    passed = sum(row.passed.k for row in p.packs)
    total = sum(row.passed.n for row in p.packs)
    tp = p.throughput
    return [p.profile, p.rig, p.status,
            _interval(humaneval.base) if humaneval else "—", _interval(humaneval.plus) if humaneval else "—",
            f"{passed}/{total}" if total else "—",
            _fmt(tp.decode_tps) if tp else "—", _fmt(tp.ttft_ms, "{:.0f}") if tp else "—"]


def _throughput_rows(p: ProfileReport) -> list[tuple[str, str]]:
    tp = p.throughput
    if tp is None:
        return []
    spread = tp.spreads  # median (min–max) where the result has the runs; older results: the median
    rows = [("Time to first token ms, median (min–max)", spread.get("ttft") or _fmt(tp.ttft_ms, "{:.0f}")),
            ("Decode tokens/s, median (min–max)", spread.get("decode") or _fmt(tp.decode_tps)),
            ("Wall tokens/s, median (min–max)", spread.get("wall") or _fmt(tp.wall_tps))]
    rows += [(f"Prompt processing tokens/s, {label}", spread.get(label) or _fmt(value))
             for label, value in tp.pp_tps.items()]
    rows += [(f"Aggregate tokens/s at {streams} stream(s)", spread.get(f"streams:{streams}") or _fmt(value))
             for streams, value in tp.concurrency_tps.items()]
    rows += [("GPU", line) for line in tp.gpu]
    rows += [("Measured runs / stopped early", f"{tp.runs} / {tp.early_stops}"),
             ("Model load time (up → healthy)", _fmt(tp.load_s, "{:.1f} s")),
             ("Peak VRAM", _fmt(tp.vram_peak_mib, "{:.0f} MiB") + (f" ({tp.vram_note})" if tp.vram_note else ""))]
    return rows


def _nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks over `span`."""
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


@dataclass
class _Dot:
    """One point of the scatter in SVG units, with where its label goes."""

    label: str
    title: str
    frontier: bool
    cx: float
    cy: float
    y_low: float
    y_high: float
    lx: float = 0.0
    ly: float = 0.0
    anchor: str = "start"
    leader: bool = False  # the label had to move away: a thin line joins it to its point


@dataclass
class _Frame:
    """A chart's canvas, plot area and axis ticks in SVG units: what every chart's template draws first."""

    w: int
    h: int
    left: float
    top: float
    right: float
    bottom: float
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]


@dataclass
class Scatter(_Frame):
    """The quality-versus-speed chart as the template draws it."""

    points: list[_Dot]
    front: str  # SVG polyline points through the frontier, left to right


def _place_labels(dots: list[_Dot]) -> None:
    """Put each label beside its point where it overlaps no label placed before.

    Label widths are estimated (0.62 em per character at 12 px); candidates go right of the point, then
    left, stepping away vertically.
    """
    placed: list[tuple[float, float, float, float]] = []  # x0, y0, x1, y1 of each placed label

    def free(box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        inside = x0 >= 2 and x1 <= SCATTER_W - 2 and y0 >= 0 and y1 <= SCATTER_H - SCATTER_BOTTOM + 4
        return inside and all(x1 < a0 or x0 > a1 or y1 < b0 or y0 > b1 for a0, b0, a1, b1 in placed)

    offsets = [-8.0, 16.0] + [sign * 14.0 * k for k in range(1, 12) for sign in (-1, 1)]
    for dot in sorted(dots, key=lambda d: (d.cy, d.cx)):
        width = len(dot.label) * 12 * 0.62
        candidates = [c for dy in offsets for c in ((dot.cx + 10, dot.cy + dy, "start"),
                                                    (dot.cx - 10, dot.cy + dy, "end"))]
        boxes = [(lx if anchor == "start" else lx - width, ly - 11, lx + width if anchor == "start" else lx, ly + 3)
                 for lx, ly, anchor in candidates]
        index = next((i for i, box in enumerate(boxes) if free(box)), 0)  # crowded: the first, on top of others
        lx, ly, dot.anchor = candidates[index]
        dot.lx, dot.ly = round(lx, 1), round(ly, 1)
        dot.leader = abs(dot.ly - dot.cy) > 18
        placed.append(boxes[index])


def scatter(chart: Tradeoff) -> Scatter | None:
    """The quality-versus-speed chart in SVG units (None when nothing is plotted): pass rate up, decode right."""
    if not chart.points:
        return None
    step = _nice_step(max(p.decode_tps for p in chart.points) * 1.1 or 1.0)
    x_max = step * math.ceil(max(p.decode_tps for p in chart.points) * 1.1 / step) or step
    left, top = SCATTER_LEFT, SCATTER_TOP
    width, height = SCATTER_W - SCATTER_LEFT - SCATTER_RIGHT, SCATTER_H - SCATTER_TOP - SCATTER_BOTTOM

    def x(value: float) -> float:
        return round(left + value / x_max * width, 1)

    def y(pct: float) -> float:
        return round(top + (100 - pct) / 100 * height, 1)

    dots = [_Dot(label=p.label + (" (frontier)" if p.frontier else ""), frontier=p.frontier,
                 title=f"{p.label}: {p.passed.k}/{p.passed.n} = {p.passed}, decode {p.decode_tps:.1f} tok/s"
                       + (" (frontier)" if p.frontier else ""),
                 cx=x(p.decode_tps), cy=y(p.passed.pct), y_low=y(p.passed.low), y_high=y(p.passed.high))
            for p in chart.points]
    _place_labels(dots)
    front = sorted((d for d in dots if d.frontier), key=lambda d: d.cx)
    return Scatter(w=SCATTER_W, h=SCATTER_H, left=left, top=top, right=left + width, bottom=top + height,
                   x_ticks=[(x(i * step), f"{i * step:g}") for i in range(int(round(x_max / step)) + 1)],
                   y_ticks=[(y(pct), f"{pct}%") for pct in range(0, 101, 20)],
                   points=dots, front=" ".join(f"{d.cx},{d.cy}" for d in front))


# The layers' line charts and the needle grid, in SVG user units.
LINE_W, LINE_H = 700, 320
LINE_LEFT, LINE_RIGHT, LINE_TOP, LINE_BOTTOM = 64, 170, 16, 44
PALETTE = ("#0969da", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#57606a")
NEEDLE_CELL_W, NEEDLE_CELL_H, NEEDLE_LEFT, NEEDLE_TOP = 110, 38, 90, 30


@dataclass
class _Line:
    label: str
    color: str
    points: str  # SVG polyline points
    dots: list[tuple[float, float, str]]  # cx, cy, tooltip
    legend_y: float


@dataclass
class LineChart(_Frame):
    """A layer's line chart as the template draws it."""

    chart_id: str
    title: str
    x_label: str
    y_label: str
    lines: list[_Line]


def _axis(low: float, high: float) -> tuple[float, float, float]:
    """(start, end, step) of an axis from 0 (or below, for negative data) to past the data's top."""
    low, high = min(0.0, low), max(high, low + 1e-9)
    step = _nice_step((high - low) * 1.05 or 1.0)
    return step * math.floor(low / step), step * math.ceil(high * 1.05 / step) or step, step


def line_chart(view: LineChartView) -> LineChart | None:
    """Geometry of a line chart (None when no series has a point): one polyline and legend entry per series."""
    points = [pt for series in view.series for pt in series.points]
    if not points:
        return None
    x0, x1, x_step = _axis(min(x for x, _ in points), max(x for x, _ in points))
    y0, y1, y_step = _axis(min(y for _, y in points), max(y for _, y in points))
    left, top = LINE_LEFT, LINE_TOP
    right, bottom = LINE_W - LINE_RIGHT, LINE_H - LINE_BOTTOM

    def sx(value: float) -> float:
        return round(left + (value - x0) / (x1 - x0) * (right - left), 1)

    def sy(value: float) -> float:
        return round(bottom - (value - y0) / (y1 - y0) * (bottom - top), 1)

    lines = []
    for i, series in enumerate(s for s in view.series if s.points):
        dots = [(sx(x), sy(y), f"{series.label}: {x:.4g} {view.x_label}, {y:.4g} {view.y_label}")
                for x, y in series.points]
        lines.append(_Line(label=series.label, color=PALETTE[i % len(PALETTE)],
                           points=" ".join(f"{cx},{cy}" for cx, cy, _ in dots), dots=dots, legend_y=top + 8 + i * 18))
    ticks = [(x0 + i * x_step) for i in range(int(round((x1 - x0) / x_step)) + 1)]
    y_ticks = [(y0 + i * y_step) for i in range(int(round((y1 - y0) / y_step)) + 1)]
    return LineChart(chart_id=view.chart_id, title=view.title, x_label=view.x_label, y_label=view.y_label,
                     w=LINE_W, h=LINE_H, left=left, top=top, right=right, bottom=bottom,
                     x_ticks=[(sx(v), f"{v:g}") for v in ticks], y_ticks=[(sy(v), f"{v:g}") for v in y_ticks],
                     lines=lines)


@dataclass
class _NeedleBox:
    x: float
    y: float
    passed: bool
    text: str
    title: str


@dataclass
class NeedleGrid:
    """The needle-in-a-haystack grid: rows are depths, columns fills of the context."""

    w: int
    h: int
    rows: list[tuple[float, str]]  # y of the row's label, label
    columns: list[tuple[float, str]]
    boxes: list[_NeedleBox]
    cell_w: int = NEEDLE_CELL_W
    cell_h: int = NEEDLE_CELL_H


def needle_grid(view: StressView) -> NeedleGrid | None:
    if not view.cells:
        return None
    depths, fills = sorted(view.depths), sorted(view.fills)
    boxes = []
    for cell in view.cells:
        x = NEEDLE_LEFT + fills.index(cell.fill_pct) * NEEDLE_CELL_W
        y = NEEDLE_TOP + depths.index(cell.depth_pct) * NEEDLE_CELL_H
        latency = f" {cell.latency_s:.1f} s" if cell.latency_s is not None else ""
        text = ("found" if cell.passed else "error" if cell.error else "missed") + latency
        title = (f"depth {cell.depth_pct:g}%, fill {cell.fill_pct:g}%: {text}"
                 + (f", {cell.prompt_tokens} prompt tokens" if cell.prompt_tokens else "")
                 + (f"; {cell.error}" if cell.error else ""))
        boxes.append(_NeedleBox(x=x, y=y, passed=cell.passed, text=text, title=title))
    return NeedleGrid(w=NEEDLE_LEFT + len(fills) * NEEDLE_CELL_W + 10, h=NEEDLE_TOP + len(depths) * NEEDLE_CELL_H + 10,
                      rows=[(NEEDLE_TOP + i * NEEDLE_CELL_H + NEEDLE_CELL_H / 2 + 4, f"depth {d:g}%")
                            for i, d in enumerate(depths)],
                      columns=[(NEEDLE_LEFT + i * NEEDLE_CELL_W + NEEDLE_CELL_W / 2, f"fill {f:g}%")
                               for i, f in enumerate(fills)],
                      boxes=boxes)


def _layer_charts(p: ProfileReport) -> list[LineChart]:
    views = [c for layer in (p.sweep, p.soak) if layer is not None for c in layer.charts]
    return [chart for chart in map(line_chart, views) if chart is not None]


def _context(report: Report) -> dict:
    references = [[ref.model, _fmt(ref.humaneval_plus), _fmt(ref.mbpp_plus), ref.source] for ref in report.references]
    for p in report.profiles:
        by_ds = {e.dataset: e for e in p.evalplus}
        he = next((e for name, e in by_ds.items() if name.startswith("humaneval")), None)
        mb = next((e for name, e in by_ds.items() if name.startswith("mbpp")), None)
        if he or mb:
            references.insert(0, [f"{p.profile} (this run, plus)", _fmt(he.plus.pct) if he else "n/a",
                                  _fmt(mb.plus.pct) if mb else "n/a", f"run {report.run_id}"])
    humaneval_chart = [(p.label, next((e.plus.pct for e in p.evalplus if e.dataset.startswith("humaneval")), None))
                       for p in report.profiles]
    humaneval_chart += [(ref.model, ref.humaneval_plus) for ref in report.references[:REFERENCE_CHART_MODELS]]
    tps_chart = [(p.label, p.throughput.decode_tps if p.throughput else None) for p in report.profiles]
    return {
        "r": report,
        "summary_rows": [_summary_row(p) for p in report.profiles],
        "pack_rows": {p.profile: [[row.pack, row.version, f"{row.passed.k}/{row.passed.n}", str(row.passed),
                                   f"{row.mean_score:.1f}", _fmt(row.p50_s), _fmt(row.p95_s), row.status]
                                  for row in p.packs] for p in report.profiles},
        "agent_rows": {p.profile: [[a.pack, a.episodes, _fmt(a.mean_turns_to_solve),
                                    _fmt(a.hallucination_rate, "{:.1%}"), _fmt(a.schema_error_rate, "{:.1%}"),
                                    a.loop_detections, a.refusals_of_safe_tasks,
                                    _fmt(a.sycophancy_rate, "{:.0%}") + (f" of {a.false_premises}"
                                                                         if a.false_premises else ""),
                                    _fmt(a.sandbox_overhead_s, "{:.2f}")] for a in p.agent_health]
                       for p in report.profiles},
        "agent_headers": ["Pack", "Episodes", "Turns to solve", "Tool hallucinations", "Schema errors",
                          "Loops", "Refused safe tasks", "Sycophancy (false premises)", "Sandbox overhead s"],
        "agentic_rows": [[a.profile, p.rig, a.pack, f"{a.passed.k}/{a.passed.n}", str(a.passed), f"{a.mean_score:.1f}",
                          _fmt(a.turn_s, "{:.2f}"), _fmt(a.ttft_ms, "{:.0f}"), _fmt(a.tokens_per_scenario, "{:.0f}"),
                          _fmt(a.cost_usd, "${:.4f}")] for p in report.profiles for a in p.agentic],
        "agentic_headers": ["Profile", "Rig", "Pack", "Pass/Total", "Pass rate [Wilson 95%]", "Mean score",
                            "s per turn", "TTFT ms", "Tokens per scenario", "Cost"],
        "pack_charts": {p.profile: [(row.pack, row.mean_score) for row in p.packs] for p in report.profiles},
        "eval_rows": {p.profile: [[e.label or e.dataset, e.tasks, _interval(e.base), _interval(e.plus), e.empty,
                                   e.truncated, e.recovered, _fmt(e.min_time_limit_s, "{:g}")] for e in p.evalplus]
                      for p in report.profiles},
        "throughput_rows": {p.profile: _throughput_rows(p) for p in report.profiles},
        "verify_full_rows": {p.profile: [[v.kind, v.check, "PASS" if v.passed else "FAIL", v.detail]
                                         for v in p.verify_full] for p in report.profiles},
        "stress_probe_rows": {p.profile: [[v.kind, v.check, "PASS" if v.passed else "FAIL", v.detail]
                                          for v in (p.stress.probes if p.stress else [])] for p in report.profiles},
        "needle_grids": {p.profile: needle_grid(p.stress) if p.stress else None for p in report.profiles},
        "layer_charts": {p.profile: {c.chart_id: c for c in _layer_charts(p)} for p in report.profiles},
        "verify_rows": {p.profile: [[v.kind, v.check, "PASS" if v.passed else "FAIL", v.detail] for v in p.verify]
                        for p in report.profiles},
        "step_rows": {p.profile: [[name, status, _fmt(seconds) if seconds is not None else "", detail]
                                  for name, status, seconds, detail in p.steps] for p in report.profiles},
        "reference_rows": references,
        "summary_headers": ["Profile", "Rig", "Status", "HumanEval+ base", "HumanEval+ plus", "Packs passed",
                            "Decode tok/s", "TTFT ms"],
        "tradeoff_rows": [[x.profile, x.rig, f"{x.passed.k}/{x.passed.n}", str(x.passed), _fmt(x.decode_tps),
                           "frontier" if x.frontier else ""] for x in report.tradeoff.points],
        "tradeoff_headers": ["Profile", "Rig", "Pass/Total", "Pass rate [Wilson 95%]", "Decode tok/s", "Frontier"],
        "scatter": scatter(report.tradeoff),
        "rig_rows": [[r.rig, r.endpoint, r.engine, r.system, r.cpus, r.memory, r.gpus, r.state,
                      ", ".join(r.profiles)] for r in report.rigs],
        "rig_headers": ["Rig", "Engine address", "Engine", "OS / kernel", "CPUs", "Memory", "GPUs", "State",
                        "Profiles"],
        "humaneval_chart": humaneval_chart,
        "tps_chart": tps_chart,
        "tps_max": max([v for _, v in tps_chart if v is not None], default=1.0) * 1.1,
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), undefined=jinja2.StrictUndefined,
                             autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                             trim_blocks=False, keep_trailing_newline=True)
    env.filters["table"] = _markdown_table
    return env


def render_markdown(report: Report) -> str:
    """REPORT.md text."""
    return _environment().get_template("report.md.j2").render(**_context(report))


def render_html(report: Report) -> str:
    """report.html text: static, self-contained, charts as inline SVG."""
    return _environment().get_template("report.html.j2").render(**_context(report))


def write_reports(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write REPORT.md and report.html atomically; returns their paths."""
    markdown = write_text_atomic(out_dir / "REPORT.md", render_markdown(report))
    html = write_text_atomic(out_dir / "report.html", render_html(report))
    return markdown, html
