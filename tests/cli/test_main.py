"""The CLI as a user types it: one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import GOOD_PROFILE, REPO_ROOT


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, timeout=120)


@pytest.mark.parametrize("verb", ["env", "up", "wait", "verify"])
def test_bad_config_is_one_line_and_exit_2(write_conf, verb):
    path = write_conf(GOOD_PROFILE.replace("CTX_SIZE=1024", "CTX_SIZE=big"))
    done = run_cli(verb, "bench-tiny", "--config", str(path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {path}:8: [bench-tiny] CTX_SIZE: expected a whole number, got 'big'"
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_profiles_lists_model_existence(write_conf):
    path = write_conf(GOOD_PROFILE + "\n[other]\nNAME=O\nMODEL=gone.gguf\nIMAGE=i\nCTX_SIZE=1\nPORT=2\n")
    done = run_cli("profiles", "--config", str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("bench-tiny" in line and "tiny.gguf" in line and "yes" in line for line in lines)
    assert any(line.startswith("other") and "MISSING" in line for line in lines)


def test_env_writes_file_with_header(write_conf, tmp_path):
    path = write_conf(GOOD_PROFILE)
    out = tmp_path / "x.env"
    done = run_cli("env", "bench-tiny", "--config", str(path), "--out", str(out))
    assert done.returncode == 0 and done.stdout.strip() == str(out)
    text = out.read_text()
    assert text.startswith("# Written by benchwright for profile [bench-tiny]")
    assert "CTX_SIZE='1024'" in text and "PORT='18500'" in text


def test_debug_shows_traceback(write_conf):
    path = write_conf(GOOD_PROFILE.replace("PORT=18500", "PORT=0"))
    done = run_cli("env", "bench-tiny", "--config", str(path), "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_verify_unreachable_url_counts_a_failure():
    done = run_cli("verify", "http://127.0.0.1:9", "--timeout", "2")
    assert done.returncode == 1
    assert "[FAIL] server     endpoint reachable" in done.stdout
