"""The packs runner against the real embedded llama-server (SmolLM2-135M): `--quick` completes.

Scores are whatever the tiny model earns; the test checks the run completes, the result JSON
is valid, and every failed scenario carries a failure mode and a reason.
"""

from __future__ import annotations

import json

import pytest

from harness.cli import main as cli
from harness.packs.runner import read_result
from harness.packs.schema import FAILURE_MODES


@pytest.mark.docker
@pytest.mark.server
def test_quick_run_against_the_real_server(embedded_server, tmp_path, capsys):
    out = tmp_path / "quick.json"
    code = cli.main(["packs", "run", "--base-url", embedded_server.base_url, "--quick", "--max-tokens", "32",
                     "--save-json", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Quality: instructfollow-15" in printed.out and "| Pack" in printed.out
    result = read_result(out)
    assert result.complete and result.concurrency == 2 and result.timeouts.measured_tps
    assert [p.total for p in result.packs] == [15, 15]
    for pack in result.packs:
        for scenario in pack.scenarios:
            assert scenario.failure_mode in FAILURE_MODES
            assert scenario.exchanges and scenario.exchanges[0].request["max_tokens"] <= 32
            if scenario.status != "pass":
                assert scenario.failure_mode != "passed" and scenario.detail
            assert scenario.failure_mode not in ("server_error", "endpoint_unreachable", "http_error"), scenario.detail
    assert json.loads(out.read_text())["schema_version"] == 1
