"""The committed hand-made run directory, copied per test so that a test may break or edit it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.report.fixture import RUN_FIXTURE


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A copy of the fixture run whose manifest points at tmp_path/models.conf (not written)."""
    target = tmp_path / "results" / "20260301-220000"
    shutil.copytree(RUN_FIXTURE, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["config"] = str(tmp_path / "models.conf")
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return target
