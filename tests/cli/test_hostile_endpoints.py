"""Endpoints that answer badly: a 200 of the wrong shape, a body dripped one byte a second, a
stream cut short, credentials in the URL. Every verb that talks to a model turns each into a
failure with its evidence, within its deadline, and never into a traceback or a number."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.paths import default_data_dir
from tests.conftest import REPO_ROOT
from tests.doubles.model_server import Raw, Reply, ScriptedModelServer

MINI = default_data_dir() / "humanevalplus" / "HumanEvalPlus-Mini-v0.1.10.jsonl"
BAD_BODIES = {
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "list": b"[]",
    "choices-string": b'{"choices": "nope"}',
    "number-content": b'{"choices": [{"message": {"role": "assistant", "content": 12345}, "finish_reason": "stop"}]}',
    "truncated": b'{"choices": [{"message": {"role": "assistant", "content": "Par',
}


def _harness(*argv: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)


def _argv(verb: str, url: str, tmp: Path, timeout_s: str = "10") -> list[str]:
    return {
        "verify": ["verify", url, "--timeout-s", timeout_s],
        "throughput": ["throughput", url, "--runs", "1", "--warmup", "0", "--prompt-lengths", "20", "--prompt-runs",
                       "1", "--concurrency", "1", "--timeout-s", timeout_s, "--save-json", str(tmp / "t.json")],
        "packs": ["packs", "run", "--base-url", url, "--scenario", "reasonmath-15/shop-change", "--timeout-s",
                  timeout_s, "--retries", "0", "--save-json", str(tmp / "p.json"), "--no-progress"],
        "codegen": ["codegen", "--base-url", url, "--dataset-path", str(MINI), "--limit", "1", "--retries", "0",
                    "--timeout-s", timeout_s, "--out", str(tmp / "cg")],
    }[verb]


@pytest.mark.parametrize("verb", ["verify", "throughput", "packs", "codegen"])
@pytest.mark.parametrize("shape", list(BAD_BODIES))
def test_a_200_of_the_wrong_shape_is_a_failure_with_evidence(tmp_path, verb, shape):
    if verb == "codegen" and not MINI.is_file():
        pytest.skip(f"dataset not found: {MINI}")
    body = BAD_BODIES[shape]
    with ScriptedModelServer(lambda request: Raw(200, body, {"Content-Type": "application/json"})) as server:
        done = _harness(*_argv(verb, server.base_url, tmp_path))
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-2000:]
    if verb == "packs":
        assert done.returncode == 0, output[-2000:]
        scenario = json.loads((tmp_path / "p.json").read_text())["packs"][0]["scenarios"][0]
        assert scenario["failure_mode"] == "bad_reply" and scenario["detail"]
        assert "Quality: not reported" in done.stdout
    elif verb == "codegen":
        assert done.returncode == 1 and "request errors 1" in done.stdout
        record = json.loads((tmp_path / "cg" / "humaneval.jsonl").read_text().splitlines()[0])
        assert record["provenance"]["error"].startswith("bad_reply")
    elif verb == "verify":
        assert done.returncode >= 1 and "[FAIL]" in done.stdout
    else:  # throughput: a stream that is not a stream measures nothing
        assert done.returncode == 2 and not (tmp_path / "t.json").exists(), output[-2000:]


@pytest.mark.parametrize("verb", ["verify", "throughput", "packs", "codegen"])
def test_a_server_that_drips_one_byte_a_second_cannot_hang_a_verb(tmp_path, verb):
    if verb == "codegen" and not MINI.is_file():
        pytest.skip(f"dataset not found: {MINI}")
    drip = Raw(200, json.dumps({"choices": [{"message": {"content": "x" * 100}}]}).encode(), drip_s=1.0)
    with ScriptedModelServer(lambda request: drip) as server:
        started = time.monotonic()
        done = _harness(*_argv(verb, server.base_url, tmp_path, timeout_s="3"), timeout_s=90)
        seconds = time.monotonic() - started
    assert "Traceback" not in done.stdout + done.stderr
    # verify sends three requests, each bounded at 3 s; the others one or two
    assert seconds < 30, seconds


def test_a_stream_cut_short_is_not_a_measurement(tmp_path):
    cut = Reply(content="one two three four five six seven eight nine ten eleven twelve", stream_end=False,
                finish_reason=None)
    with ScriptedModelServer(lambda request: cut) as server:
        done = _harness(*_argv("throughput", server.base_url, tmp_path))
    assert done.returncode == 2 and "not a measurement" in done.stderr
    assert not (tmp_path / "t.json").exists()


def test_credentials_in_a_url_never_reach_a_result_or_the_screen(tmp_path):
    with ScriptedModelServer(lambda request: Reply(content="Closing. ANSWER: 10.95")) as server:
        url = server.base_url.replace("http://", "http://someone:hunter2secret@")
        done = _harness(*_argv("packs", url, tmp_path))
        auth = [r.headers.get("authorization", "") for r in server.requests]
    assert done.returncode == 0, done.stderr
    assert "hunter2secret" not in done.stdout + done.stderr
    assert b"hunter2secret" not in (tmp_path / "p.json").read_bytes()
    assert "***@" in json.loads((tmp_path / "p.json").read_text())["endpoint"]
    assert all(a.startswith("Basic ") for a in auth)  # the credentials still went where they belong
