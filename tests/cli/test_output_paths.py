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


def _null_device(folder: Path) -> Path:
    """A character device like /dev/null, made in the test's own folder: were the refusal to fail,
    a scratch node is replaced, never the machine's /dev/null."""
    node = folder / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot make a device node here (not root)")
    return node


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
    out = {"device": _null_device(tmp_path), "symlink": tmp_path / "link.json", "directory": tmp_path}[kind]
    if kind == "symlink":
        out.symlink_to(target)
    with ScriptedModelServer() as server:
        done = _harness(*_verbs(server.base_url, out)[verb])
        chat_requests = [r for r in server.requests if r.wire]
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and str(out) in done.stderr, done.stderr
    assert not chat_requests
    assert kind != "device" or stat.S_ISCHR(os.lstat(out).st_mode)
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


@pytest.fixture
def small_mount(tmp_path):
    """Mount a tmpfs (read-only or tiny) at a scratch folder; skipped where mounting is not allowed."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_a_read_only_folder_is_refused_before_any_request(small_mount):
    readonly = small_mount("size=64k,ro")
    with ScriptedModelServer() as server:
        done = _harness(*_verbs(server.base_url, readonly / "r.json")["packs"])
        asked = [r for r in server.requests if r.wire]
    assert done.returncode == 2 and "cannot write here (Read-only file system)" in done.stderr, done.stderr
    assert not asked


def test_a_full_disk_at_write_time_is_one_line_and_no_partial_file(small_mount):
    full = small_mount("size=16k")
    with pytest.raises(OutputPathError, match="No space left on device"):
        write_text_atomic(full / "r.json", "x" * 100_000)
    assert list(full.iterdir()) == []
