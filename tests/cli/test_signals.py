"""Ctrl-C during a long request: the verb leaves within 2 s instead of waiting out the request's
budget, says what is kept and how to resume, and the resume finishes the rest."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.packs import loader
from harness.paths import default_data_dir
from tests.conftest import REPO_ROOT
from tests.doubles.model_server import Reply, ScriptedModelServer
from tests.doubles.scripted_server import ScriptedModel

PACK = loader.discover_packs(REPO_ROOT / "packs")["reasonmath-15"]
MINI = default_data_dir() / "humanevalplus" / "HumanEvalPlus-Mini-v0.1.10.jsonl"


def _start(argv: list[str]) -> subprocess.Popen:
    """Start a verb as a terminal would: SIGINT at its default even when this test runs in the
    background (a background job inherits SIGINT ignored, and Python then never sees Ctrl-C)."""
    return subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _interrupt_when(process: subprocess.Popen, ready, limit_s: float = 30) -> float:
    """Send SIGINT once ``ready()``; returns the seconds the process took to exit after it."""
    deadline = time.monotonic() + limit_s
    while not ready():
        assert time.monotonic() < deadline and process.poll() is None, "never got going"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    process.wait(timeout=30)
    return time.monotonic() - sent


def test_ctrl_c_during_packs_leaves_at_once_and_the_resume_finishes(tmp_path):
    save = tmp_path / "r.json"
    slow = {s.id: "slow" for s in PACK.scenarios[3:]}
    with ScriptedModel(PACK.scenarios, modes=slow, delay_s=60, slots=1) as model:
        argv = [sys.executable, "-m", "harness", "packs", "run", "--base-url", model.base_url, "--pack",
                "reasonmath-15", "--timeout-s", "120", "--parallel", "1", "--save-json", str(save), "--no-progress"]
        process = _start(argv)
        journal = save.with_name(save.name + ".journal.jsonl")
        seconds = _interrupt_when(process, lambda: journal.is_file() and len(journal.read_text().splitlines()) >= 4)
        stderr = process.stderr.read()
        assert seconds < 2, seconds
        assert process.returncode == 130
        assert "interrupted: 3 finished scenario(s) are kept in" in stderr and "--resume" in stderr, stderr
        assert not save.exists()
        model.modes = {}  # the model is quick now
        done = subprocess.run([*argv, "--resume"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(save.read_text())
    assert result["packs"][0]["total"] == 15 and result["packs"][0]["passed"] == 15


def test_ctrl_c_during_codegen_leaves_at_once_and_keeps_finished_tasks(tmp_path):
    if not MINI.is_file():
        pytest.skip(f"dataset not found: {MINI}")
    answered = {"n": 0}

    def answer(request):
        answered["n"] += 1
        if answered["n"] > 2:
            time.sleep(60)
        return Reply(content="```python\ndef f():\n    return 1\n```")

    with ScriptedModelServer(answer) as server:
        argv = [sys.executable, "-m", "harness", "codegen", "--base-url", server.base_url, "--dataset-path",
                str(MINI), "--limit", "6", "--parallel", "1", "--out", str(tmp_path / "cg")]
        process = _start(argv)
        samples = tmp_path / "cg" / "humaneval.jsonl"
        seconds = _interrupt_when(process, lambda: samples.is_file() and len(samples.read_text().splitlines()) >= 2)
        stderr = process.stderr.read()
    assert seconds < 2, seconds
    assert process.returncode == 130 and "finished tasks are kept in" in stderr, stderr
    assert len(Path(samples).read_text().splitlines()) == 2
