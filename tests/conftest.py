"""Shared fixtures: a scratch models.conf with a real (tiny) model file beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

GOOD_PROFILE = """\
[DEFAULT]
GPUS=none

[bench-tiny]
NAME=Tiny
MODEL=tiny.gguf
IMAGE=img:1
CTX_SIZE=1024
PORT=18500
"""


@pytest.fixture
def write_conf(tmp_path: Path):
    """Write a models.conf (and an empty models/tiny.gguf) and return its path."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.gguf").write_bytes(b"GGUF")

    def _write(text: str) -> Path:
        path = tmp_path / "models.conf"
        path.write_text(text)
        return path

    return _write
