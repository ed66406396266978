"""Rendering a Report into results/REPORT.md and results/report.html (jinja2 templates).

Tables are built here as rows (strings), then laid out by tabulate (markdown) or the HTML
template; charts are inline SVG drawn by a template macro, so the HTML needs no external
assets and opens from disk.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from tabulate import tabulate

from harness.files import write_text_atomic
from harness.report.model import Interval, ProfileReport, Report

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
REFERENCE_CHART_MODELS = 6


def _fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def _interval(value: Interval | None) -> str:
    return "—" if value is None else f"{value.k}/{value.n} = {value}"


def _markdown_table(rows: list, headers: list[str]) -> str:
    if not rows:
        return "_(none)_"
    cells = [[str(cell).replace("|", "\\|").replace("\n", " ") for cell in row] for row in rows]  # one line per row
    return tabulate(cells, headers=headers, tablefmt="github")


def _summary_row(p: ProfileReport) -> list[str]:
    humaneval = next((e for e in p.evalplus if e.dataset.startswith("humaneval")), None)
    passed = sum(row.passed.k for row in p.packs)
    total = sum(row.passed.n for row in p.packs)
    tp = p.throughput
    return [p.profile, p.status,
            _interval(humaneval.base) if humaneval else "—", _interval(humaneval.plus) if humaneval else "—",
            f"{passed}/{total}" if total else "—",
            _fmt(tp.decode_tps) if tp else "—", _fmt(tp.ttft_ms, "{:.0f}") if tp else "—"]


def _throughput_rows(p: ProfileReport) -> list[tuple[str, str]]:
    tp = p.throughput
    if tp is None:
        return []
    rows = [("Time to first token (median)", _fmt(tp.ttft_ms, "{:.0f} ms")),
            ("Decode tokens/s (median)", _fmt(tp.decode_tps)),
            ("Wall tokens/s (median)", _fmt(tp.wall_tps))]
    rows += [(f"Prompt processing tokens/s, {label}", _fmt(value)) for label, value in tp.pp_tps.items()]
    rows += [(f"Aggregate tokens/s at {streams} stream(s)", _fmt(value))
             for streams, value in tp.concurrency_tps.items()]
    rows += [("Measured runs / stopped early", f"{tp.runs} / {tp.early_stops}"),
             ("Model load time (up → healthy)", _fmt(tp.load_s, "{:.1f} s")),
             ("Peak VRAM", _fmt(tp.vram_peak_mib, "{:.0f} MiB") + (f" ({tp.vram_note})" if tp.vram_note else ""))]
    return rows


def _context(report: Report) -> dict:
    references = [[ref.model, _fmt(ref.humaneval_plus), _fmt(ref.mbpp_plus), ref.source] for ref in report.references]
    for p in report.profiles:
        by_ds = {e.dataset: e for e in p.evalplus}
        he = next((e for name, e in by_ds.items() if name.startswith("humaneval")), None)
        mb = next((e for name, e in by_ds.items() if name.startswith("mbpp")), None)
        if he or mb:
            references.insert(0, [f"{p.profile} (this run, plus)", _fmt(he.plus.pct) if he else "n/a",
                                  _fmt(mb.plus.pct) if mb else "n/a", f"run {report.run_id}"])
    humaneval_chart = [(p.profile, next((e.plus.pct for e in p.evalplus if e.dataset.startswith("humaneval")), None))
                       for p in report.profiles]
    humaneval_chart += [(ref.model, ref.humaneval_plus) for ref in report.references[:REFERENCE_CHART_MODELS]]
    tps_chart = [(p.profile, p.throughput.decode_tps if p.throughput else None) for p in report.profiles]
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
        "agentic_rows": [[a.profile, a.pack, f"{a.passed.k}/{a.passed.n}", str(a.passed), f"{a.mean_score:.1f}",
                          _fmt(a.turn_s, "{:.2f}"), _fmt(a.ttft_ms, "{:.0f}"), _fmt(a.tokens_per_scenario, "{:.0f}"),
                          _fmt(a.cost_usd, "${:.4f}")] for p in report.profiles for a in p.agentic],
        "agentic_headers": ["Profile", "Pack", "Pass/Total", "Pass rate [Wilson 95%]", "Mean score", "s per turn",
                            "TTFT ms", "Tokens per scenario", "Cost"],
        "pack_charts": {p.profile: [(row.pack, row.mean_score) for row in p.packs] for p in report.profiles},
        "eval_rows": {p.profile: [[e.label or e.dataset, e.tasks, _interval(e.base), _interval(e.plus), e.empty,
                                   e.truncated, e.recovered, _fmt(e.min_time_limit_s, "{:g}")] for e in p.evalplus]
                      for p in report.profiles},
        "throughput_rows": {p.profile: _throughput_rows(p) for p in report.profiles},
        "verify_rows": {p.profile: [[v.kind, v.check, "PASS" if v.passed else "FAIL", v.detail] for v in p.verify]
                        for p in report.profiles},
        "step_rows": {p.profile: [[name, status, _fmt(seconds) if seconds is not None else "", detail]
                                  for name, status, seconds, detail in p.steps] for p in report.profiles},
        "reference_rows": references,
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
