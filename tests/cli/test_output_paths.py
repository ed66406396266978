"""Where results go: a device node, a symlink or a directory given as the output file is refused
before any work, in one line; a write that fails leaves no partial file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.files import OutputPathError, write_text_atomic
from harness.paths import default_data_dir
from tests.conftest import REPO_ROOT
from tests.doubles.model_server import ScriptedModelServer

MINI = default_data_dir() / "humanevalplus" / "HumanEvalPlus-Mini-v0.1.10.jsonl"


def _harness(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def _verbs(url: str, out: Path) -> dict[str, list[str]]:
    return {
        "verify": ["verify", url, "--save-json", str(out)],
        "throughput": ["throughput", url, "--runs", "1", "--warmup", "0", "--prompt-lengths", "20",
                       "--concurrency", "1", "--save-json", str(out)],
        "packs": ["packs", "run", "--base-url", url, "--pack", "reasonmath-15", "--save-json", str(out)],
    }


@pytest.mark.parametrize("verb", ["verify", "throughput", "packs"])
@pytest.mark.parametrize("kind", ["device", "symlink", "directory"])
def test_a_result_path_that_is_not_a_file_is_refused_before_any_request(tmp_path, verb, kind):
    target = tmp_path / "elsewhere.json"
    target.write_text("keep me")
    out = {"device": Path("/dev/null"), "symlink": tmp_path / "link.json", "directory": tmp_path}[kind]
    if kind == "symlink":
        out.symlink_to(target)
    with ScriptedModelServer() as server:
        done = _harness(*_verbs(server.base_url, out)[verb])
        chat_requests = [r for r in server.requests if r.wire]
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and str(out) in done.stderr, done.stderr
    assert not chat_requests
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert target.read_text() == "keep me" and (kind != "symlink" or out.is_symlink())


def test_codegen_refuses_a_file_as_its_out_folder(tmp_path):
    if not MINI.is_file():
        pytest.skip(f"dataset not found: {MINI}")
    (tmp_path / "out").write_text("a file")
    with ScriptedModelServer() as server:
        done = _harness("codegen", "--base-url", server.base_url, "--dataset-path", str(MINI), "--limit", "1",
                        "--out", str(tmp_path / "out"))
        asked = [r for r in server.requests if r.wire]
    assert done.returncode == 2 and "--out must be a folder" in done.stderr and not asked


def test_a_failed_write_is_one_error_and_leaves_no_partial_file(tmp_path):
    (tmp_path / "blocked").write_text("")  # a file where the folder should be: every write below it fails
    target = tmp_path / "blocked" / "r.json"
    with pytest.raises(OutputPathError, match="cannot write"):
        write_text_atomic(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked"]
    readonly = tmp_path / "ro.json"
    readonly.write_text("old")
    write_text_atomic(readonly, "new")  # a regular file is replaced atomically
    assert readonly.read_text() == "new" and not (tmp_path / "ro.json.partial").exists()
