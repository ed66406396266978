"""The cross-profile comparison: pass rate against decode speed with Wilson whiskers and the Pareto
front marked, every figure labelled with its rig, the Rigs table, and old manifests without rigs."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from harness.report.build import build_report, pareto_front
from harness.report.render import render_html, render_markdown, scatter
from harness.stats import wilson_interval
from tests.conftest import REPO_ROOT
from tests.report.fixture import BROKEN, PROFILE, add_profile, read_json, set_rig, write_json

REFERENCES = REPO_ROOT / "reference-scores.json"
SVG = "{http://www.w3.org/2000/svg}"
# name: (rig, decode tok/s, passes of 5); PROFILE itself is 3/5 at 104.0 on local
OTHERS = {"bench-fast": ("rig2", 300.0, 2), "bench-best": ("rig2", 80.0, 5), "bench-dominated": ("local", 50.0, 1)}
FRONT = {PROFILE, "bench-fast", "bench-best"}


@pytest.fixture
def compared(run_dir):
    """Four plotted profiles on two rigs (one dominated), one whose throughput failed, and BROKEN."""
    for name, (rig, decode, passed) in OTHERS.items():
        add_profile(run_dir, name, rig=rig, decode_tps=decode, passed=passed)
    add_profile(run_dir, "bench-nothroughput", throughput=False)
    return run_dir


def _chart(page: str) -> ET.Element:
    svg = re.search(r'<svg id="tradeoff-chart".*?</svg>', page, re.S)
    assert svg, "no quality-versus-speed chart"
    return ET.fromstring(svg.group(0))  # well-formed XML: every label escaped


def _points(chart: ET.Element) -> dict[str, ET.Element]:
    """The point groups by profile (the tooltip title starts with the label)."""
    groups = [g for g in chart.iter(f"{SVG}g") if "point" in g.get("class", "").split()]
    return {g.find(f"{SVG}title").text.split(" @ ")[0].split(":")[0]: g for g in groups}


def _table(markdown: str, heading: str) -> str:
    return markdown.partition(f"### {heading}")[2].partition("\n## ")[0].partition("\n### ")[0]


def _row(table: str, first_cell: str) -> list[str]:
    line = next(x for x in table.splitlines() if x.startswith(f"| {first_cell} "))
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_pareto_front_keeps_points_no_other_beats_on_both_axes():
    assert pareto_front([(60, 104), (40, 300), (100, 80), (20, 50)]) == [True, True, True, False]
    assert pareto_front([(50, 100), (50, 100)]) == [True, True]  # a tie beats neither
    assert pareto_front([(50, 100), (50, 120)]) == [False, True]  # as good on one, better on the other
    assert pareto_front([]) == []


def test_each_point_is_one_profile_on_its_rig_with_its_own_numbers(compared):
    chart = build_report(compared, REFERENCES).tradeoff
    points = {p.profile: p for p in chart.points}
    assert set(points) == {PROFILE, *OTHERS}
    for name, (rig, decode, passed) in OTHERS.items():
        point = points[name]
        assert (point.rig, point.decode_tps, point.passed.k, point.passed.n) == (rig, decode, passed, 5)
        assert point.label == f"{name} @ {rig}"
        low, high = wilson_interval(passed, 5)
        assert (point.passed.low, point.passed.high) == pytest.approx((100 * low, 100 * high))
    assert {p.profile for p in chart.points if p.frontier} == FRONT
    assert not points["bench-dominated"].frontier


def test_chart_draws_points_whiskers_and_frontier_marks(compared):
    report = build_report(compared, REFERENCES)
    chart = _chart(render_html(report))
    groups = _points(chart)
    assert set(groups) == {PROFILE, *OTHERS}
    zero = next(float(t.get("x")) for t in chart.iter(f"{SVG}text") if t.text == "0")  # the x axis origin
    by_profile = {p.profile: p for p in report.tradeoff.points}
    for name, group in groups.items():
        point = by_profile[name]
        circle = group.find(f"{SVG}circle")
        whisker = next(line for line in group.iter(f"{SVG}line") if line.get("class") == "whisker")
        cx, cy = float(circle.get("cx")), float(circle.get("cy"))
        top, bottom = float(whisker.get("y1")), float(whisker.get("y2"))
        assert float(whisker.get("x1")) == cx and top <= cy <= bottom  # SVG y grows downwards
        # where the point sits on its whisker is where the pass rate sits in its interval
        share = (point.passed.high - point.passed.pct) / (point.passed.high - point.passed.low)
        assert (cy - top) / (bottom - top) == pytest.approx(share, abs=0.01)
        ratio = (cx - zero) / (float(groups[PROFILE].find(f"{SVG}circle").get("cx")) - zero)
        assert ratio == pytest.approx(point.decode_tps / by_profile[PROFILE].decode_tps, rel=0.01)
        marked = "frontier" in group.get("class").split()
        assert marked == (name in FRONT), name
        label = "".join(group.find(f"{SVG}text").itertext())
        assert label.startswith(point.label) and label.endswith("(frontier)") == marked
    front_line = next(p for p in chart.iter(f"{SVG}polyline") if p.get("class") == "front-line")
    assert len(front_line.get("points").split()) == len(FRONT)


def test_frontier_marks_and_not_plotted_reasons_in_both_formats(compared):
    report = build_report(compared, REFERENCES)
    markdown, page = render_markdown(report), render_html(report)
    table = _table(markdown, "Quality versus speed")
    for name in [PROFILE, *OTHERS]:
        cells = _row(table, name)
        assert cells[-1] == ("frontier" if name in FRONT else ""), name
    assert _row(table, "bench-fast")[1:5] == ["rig2", "2/5", str(report.tradeoff.points[1].passed), "300.0"]
    not_plotted = dict(report.tradeoff.not_plotted)
    assert set(not_plotted) == {f"{BROKEN} @ local", "bench-nothroughput @ local"}
    assert not_plotted["bench-nothroughput @ local"] == (
        "no throughput result: throughput step failed (exit 2: endpoint unreachable: connection refused)")
    assert not_plotted[f"{BROKEN} @ local"].startswith("throughput and packs steps skipped (server did not start")
    for label, why in not_plotted.items():
        assert f"- {label}: {why}" in markdown
    items = re.search(r'<ul id="not-plotted">(.*?)</ul>', page, re.S).group(1)
    assert items.count("<li>") == 2 and "bench-nothroughput @ local: no throughput result" in items
    assert "bench-nothroughput" not in "".join(_points(_chart(page)))


def test_api_profile_without_decode_rate_is_not_plotted_and_says_why(compared):
    data = read_json(compared / "bench-fast" / "throughput.json")
    data["decode_tps"] = None
    write_json(compared / "bench-fast" / "throughput.json", data)
    manifest = read_json(compared / "manifest.json")
    record = next(p for p in manifest["profiles"] if p["profile"] == "bench-fast")
    record["provenance"]["is_api"] = True
    write_json(compared / "manifest.json", manifest)
    report = build_report(compared, REFERENCES)
    assert dict(report.tradeoff.not_plotted)["bench-fast @ rig2"] == (
        "throughput measured no decode rate (a hosted API: no token timings)")
    # bench-fast no longer beats PROFILE on speed, so the front changes with it
    assert {p.profile for p in report.tradeoff.points if p.frontier} == {PROFILE, "bench-best"}


def test_every_cross_profile_figure_names_its_rig(compared):
    report = build_report(compared, REFERENCES)
    markdown, page = render_markdown(report), render_html(report)
    summary = markdown.partition("## Summary")[2].partition("\n### ")[0]
    assert _row(summary, "bench-fast")[:3] == ["bench-fast", "rig2", "completed"]
    assert _row(summary, PROFILE)[1] == "local"
    assert "bench-fast @ rig2: Quality: " in markdown  # the paste-ready lines
    bars = re.search(r'aria-label="Decode tokens/s">(.*?)</svg>', page, re.S).group(1)
    assert "bench-fast @ rig2" in bars and f"{PROFILE} @ local" in bars
    packs = read_json(compared / PROFILE / "packs.json")
    packs["packs"][0]["agent_health"] = {
        "episodes": 3, "mean_turns_to_solve": 2.0, "tool_calls": 9, "hallucination_rate": 0.0,
        "schema_error_rate": 0.0, "loop_detections": 0, "refusals_of_safe_tasks": 0, "mean_sandbox_overhead_ms": None}
    write_json(compared / PROFILE / "packs.json", packs)
    agentic = _table(render_markdown(build_report(compared, REFERENCES)), "Agent packs across profiles")
    assert _row(agentic, PROFILE)[:3] == [PROFILE, "local", packs["packs"][0]["pack_id"]]


def test_one_rig_keeps_plain_labels(run_dir):
    add_profile(run_dir, "bench-other", decode_tps=90.0, passed=4)
    report = build_report(run_dir, REFERENCES)
    assert [p.label for p in report.tradeoff.points] == [PROFILE, "bench-other"]
    assert " @ " not in "".join(_points(_chart(render_html(report))))


def test_rigs_table_has_one_row_per_fingerprint(compared):
    manifest = read_json(compared / "manifest.json")
    manifest["rigs"] = {
        "local": {"rig": "local", "endpoint": "unix:///var/run/docker.sock", "engine_version": "27.3.1",
                  "os": "Debian GNU/Linux 12", "kernel": "6.1.0-25-amd64", "cpus": 16,
                  "memory_bytes": 64 * 2**30, "gpus": [], "gpu_note": "no nvidia runtime on this engine"},
        "rig2": {"rig": "rig2", "endpoint": "ssh://bench@rig2", "engine_version": "26.1.4", "os": "Ubuntu 24.04",
                 "kernel": "6.8.0-45", "cpus": 32, "memory_bytes": 128 * 2**30,
                 "gpus": ["NVIDIA GeForce RTX 3090, 24576 MiB"], "gpu_driver": "550.120"},
        "rig3": {"rig": "rig3", "endpoint": "ssh://bench@rig3", "reachable": False,
                 "note": "ssh: connect to host rig3 port 22: No route to host"},
    }
    write_json(compared / "manifest.json", manifest)
    report = build_report(compared, REFERENCES)
    markdown, page = render_markdown(report), render_html(report)
    table = _table(markdown, "Rigs")
    assert _row(table, "rig2") == ["rig2", "ssh://bench@rig2", "26.1.4", "Ubuntu 24.04 / 6.8.0-45", "32",
                                   "128.0 GiB", "NVIDIA GeForce RTX 3090, 24576 MiB (driver 550.120)", "reachable",
                                   "bench-fast, bench-best"]
    local = _row(table, "local")
    assert local[5:7] == ["64.0 GiB", "none — no nvidia runtime on this engine"]
    assert local[8] == f"{PROFILE}, {BROKEN}, bench-dominated, bench-nothroughput"
    rig3 = _row(table, "rig3")
    assert rig3[2] == "not recorded" and rig3[7] == "unreachable: ssh: connect to host rig3 port 22: No route to host"
    assert page.count("<tr>", page.index('<table id="rigs">'), page.index("</table>", page.index('id="rigs"'))) == 4


def test_a_rig_a_profile_used_without_a_fingerprint_is_said(compared):
    manifest = read_json(compared / "manifest.json")
    manifest["rigs"] = {"local": {"rig": "local", "engine_version": "27.3.1"}}
    write_json(compared / "manifest.json", manifest)
    row = _row(_table(render_markdown(build_report(compared, REFERENCES)), "Rigs"), "rig2")
    assert row[7].startswith("not recorded: no fingerprint") and row[8] == "bench-fast, bench-best"


def test_a_manifest_from_before_rigs_still_renders(run_dir):
    add_profile(run_dir, "bench-other", decode_tps=90.0, passed=4)
    manifest = read_json(run_dir / "manifest.json")
    for record in manifest["profiles"]:
        record.pop("rig", None)
    manifest.pop("rigs", None)
    write_json(run_dir / "manifest.json", manifest)
    report = build_report(run_dir, REFERENCES)
    assert {p.rig for p in report.profiles} == {"local"} and report.rigs == []
    markdown, page = render_markdown(report), render_html(report)
    assert "### Rigs" not in markdown and 'id="rigs"' not in page
    assert "Rigs: not recorded by this run; profiles ran on local." in markdown
    assert _row(markdown.partition("## Summary")[2], PROFILE)[1] == "local"
    assert [p.label for p in report.tradeoff.points] == [PROFILE, "bench-other"]
    assert set(_points(_chart(page))) == {PROFILE, "bench-other"}


def test_labels_in_the_chart_are_escaped(run_dir):
    set_rig(run_dir, PROFILE, "rig<b>&amp;")
    page = render_html(build_report(run_dir, REFERENCES))
    labels = ["".join(t.itertext()) for t in _chart(page).iter(f"{SVG}text")]
    assert f"{PROFILE} @ rig<b>&amp; (frontier)" in labels and "<b>" not in page.partition("<h1>")[2]


def test_labels_of_close_points_do_not_overlap(run_dir):
    for index, decode in enumerate((100.0, 104.5, 109.0, 113.5)):
        add_profile(run_dir, f"bench-close-{index}", rig="rig2", decode_tps=decode, passed=3)
    chart = scatter(build_report(run_dir, REFERENCES).tradeoff)
    boxes = []
    for dot in chart.points:
        width = len(dot.label) * 12 * 0.62  # the estimate the layout uses; the test checks the layout, not fonts
        x0 = dot.lx if dot.anchor == "start" else dot.lx - width
        boxes.append((x0, dot.ly - 11, x0 + width, dot.ly + 3))
    for i, (a0, b0, a1, b1) in enumerate(boxes):
        for c0, d0, c1, d1 in boxes[i + 1:]:
            assert a1 < c0 or c1 < a0 or b1 < d0 or d1 < b0, "two labels overlap"
    assert all(0 <= box[1] and box[2] <= chart.w for box in boxes)
    assert any(dot.leader for dot in chart.points)  # some label had to move away from its point
