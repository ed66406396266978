"""harness.endpoint.sweep: the pure figures, the load generator against scripted servers with a
known capacity, the overhead check against the instant server, and one short real-server sweep."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.endpoint.sweep import (
    Percentiles,
    SweepRecord,
    SweepResult,
    SweepSettings,
    concurrency_ladder,
    default_rates,
    format_sweep,
    measure_client_overhead,
    parse_slo,
    percentile,
    run_sweep,
    summarize_point,
)
from tests.doubles.model_server import Reply, Request, ScriptedModelServer, json_raw

QUIET = dict(overhead_check=False, warmup_requests=0)


def serialized_server(service_s: float, capacity: int = 1, tokens: int = 4) -> ScriptedModelServer:
    """A server that works on at most ``capacity`` requests at once, each for ``service_s`` before its
    first token (the rest wait their turn, as in a llama.cpp slot queue)."""
    gate = threading.Semaphore(capacity)

    def respond(request: Request) -> Reply:
        with gate:
            time.sleep(service_s)
        return Reply(content=" ".join(f"t{i}" for i in range(tokens)), finish_reason="length",
                     usage={"prompt_tokens": 20, "completion_tokens": tokens})

    return ScriptedModelServer(respond, slots=capacity)


def record(index: int, ttft_ms: float | None, e2e_ms: float | None, tokens: int | None = 4,
           error: str | None = None) -> SweepRecord:
    return SweepRecord(index=index, scheduled_s=index * 0.5, sent_s=index * 0.5,
                       ended_s=index * 0.5 + (e2e_ms or 10) / 1000, send_lag_ms=0.0, ttft_ms=ttft_ms,
                       e2e_ms=e2e_ms, completion_tokens=tokens, token_count_source="usage", chunks=tokens or 0,
                       tpot_ms=(e2e_ms - ttft_ms) / (tokens - 1) if e2e_ms and ttft_ms and tokens else None,
                       itl_max_ms=20.0, finish_reason="length", error=error)


# ---------------------------------------------------------------- pure pieces

def test_percentile_interpolates_linearly_between_order_statistics():
    values = [4.0, 1.0, 3.0, 2.0]  # order does not matter
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile([7.0], 99) == 7.0
    data = [0.3, 9.0, 1.5, 2.2, 40.0, 3.3, 5.0]
    inclusive = statistics.quantiles(data, n=100, method="inclusive")  # the same rule, independently
    assert percentile(data, 90) == pytest.approx(inclusive[89]) and percentile(data, 99) == pytest.approx(inclusive[98])
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_percentiles_skip_missing_values():
    p = Percentiles.of([None, 10.0, 20.0, None, 30.0])
    assert (p.n, p.p50, p.mean) == (3, 20.0, 20.0) and p.p50 <= p.p90 <= p.p99 <= 30.0
    assert Percentiles.of([None]) is None


def test_slo_parsing_names_the_bad_key_or_value():
    assert parse_slo("ttft_ms=500, itl_ms=50,tpot_ms=20,e2e_ms=3000") == {
        "ttft_ms": 500.0, "itl_ms": 50.0, "tpot_ms": 20.0, "e2e_ms": 3000.0}
    with pytest.raises(ValueError, match="'ttft'"):
        parse_slo("ttft=500")
    with pytest.raises(ValueError, match="itl_ms.*'fast'"):
        parse_slo("ttft_ms=500,itl_ms=fast")
    with pytest.raises(ValueError, match="e2e_ms"):
        parse_slo("e2e_ms=-1")
    with pytest.raises(ValueError, match="no SLO"):
        parse_slo(" , ")


def test_goodput_counts_only_requests_within_every_slo():
    records = [record(0, 100, 400), record(1, 900, 1200), record(2, 150, 5000), record(3, None, None, None, "boom")]
    point = summarize_point("concurrency", 2, records, [10.0, 20.0, 30.0], {"ttft_ms": 500, "e2e_ms": 2000})
    assert [r.met_slo for r in point.records] == [True, False, False, False]
    assert point.goodput_rps == pytest.approx(1 / point.wall_s)
    assert point.request_tps == pytest.approx(3 / point.wall_s) and point.errors == 1
    assert point.first_error == "boom" and point.ttft_ms.n == 3 and point.itl_ms.p50 == 20.0
    assert point.tpot_ms.p50 == pytest.approx(100.0)  # (400 - 100) / 3, (1200 - 900) / 3, (5000 - 150) / 3
    no_slo = summarize_point("concurrency", 2, records, [], {})
    assert no_slo.goodput_rps is None and all(r.met_slo is None for r in no_slo.records)


def test_ladder_runs_to_twice_the_slots_and_always_includes_them():
    assert concurrency_ladder(1) == [1, 2]
    assert concurrency_ladder(2) == [1, 2, 4]
    assert concurrency_ladder(3) == [1, 2, 3, 4, 6]
    assert concurrency_ladder(8) == [1, 2, 4, 8, 16]
    assert default_rates(10.0, [0.25, 0.5, 1.0]) == [2.5, 5.0, 10.0]


def test_cli_bad_slo_is_one_line_naming_the_key(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "http://127.0.0.1:9", "--slo", "ttft_ms=500,latency_ms=3"])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "latency_ms" in errors[0]


# ---------------------------------------------------------------- against scripted servers

def test_rate_is_timed_from_schedule_when_the_client_queues():
    # One request in flight at a time against a server serving one at a time, 50 ms each, offered
    # 60 req/s (3 × capacity): each request waits longer for its turn. Timed from its schedule, TTFT
    # grows with that wait; timed from when it was sent (the naive measure) it would not.
    with serialized_server(0.05) as server:
        result = run_sweep(server.base_url, SweepSettings(max_tokens=4, sweeps="rate", rates=[60],
                                                          requests_per_point=9, max_in_flight=1, **QUIET))
    records = result.rate_points[0].records
    assert all(r.error is None for r in records)
    from_send = [r.ttft_ms - r.send_lag_ms for r in records]
    assert max(from_send) < 3 * min(from_send) and min(from_send) >= 45  # the naive measure stays flat
    assert records[-1].send_lag_ms > records[0].send_lag_ms + 150  # the wait is on the client side
    assert records[-1].ttft_ms > records[0].ttft_ms + 150  # and it is in the TTFT
    assert records[-1].e2e_ms >= records[-1].ttft_ms
    assert result.rate_saturated_at == 60 and "completions" in result.rate_saturation_reason


def test_open_loop_sends_on_schedule_while_the_server_queues():
    with serialized_server(0.05) as server:
        result = run_sweep(server.base_url, SweepSettings(max_tokens=4, sweeps="rate", rates=[60, 120],
                                                          requests_per_point=9, **QUIET))
    point = result.rate_points[0]
    assert point.send_lag_ms.p99 < 40  # sent when due, not when the last one ended
    assert point.records[-1].ttft_ms > point.records[0].ttft_ms + 150  # the server's queue shows in TTFT
    assert point.ttft_ms.p50 <= point.ttft_ms.p90 <= point.ttft_ms.p99
    assert [p.offered_rate for p in result.rate_points] == [60]  # saturated: 120 not tried
    assert result.rate_saturated_at == 60


def test_concurrency_sweep_stops_at_saturation():
    # Two slots, 150 ms a request: 4 workers finish no more than 2 do, and wait twice as long.
    with serialized_server(0.15, capacity=2) as server:
        result = run_sweep(server.base_url, SweepSettings(max_tokens=4, sweeps="concurrency",
                                                          concurrency=[1, 2, 4, 8], requests_per_point=4, **QUIET))
        assert server.max_in_flight == 4
    points = result.concurrency_points
    assert [p.concurrency for p in points] == [1, 2, 4]  # 8 never ran
    assert points[1].output_tps > 1.6 * points[0].output_tps  # two slots: twice the work
    assert points[2].ttft_ms.p50 > 1.3 * points[1].ttft_ms.p50  # half the requests wait a whole turn
    assert result.concurrency_saturated_at == 4 and "tok/s" in result.concurrency_saturation_reason
    assert all(p.completed == 4 and p.errors == 0 for p in points) and result.rate_points == []


def test_each_point_carries_the_gpu_figures_of_its_own_span(tmp_path):
    # A stand-in nvidia-smi replays output we wrote (no GPU here); sampling and J/token are the real ones.
    recorded = Path(__file__).resolve().parent.parent / "data" / "nvidia-smi" / "two-gpus-power-cap.csv"
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncat {recorded}\n")
    fake.chmod(0o755)
    with serialized_server(0.35, capacity=2) as server:
        result = run_sweep(server.base_url, SweepSettings(max_tokens=4, sweeps="concurrency", concurrency=[1, 2],
                                                          requests_per_point=4, **QUIET), nvidia_smi=str(fake))
    for point in result.concurrency_points:
        assert point.gpu is not None and point.gpu.generated_tokens == point.generated_tokens == 16
        assert point.gpu.samples >= 2 and point.gpu.j_per_token == pytest.approx(point.gpu.energy_j / 16)
    assert result.gpu.generated_tokens == 32 and "J/token" in format_sweep(result)


def test_without_nvidia_smi_the_sweep_says_so():
    with serialized_server(0.01) as server:
        result = run_sweep(server.base_url, SweepSettings(max_tokens=4, sweeps="concurrency", concurrency=[1],
                                                          requests_per_point=2, **QUIET))
    assert result.concurrency_points[0].gpu is None and "GPU: n/a: nvidia-smi not found" in format_sweep(result)


def test_failures_are_recorded_and_stop_the_sweep():
    with ScriptedModelServer(lambda request: json_raw(400, {"error": {"message": "no such model"}})) as server:
        result = run_sweep(server.base_url, SweepSettings(max_tokens=4, requests_per_point=2, **QUIET))
    point = result.concurrency_points[0]
    assert (point.completed, point.errors, point.ttft_ms) == (0, 2, None)
    assert "HTTP 400" in point.first_error and server.base_url in point.first_error
    assert result.concurrency_saturated_at == 1 and len(result.concurrency_points) == 1
    assert result.rate_points == [] and any("rate sweep skipped" in note for note in result.notes)


def test_client_overhead_against_the_instant_server_is_small():
    overhead = measure_client_overhead(4, 100, 16)
    assert overhead.errors == 0 and overhead.requests == 100 and overhead.chunks_per_request == 16
    assert overhead.ttft_ms.p50 < 50 and overhead.e2e_ms.p99 < 500
    assert overhead.request_tps > 20 and overhead.output_tps == pytest.approx(16 * overhead.request_tps)


def test_cli_sweep_writes_json_with_default_rates(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    with ScriptedModelServer(lambda request: Reply(content="a b c d", finish_reason="length",
                                                   usage={"prompt_tokens": 9, "completion_tokens": 4})) as server:
        assert main(["sweep", server.base_url, "--concurrency", "1,2", "--requests-per-point", "4",
                     "--max-tokens", "8", "--slo", "ttft_ms=2000", "--save-json", str(out)]) == 0
    result = SweepResult.model_validate_json(out.read_text())
    assert result.kind == "sweep" and result.slots == 2 and result.slots_source == "/props total_slots"
    best = max(p.request_tps for p in result.concurrency_points)
    assert result.settings.rates == default_rates(best, result.settings.rate_factors)
    assert result.rate_points and all(p.records and p.send_lag_ms for p in result.rate_points)
    assert result.client_overhead is not None and result.client_overhead.concurrency == 2
    assert all(p.goodput_rps is not None for p in result.concurrency_points + result.rate_points)
    printed = capsys.readouterr()
    assert "client overhead: ttft p50" in printed.out and "goodput" in printed.out and "c=2" in printed.out
    assert "[sweep] concurrency 1: 4 requests" in printed.err


# ---------------------------------------------------------------- the real server

@pytest.mark.docker
@pytest.mark.server
def test_real_llama_server_sweep(embedded_server, tmp_path):
    # Small on purpose: the CI machine has 2 shared cores.
    out = tmp_path / "sweep.json"
    assert main(["sweep", embedded_server.base_url, "--concurrency", "1,2", "--rates", "1",
                 "--requests-per-point", "3", "--max-tokens", "8", "--slo", "ttft_ms=5000",
                 "--save-json", str(out)]) == 0
    result = SweepResult.model_validate_json(out.read_text())
    assert result.server_kind == "llama.cpp" and result.ignore_eos_sent and result.slots == 2
    assert result.client_overhead.errors == 0 and result.client_overhead.ttft_ms.p50 > 0
    points = result.concurrency_points + result.rate_points
    assert result.concurrency_points[0].concurrency == 1 and [p.offered_rate for p in result.rate_points] == [1]
    for point in points:
        assert point.errors == 0 and point.completed == 3 and point.output_tps > 0
        for figure in (point.ttft_ms, point.itl_ms, point.tpot_ms, point.e2e_ms):
            assert 0 < figure.p50 <= figure.p90 <= figure.p99
        assert point.ttft_ms.p99 <= point.e2e_ms.p99
        assert all(r.completion_tokens == 8 and r.token_count_source == "usage" and r.chunks >= 1
                   for r in point.records)
    assert result.rate_points[0].send_lag_ms is not None and result.rate_points[0].records[0].met_slo is not None
