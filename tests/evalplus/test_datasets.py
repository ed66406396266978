"""`make data` (`python -m harness data`) against a real HTTP server laid out like GitHub's release URLs."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading

import pytest

from harness.paths import default_data_dir
from tests.cli.test_main import run_cli

MINI = default_data_dir() / "humanevalplus" / "HumanEvalPlus-Mini-v0.1.10.jsonl"
RELEASE = "evalplus/humanevalplus_release/releases/download/v0.1.10"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A static file server; tests put release files under its root."""
    root = tmp_path / "mirror"
    (root / RELEASE).mkdir(parents=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_release_file_is_downloaded_uncompressed_and_checked_against_its_md5(mirror, tmp_path):
    if not MINI.is_file():
        pytest.skip(f"dataset not found: {MINI}")
    root, url = mirror
    (root / RELEASE / "HumanEvalPlus-Mini.jsonl.gz").write_bytes(gzip.compress(MINI.read_bytes()))
    data_dir = tmp_path / "data"
    done = run_cli("data", "humaneval-mini", "--data-dir", str(data_dir), "--mirror", url)
    assert done.returncode == 0, done.stderr
    target = data_dir / "humanevalplus" / "HumanEvalPlus-Mini-v0.1.10.jsonl"
    assert target.read_bytes() == MINI.read_bytes()
    assert "the file this harness is tested with" in done.stdout
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_a_different_file_is_kept_but_named_as_different(mirror, tmp_path):
    if not MINI.is_file():
        pytest.skip(f"dataset not found: {MINI}")
    root, url = mirror
    first_task_only = MINI.read_bytes().splitlines(keepends=True)[0]
    (root / RELEASE / "HumanEvalPlus-Mini.jsonl.gz").write_bytes(gzip.compress(first_task_only))
    done = run_cli("data", "humaneval-mini", "--data-dir", str(tmp_path / "data"), "--mirror", url)
    assert done.returncode == 0, done.stderr
    assert "differs from the tested file's 401e75ad986361dccc7afecb4121e295" in done.stdout


@pytest.mark.parametrize("content", [None, b"not gzip at all", gzip.compress(b"<html>rate limited</html>\n")],
                         ids=["missing", "not-gzip", "not-a-dataset"])
def test_a_bad_download_is_one_line_and_leaves_nothing(mirror, tmp_path, content):
    root, url = mirror
    if content is not None:
        (root / RELEASE / "HumanEvalPlus.jsonl.gz").write_bytes(content)
    data_dir = tmp_path / "data"
    done = run_cli("data", "humaneval", "--data-dir", str(data_dir), "--mirror", url)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{url}/{RELEASE}/HumanEvalPlus.jsonl.gz" in done.stderr
    assert not list(data_dir.rglob("*.jsonl*"))
