"""Numeric flags on every verb are checked by the parser, with the allowed range in the message:
no traceback, no silent default, nothing sent or started."""

from __future__ import annotations

import pytest

from harness.cli.main import build_parser

URL = "http://127.0.0.1:9"
CASES = [
    (["throughput", URL, "--runs", "0"], "--runs: must be >= 1"),
    (["throughput", URL, "--max-tokens", "0"], "--max-tokens: must be >= 2"),
    (["throughput", URL, "--timeout-s", "0"], "--timeout-s/--timeout: must be > 0"),
    (["throughput", URL, "--concurrency", "0"],
     "--concurrency: expected comma-separated stream counts: must be >= 1, got '0'"),
    (["verify", URL, "--timeout-s", "-1"], "--timeout-s/--timeout: must be > 0"),
    (["codegen", "--base-url", URL, "--out", "o", "--parallel", "-1"], "--parallel: must be >= 1"),
    (["codegen", "--base-url", URL, "--out", "o", "--limit", "0"], "--limit: must be >= 1"),
    (["codegen", "--base-url", URL, "--out", "o", "--limit", "-1"], "--limit: must be >= 1"),
    (["codegen", "--base-url", URL, "--out", "o", "--max-tokens", "-5"], "--max-tokens: must be >= 1"),
    (["diff", "a", "b", "--alpha", "-1"], "--alpha: must be > 0 and <= 0.5"),
    (["diff", "a", "b", "--alpha", "nan"], "--alpha: must be > 0 and <= 0.5"),
    (["diff", "a", "b", "--margin", "0"], "--margin: must be > 0 and < 100 percentage points"),
    (["diff", "a", "b", "--margin", "nan"], "--margin:"),
    (["baseline", "check", "p", "--margin", "100"], "--margin: must be > 0 and < 100 percentage points"),
    (["packs", "run", "--base-url", URL, "--timeout-per-case", "nan"], "--timeout-s/--timeout-per-case: must be > 0"),
    (["packs", "run", "--base-url", URL, "--temperature", "nan"], "--temperature: must be >= 0"),
    (["packs", "run", "--base-url", URL, "--concurrency", "0"], "--parallel/--concurrency: must be >= 1"),
    (["baseline", "capture", "p", "--min-runs", "0"], "--min-runs: must be >= 3"),
    (["all-bench", "--evalplus-limit", "0"], "--evalplus-limit: must be >= 1"),
    (["throughput", URL, "--runs", "1e999"], "--runs: expected a whole number"),
    (["throughput", URL, "--timeout-s", "inf"], "--timeout-s/--timeout: must be > 0 and <= 86400"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_an_out_of_range_number_is_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
