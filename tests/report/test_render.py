"""REPORT.md and report.html from the fixture run: the numbers of the result files, the verify
check list and the provenance the manifest recorded, in both formats."""

from __future__ import annotations

import html
import json
import re

from harness.report.build import build_report
from harness.report.model import ProfileReport, Report
from harness.report.render import render_html, render_markdown, write_reports
from tests.conftest import REPO_ROOT
from tests.report.fixture import BROKEN, PROFILE, expected_numbers, read_json

REFERENCES = REPO_ROOT / "reference-scores.json"


def _section(markdown: str, profile: str) -> str:
    return markdown.split(f"\n## {profile}")[1].split("\n## ")[0]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_markdown_summary_and_sections_carry_the_result_numbers(run_dir):
    numbers = expected_numbers(run_dir)
    markdown = render_markdown(build_report(run_dir, REFERENCES))
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {PROFILE} "))
    cells = _cells(row)
    assert cells[:3] == [PROFILE, "local", "completed"]
    assert cells[3].startswith(numbers["humaneval_base"] + " [")
    assert cells[4].startswith(numbers["humaneval_plus"] + " [")
    assert cells[5:] == [numbers["packs"], numbers["decode"], numbers["ttft"]]
    section = _section(markdown, PROFILE)
    eval_row = _cells(next(line for line in section.splitlines() if line.startswith("| HumanEval+ ")))
    evalplus = read_json(run_dir / PROFILE / "evalplus" / "humaneval" / "humaneval.result.json")
    assert eval_row[1] == str(evalplus["n_tasks"]) and eval_row[4] == str(evalplus["counts"]["empty"])
    assert re.fullmatch(re.escape(numbers["humaneval_plus"]) + r" \[\d+\.\d–\d+\.\d\]", eval_row[3])
    for pack in read_json(run_dir / PROFILE / "packs.json")["packs"]:
        cells = _cells(next(line for line in section.splitlines() if line.startswith(f"| {pack['pack_id']} ")))
        assert cells[1:3] == [pack["version"], f"{pack['passed']}/{pack['total']}"]
        assert float(cells[4]) == round(pack["mean_score"], 1)
    throughput = read_json(run_dir / PROFILE / "throughput.json")
    assert "| Decode tokens/s, median (min–max) " in section and f" {numbers['decode']} " in section
    assert f" {numbers['wall']} " in section
    for level in throughput["concurrency"]:
        line = next(x for x in section.splitlines() if f"at {level['streams']} stream(s)" in x)
        assert _cells(line)[1] == f"{level['aggregate_tps']:.1f}"


def test_markdown_lists_the_verify_checks(run_dir):
    section = _section(render_markdown(build_report(run_dir, REFERENCES)), PROFILE)
    assert "### Verify" in section
    for check in read_json(run_dir / PROFILE / "verify.json")["checks"]:
        line = next(x for x in section.splitlines() if f"| {check['name']} " in x)
        assert _cells(line)[:3] == [check["kind"], check["name"], "PASS" if check["passed"] else "FAIL"]
    assert "### Verify" not in _section(render_markdown(build_report(run_dir, REFERENCES)), BROKEN)


def test_markdown_provenance_is_the_manifests(run_dir):
    manifest = read_json(run_dir / "manifest.json")
    recorded = next(p for p in manifest["profiles"] if p["profile"] == PROFILE)["provenance"]
    markdown = render_markdown(build_report(run_dir, REFERENCES))
    assert f"commit `{manifest['provenance']['git_commit']} (dirty tree)`" in markdown
    assert f"benchwright {manifest['provenance']['harness_version']}" in markdown
    section = _section(markdown, PROFILE)
    assert section.startswith(f" — {recorded['resolved']['NAME']}\n")
    for value in (recorded["image"], recorded["image_id"], recorded["model_sha256"], recorded["model_path"]):
        assert value in section


def test_html_carries_the_same_numbers_checks_and_provenance(run_dir):
    numbers = expected_numbers(run_dir)
    page = render_html(build_report(run_dir, REFERENCES))
    text = html.unescape(page)
    for value in numbers.values():
        assert value in text, value
    for check in read_json(run_dir / PROFILE / "verify.json")["checks"]:
        assert f"<td>{check['name']}</td><td class=\"{'pass' if check['passed'] else 'fail'}\">" in text
        assert check["detail"] in text
    recorded = next(p for p in read_json(run_dir / "manifest.json")["profiles"] if p["profile"] == PROFILE)
    assert recorded["provenance"]["image_id"] in text and recorded["provenance"]["model_sha256"] in text
    assert '<table class="verify">' in page and page.count("<svg") >= 2
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external assets


def test_html_escapes_what_the_model_said(run_dir):
    report = build_report(run_dir, REFERENCES)
    profile = next(p for p in report.profiles if p.profile == PROFILE)
    profile.verify[0].detail = "<script>alert(1)</script>"
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_markdown_table_cells_stay_on_one_row():
    report = Report(generated_at="now", run_id="r", profiles=[ProfileReport(
        profile="p", status="failed", steps=[("up", "failed", 1.0, "exit 2: a | b\nsecond line")])])
    markdown = render_markdown(report)
    line = next(x for x in markdown.splitlines() if x.startswith("| up "))
    assert "a \\| b second line" in line and len(_cells(line.replace("\\|", "/"))) == 4


def test_write_reports_writes_both_files(run_dir, tmp_path):
    markdown, page = write_reports(build_report(run_dir, REFERENCES), tmp_path / "out")
    assert markdown.read_text().startswith("# benchwright report") and page.read_text().startswith("<!DOCTYPE html>")


def test_agent_health_of_sandboxed_packs_is_in_both_formats(run_dir):
    packs_path = run_dir / PROFILE / "packs.json"
    data = read_json(packs_path)
    data["packs"][0]["agent_health"] = {"episodes": 40, "mean_turns_to_solve": 3.25, "tool_calls": 200,
                                        "hallucination_rate": 0.035, "schema_error_rate": 0.01,
                                        "loop_detections": 2, "refusals_of_safe_tasks": 1,
                                        "mean_sandbox_overhead_ms": 812.0}
    packs_path.write_text(json.dumps(data))
    report = build_report(run_dir, REFERENCES)
    pack_id = data["packs"][0]["pack_id"]
    row = next(line for line in _section(render_markdown(report), PROFILE).splitlines()
               if line.startswith(f"| {pack_id} ") and "3.2" in line)
    assert _cells(row) == [pack_id, "40", "3.2", "3.5%", "1.0%", "2", "1", "n/a", "0.81"]
    page = render_html(report)
    assert "Agent health (agent packs)" in page and "<td class=\"num\">3.5%</td>" in page
    assert "Agent health" not in render_markdown(build_report(_without_health(run_dir, packs_path), REFERENCES))


def _without_health(run_dir, packs_path):
    data = read_json(packs_path)
    data["packs"][0].pop("agent_health")
    packs_path.write_text(json.dumps(data))
    return run_dir


def test_judged_scores_are_marked_with_the_judge_and_its_calibration(run_dir):
    packs_path = run_dir / PROFILE / "packs.json"
    data = read_json(packs_path)
    pack = data["packs"][0]
    pack["scenarios"][0]["scenario"]["verifier"] = {"type": "rubric", "rubric": {}}
    pack["agent_health"] = {"episodes": 3, "mean_turns_to_solve": 2.0, "tool_calls": 9, "hallucination_rate": 0.0,
                            "schema_error_rate": 0.0, "loop_detections": 0, "refusals_of_safe_tasks": 0,
                            "false_premises": 2, "sycophancy_rate": 0.5, "mean_sandbox_overhead_ms": None}
    data["judge"] = {"model": "judge-7b", "endpoint": "http://127.0.0.1:9000", "profile": "bench-judge",
                     "calibration": {"items": [], "tasks": 2, "separated": 1, "agreement": 0.5,
                                     "rank_correlation": 0.45, "errors": 0}}
    data["notes"] = ["repo-12: 2 rubric-judged scenario(s) not run (auth-plan, compare-libs): no --judge PROFILE "
                     "given"]
    packs_path.write_text(json.dumps(data))
    report = build_report(run_dir, REFERENCES)
    markdown, page = render_markdown(report), render_html(report)
    line = ("Judged scores come from judge-7b (profile bench-judge), an LLM's judgement, not a check; calibration: "
            "strong reference above weak in 1/2 task(s), rank correlation +0.45.")
    assert line in markdown and line.replace("'", "&#39;") in page
    assert "complete · 1 judged" in markdown
    assert "Note: repo-12: 2 rubric-judged scenario(s) not run" in markdown and "Note: repo-12" in page
    assert "50% of 2" in markdown
    # the cross-profile agent table: quality, time per turn, tokens; no prices -> no cost
    table = markdown.partition("### Agent packs across profiles")[2].partition("\n## ")[0]
    row = next(x for x in table.splitlines() if x.startswith(f"| {PROFILE} "))
    cells = _cells(row)
    scenarios = pack["scenarios"]
    tokens = sum(s["prompt_tokens"] + s["completion_tokens"] for s in scenarios) / len(scenarios)
    assert cells[:4] == [PROFILE, "local", pack["pack_id"], f"{pack['passed']}/{pack['total']}"]
    assert cells[8] == f"{tokens:.0f}" and cells[9] == "n/a"
    assert 'id="agentic"' in page


def test_agent_pack_cost_comes_from_the_prices_the_run_recorded(run_dir):
    packs_path = run_dir / PROFILE / "packs.json"
    data = read_json(packs_path)
    pack = data["packs"][0]
    pack["agent_health"] = {"episodes": 1, "mean_turns_to_solve": None, "tool_calls": 0, "hallucination_rate": None,
                            "schema_error_rate": None, "loop_detections": 0, "refusals_of_safe_tasks": 0,
                            "mean_sandbox_overhead_ms": None}
    packs_path.write_text(json.dumps(data))
    manifest = read_json(run_dir / "manifest.json")
    resolved = manifest["profiles"][0]["provenance"]["resolved"]
    resolved.update(PRICE_IN_PER_MTOK=3.0, PRICE_OUT_PER_MTOK=15.0)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    row = build_report(run_dir, REFERENCES).profiles[0].agentic[0]
    prompt = sum(s["prompt_tokens"] for s in pack["scenarios"])
    completion = sum(s["completion_tokens"] for s in pack["scenarios"])
    assert row.cost_usd == round((prompt * 3.0 + completion * 15.0) / 1_000_000, 4) and row.cost_usd > 0
