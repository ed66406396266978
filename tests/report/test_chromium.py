"""report.html in a real headless Chromium: it draws, the quality-versus-speed chart is there, and a link
to a scenario opens its drill-down (and only it) with no script on the page."""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import quote

import pytest

from harness.report.build import build_report
from harness.report.render import write_reports
from tests.conftest import REPO_ROOT
from tests.report.fixture import PROFILE, add_profile, read_json

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROME = [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
          "--window-size=1200,1600"]

pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium not installed (CI installs it: scripts/provision-test-tools.sh)")


def test_report_opens_in_chromium_and_a_link_opens_one_scenario(run_dir, tmp_path):
    add_profile(run_dir, "bench-fast", rig="rig2", decode_tps=300.0, passed=2)
    _, page = write_reports(build_report(run_dir, REPO_ROOT / "reference-scores.json"), tmp_path / "out")
    screenshot = tmp_path / "report.png"
    subprocess.run([*CHROME, f"--screenshot={screenshot}", page.as_uri()], capture_output=True, timeout=120)
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000

    failed = next(s for p in read_json(run_dir / PROFILE / "packs.json")["packs"] for s in p["scenarios"]
                  if s["status"] == "fail")
    anchor = f"s:{PROFILE}/{failed['pack_id']}/{failed['scenario_id']}"
    dom = subprocess.run([*CHROME, "--dump-dom", f"{page.as_uri()}#{quote(anchor)}"], capture_output=True,
                         text=True, timeout=120).stdout
    assert re.search(r'<svg id="tradeoff-chart"', dom) and dom.count('<g class="point') == 2
    assert "bench-fast @ rig2 (frontier)" in dom
    # following the link opened the scenario's <details> and its pack's, nothing else
    opened = re.findall(r'<details class="(\w+)" open="">(.*?)(?=<details|$)', dom, re.S)
    assert [kind for kind, _ in opened] == ["pack", "sc"], [kind for kind, _ in opened]
    assert failed["pack_id"] in opened[0][1] and f'id="{anchor}"' in opened[1][1]
    assert "<script" not in dom
