"""harness.endpoint.throughput against a scripted streaming server with known timings, and the real one.

The scripted server is a real HTTP server on 127.0.0.1 (port 0) that streams OpenAI-style
chunks with a fixed delay before the first token and a fixed delay between tokens, so the
bench's TTFT and decode rate can be checked against the scripted truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.endpoint.throughput import (
    MIN_DECODE_TOKENS,
    BenchSettings,
    ThroughputResult,
    decode_rate,
    format_result,
    run_bench,
)
from harness.errors import EndpointError
from tests.doubles.model_server import Reply, Request, ScriptedModelServer, json_raw

PROMPT_OVERHEAD_TOKENS = 10


@dataclass
class Script:
    """How the scripted model streams (timing, tokens, slots); a ``respond`` for the one scripted server."""

    first_token_delay_s: float = 0.0
    inter_token_delay_s: float = 0.0
    pp_s_per_token: float = 0.0  # prompt processing time, added before the first token
    eos_after_tokens: int | None = None  # stop with finish_reason "stop" unless ignore_eos
    reasoning_tokens: int = 0  # the first tokens arrive as reasoning_content
    total_slots: int | None = None  # serve llama.cpp-style /props when set
    n_ctx: int = 4096
    fake_timings: dict | None = None  # sent verbatim as "timings" in the usage chunk
    status: int = 200
    server: ScriptedModelServer | None = None

    @property
    def requests(self) -> list[dict]:
        return [r.json for r in self.server.requests if r.wire]

    @property
    def max_active(self) -> int:
        return self.server.max_in_flight

    def respond(self, request: Request):
        if self.status != 200:
            return json_raw(self.status, {"error": {"message": "scripted failure"}})
        body = request.json
        prompt_tokens = len(body["messages"][-1]["content"].split()) + PROMPT_OVERHEAD_TOKENS
        limit = body["max_tokens"]
        if self.eos_after_tokens is not None and not body.get("ignore_eos"):
            limit = min(limit, self.eos_after_tokens)
        tokens = [f"t{i} " for i in range(limit)]
        return Reply(reasoning="".join(tokens[:self.reasoning_tokens]) or None,
                     content="".join(tokens[self.reasoning_tokens:]) or None,
                     finish_reason="length" if limit == body["max_tokens"] else "stop",
                     usage={"prompt_tokens": prompt_tokens, "completion_tokens": limit}, timings=self.fake_timings,
                     first_chunk_delay_s=self.first_token_delay_s + prompt_tokens * self.pp_s_per_token,
                     chunk_delay_s=self.inter_token_delay_s)


@pytest.fixture
def scripted():
    """Start the scripted server for a Script; returns its base URL."""
    servers = []

    def start(script: Script) -> str:
        props = {"total_slots": script.total_slots, "default_generation_settings": {"n_ctx": script.n_ctx}}
        routes = {"/props": json_raw(200, props) if script.total_slots else json_raw(404, {"error": "not found"})}
        script.server = ScriptedModelServer(script.respond, routes=routes).__enter__()
        servers.append(script.server)
        return script.server.base_url

    yield start
    for server in servers:
        server.__exit__(None, None, None)


QUICK = dict(warmup_runs=0, prompt_lengths_tokens=[], concurrency_levels=[1])


def test_ttft_and_decode_match_scripted_timing(scripted):
    # Timings the server claims are recorded but must not replace our wall-clock figures.
    script = Script(first_token_delay_s=0.15, inter_token_delay_s=0.01, total_slots=1,
                    fake_timings={"predicted_per_second": 9999.0, "prompt_per_second": 1.0})
    url = scripted(script)
    result = run_bench(url, BenchSettings(runs=3, warmup_runs=1, max_tokens=41, prompt_lengths_tokens=[],
                                          concurrency_levels=[1]))
    # warmup, runs, the one-stream concurrency level measured min(runs, 3) times
    assert len(result.runs) == 3 and len(script.requests) == 1 + 3 + 3
    assert result.concurrency[0].repeats == 3 and result.concurrency[0].aggregate_spread.n == 3
    assert result.ttft_s.median == pytest.approx(0.15, abs=0.04)
    assert result.decode_tps.median == pytest.approx(100.0, rel=0.15)  # 40 tokens after the first in 0.40 s
    assert result.wall_tps.median == pytest.approx(41 / 0.55, rel=0.15)
    assert result.runs[0].server_timings["predicted_per_second"] == 9999.0
    assert all(r.completion_tokens == 41 and r.token_count_source == "usage" for r in result.runs)
    assert result.stopped_early_runs == 0 and result.decode_na_runs == 0
    assert result.model == "scripted-model" and result.server_kind == "llama.cpp"


def test_reasoning_token_counts_as_first_token(scripted):
    url = scripted(Script(first_token_delay_s=0.1, inter_token_delay_s=0.005, reasoning_tokens=20))
    result = run_bench(url, BenchSettings(runs=1, max_tokens=30, ignore_eos="on", **QUICK))
    assert result.runs[0].ttft_s == pytest.approx(0.1, abs=0.04)


def test_decode_is_na_when_the_window_is_too_short(scripted):
    url = scripted(Script(first_token_delay_s=0.02, inter_token_delay_s=0.005))
    few = run_bench(url, BenchSettings(runs=2, max_tokens=MIN_DECODE_TOKENS, ignore_eos="on", **QUICK))
    assert few.decode_tps is None and few.decode_na_runs == 2
    assert "tokens after the first" in few.runs[0].decode_na_reason
    assert few.wall_tps is not None  # wall tok/s still reported
    fast = scripted(Script(inter_token_delay_s=0.0))  # 40 tokens in well under 50 ms
    quick = run_bench(fast, BenchSettings(runs=1, max_tokens=40, ignore_eos="on", **QUICK))
    assert quick.decode_tps is None and "window" in quick.runs[0].decode_na_reason


def test_decode_rate_rule():
    assert decode_rate(11, 0.1, 0.2) == (pytest.approx(100.0), None)
    assert decode_rate(MIN_DECODE_TOKENS, 0.1, 1.0)[0] is None  # 7 after the first
    assert decode_rate(MIN_DECODE_TOKENS + 1, 0.1, 1.0)[0] == pytest.approx(MIN_DECODE_TOKENS / 0.9)
    assert decode_rate(100, 0.1, 0.14)[0] is None  # 40 ms window
    assert decode_rate(0, None, 1.0) == (None, "no token received")


def test_every_prompt_starts_with_a_fresh_salt(scripted):
    script = Script()
    url = scripted(script)
    run_bench(url, BenchSettings(runs=3, max_tokens=4, warmup_runs=1, prompt_lengths_tokens=[40], prompt_runs=2,
                                 concurrency_levels=[1]))
    prompts = [r["messages"][-1]["content"] for r in script.requests]
    heads = [p.split()[0] for p in prompts]
    assert len(prompts) >= 8 and len(set(heads)) == len(heads)  # differs from the very first word
    assert all(h.startswith("[") and h.endswith("]") for h in heads)


def test_early_stops_are_counted_and_ignore_eos_prevents_them(scripted):
    script = Script(eos_after_tokens=10)  # no /props: not llama.cpp, so auto sends no ignore_eos
    url = scripted(script)
    auto = run_bench(url, BenchSettings(runs=3, max_tokens=20, **QUICK))
    assert not auto.ignore_eos_sent and auto.stopped_early_runs == 3
    assert all(r.finish_reason == "stop" and r.completion_tokens == 10 for r in auto.runs)
    assert any("ignore_eos not sent" in note for note in auto.notes)
    forced = run_bench(url, BenchSettings(runs=2, max_tokens=20, ignore_eos="on", **QUICK))
    assert forced.ignore_eos_sent and forced.stopped_early_runs == 0
    assert script.requests[-1]["ignore_eos"] is True and "ignore_eos" not in script.requests[0]


def test_concurrency_capped_by_slots(scripted):
    script = Script(first_token_delay_s=0.05, inter_token_delay_s=0.005, total_slots=2)
    url = scripted(script)
    result = run_bench(url, BenchSettings(runs=1, max_tokens=40, warmup_runs=0, prompt_lengths_tokens=[],
                                          concurrency_levels=[1, 2, 4]))
    assert [c.streams for c in result.concurrency] == [1, 2]
    assert script.max_active == 2 and result.slots == 2 and result.slots_source == "/props total_slots"
    assert any("4 skipped" in note for note in result.notes)
    one, two = result.concurrency
    assert two.completion_tokens == 80 and len(two.runs) == 2
    # Independent scripted streams: two at once should nearly double the aggregate rate.
    assert two.aggregate_tps > 1.6 * one.aggregate_tps


def test_slots_option_when_the_server_cannot_tell(scripted):
    script = Script(inter_token_delay_s=0.005)
    url = scripted(script)
    unknown = run_bench(url, BenchSettings(runs=1, max_tokens=10, warmup_runs=0, prompt_lengths_tokens=[],
                                           concurrency_levels=[1, 2, 4]))
    assert [c.streams for c in unknown.concurrency] == [1] and "unknown" in unknown.slots_source
    given = run_bench(url, BenchSettings(runs=1, max_tokens=10, warmup_runs=0, prompt_lengths_tokens=[],
                                         concurrency_levels=[1, 2, 4], slots=4))
    assert [c.streams for c in given.concurrency] == [1, 2, 4] and script.max_active == 4


def test_prompt_processing_from_client_clock_and_clamped_to_context(scripted):
    script = Script(pp_s_per_token=0.0005, total_slots=1, n_ctx=300)  # 2000 prompt tokens/s
    url = scripted(script)
    result = run_bench(url, BenchSettings(runs=1, max_tokens=4, warmup_runs=0, prompt_lengths_tokens=[150, 1024],
                                          prompt_runs=2, concurrency_levels=[1]))
    short, long = result.prompt_processing
    assert short.pp_source == "client ttft" and long.target_tokens == 300 - 16
    assert any("clamped to 284" in note for note in result.notes)
    for pp, target in ((short, 150), (long, 284)):
        assert all(abs(r.prompt_tokens - target) <= 3 for r in pp.runs)
        assert pp.pp_tps.median == pytest.approx(2000, rel=0.25)


def test_prompt_processing_prefers_server_timings(scripted):
    url = scripted(Script(fake_timings={"prompt_per_second": 1234.5, "prompt_n": 99}))
    result = run_bench(url, BenchSettings(runs=1, max_tokens=4, warmup_runs=0, prompt_lengths_tokens=[50],
                                          prompt_runs=2, concurrency_levels=[1]))
    pp = result.prompt_processing[0]
    assert pp.pp_source == "server timings" and pp.pp_tps.median == 1234.5
    assert pp.runs[0].client_pp_tps is not None  # the client figure is kept beside it


def test_http_errors_name_the_url(scripted):
    url = scripted(Script(status=500))
    with pytest.raises(EndpointError, match=r"/v1/chat/completions: HTTP 500"):
        run_bench(url, BenchSettings(runs=1, max_tokens=4, **QUICK))


def test_vram_fields_say_when_nvidia_smi_is_missing(scripted):
    result = run_bench(scripted(Script()), BenchSettings(runs=1, max_tokens=4, **QUICK), nvidia_smi=None)
    assert result.vram_peak_mib is None and result.vram_note == "nvidia-smi not found"


def test_cli_writes_valid_json(scripted, tmp_path, capsys):
    url = scripted(Script(inter_token_delay_s=0.002, total_slots=2))
    out = tmp_path / "bench.json"
    assert main(["bench", url, "--runs", "2", "--warmup", "0", "--max-tokens", "12", "--prompt-lengths", "40",
                 "--prompt-runs", "1", "--concurrency", "1,2", "--save-json", str(out)]) == 0
    result = ThroughputResult.model_validate_json(out.read_text())
    assert len(result.runs) == 2 and [c.streams for c in result.concurrency] == [1, 2]
    assert result.load_time_s is None and "pass --load-time-s" in result.load_time_note
    assert not out.with_name(out.name + ".partial").exists()
    table = capsys.readouterr().out
    assert "TTFT (s)" in table and "aggregate tok/s × 2" in table and "nvidia-smi not found" in table
    with pytest.raises(SystemExit):
        main(["bench", url, "--concurrency", "1,x"])


@pytest.mark.docker
@pytest.mark.server
def test_real_llama_server(embedded_server):
    # Small on purpose: the CI machine has 2 shared cores.
    result = run_bench(embedded_server.base_url, BenchSettings(runs=2, warmup_runs=0, max_tokens=16,
                                                               prompt_lengths_tokens=[32, 128], prompt_runs=1,
                                                               concurrency_levels=[1, 2]))
    result = ThroughputResult.model_validate_json(result.model_dump_json())
    assert result.server_kind == "llama.cpp" and result.ignore_eos_sent and result.slots == 2
    assert result.stopped_early_runs == 0 and all(r.completion_tokens == 16 for r in result.runs)
    assert result.ttft_s.min > 0 and result.decode_tps.min > 0 and result.wall_tps.min > 0
    assert all(pp.pp_source == "server timings" and pp.pp_tps.min > 0 for pp in result.prompt_processing)
    assert [c.streams for c in result.concurrency] == [1, 2] and all(c.aggregate_tps > 0 for c in result.concurrency)
    # Our wall-clock decode rate and llama.cpp's own figure describe the same generation.
    server_rate = result.runs[0].server_timings["predicted_per_second"]
    assert result.runs[0].decode_tps == pytest.approx(server_rate, rel=0.5)


def test_unstable_figures_are_marked_and_a_busy_one_stream_aggregate_is_called_out():
    from harness.endpoint.throughput import ConcurrencyLevel, Spread, consistency_notes

    steady, noisy = Spread.of([170, 171, 169, 172]), Spread.of([171, 14, 170, 168, 172])
    assert not steady.unstable and noisy.unstable
    assert "UNSTABLE" in noisy.text() and "UNSTABLE" not in steady.text()
    assert Spread.of([5.0]).unstable is False  # one run cannot disagree with itself
    one = ConcurrencyLevel(streams=1, wall_s=1, completion_tokens=58, aggregate_tps=58, runs=[])
    [note] = consistency_notes(Spread.of([171, 170]), [one])
    assert "58.0" in note and "170.5" in note and "2.9x" in note and "UNSTABLE" in note
    agreeing = one.model_copy(update={"aggregate_tps": 160})
    assert consistency_notes(Spread.of([171, 170]), [agreeing]) == []


def test_gpu_figures_come_from_nvidia_smi_during_the_decode_runs(scripted, tmp_path):
    # A stand-in executable replays nvidia-smi output we wrote (no GPU here); the sampling, the
    # span cut to the decode runs and the J/token arithmetic are the real ones.
    recorded = Path(__file__).resolve().parent.parent / "data" / "nvidia-smi" / "two-gpus-power-cap.csv"
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncat {recorded}\n")
    fake.chmod(0o755)
    script = Script(first_token_delay_s=0.05, inter_token_delay_s=0.02)
    result = run_bench(scripted(script), BenchSettings(runs=2, max_tokens=41, **QUICK), nvidia_smi=str(fake))
    gpu = result.gpu
    assert gpu is not None and [g.index for g in gpu.gpus] == [0, 1] and gpu.samples >= 2
    assert gpu.generated_tokens == 82 and gpu.j_per_token == pytest.approx(gpu.energy_j / 82)
    assert gpu.gpus[0].throttle_reasons == {"sw_power_cap": 1.0}
    assert result.vram_peak_mib == 21874 + 20310 and "sampled every" in result.vram_note
    assert "J/token" in format_result(result) and "sw_power_cap 100%" in format_result(result)
