"""The hostile-input sweep's quick form (a sample of every class of bad input and fault): no
tracebacks, no hangs, no half-written outputs, no silent wrong results. `python
scripts/hostile_sweep.py` runs every probe."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import REPO_ROOT


def test_the_quick_hostile_sweep_finds_nothing():
    spec = importlib.util.spec_from_file_location("hostile_sweep", REPO_ROOT / "scripts" / "hostile_sweep.py")
    assert spec and spec.loader
    sweep = importlib.util.module_from_spec(spec)
    sys.modules["hostile_sweep"] = sweep  # dataclasses look their module up there
    spec.loader.exec_module(sweep)
    tally = sweep.sweep(quick=True)
    assert tally.probes >= 20
    found = {"tracebacks": tally.tracebacks, "hangs": tally.hangs, "half-written": tally.half_written,
             "silent wrong": tally.silent_wrong}
    assert not any(found.values()), found
