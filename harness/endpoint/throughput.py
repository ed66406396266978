"""Throughput of an OpenAI-compatible endpoint, measured from the client's wall clock.

What is measured, and how (all requests stream with ``stream_options.include_usage``):

* **TTFT** — seconds from sending the request to the first chunk carrying content *or*
  reasoning text (a thinking model's first thought is its first token).
* **decode tokens/s** — ``(completion_tokens - 1) / (wall - TTFT)``: the first token arrives
  at TTFT, so only the tokens after it fall inside the generation window. Reported as n/a
  when fewer than ``MIN_DECODE_TOKENS`` tokens follow the first one or the window is shorter
  than ``MIN_DECODE_WINDOW_S`` — chunk timing jitter dominates such a window.
* **wall tokens/s** — ``completion_tokens / wall`` (what a user waiting for the whole answer sees).
* **prompt processing tokens/s** at a few prompt lengths, with ``max_tokens=1``. Every prompt
  starts with a fresh random salt, so the prefix cache cannot serve it. We report the
  server's own ``timings.prompt_per_second`` when it sends one (llama.cpp: it counts only the
  tokens actually evaluated and excludes HTTP/template overhead), otherwise
  ``usage.prompt_tokens / TTFT`` from the client clock; both are kept per run.
* **stopped early** — runs whose ``finish_reason`` is not ``length`` although a fixed
  ``max_tokens`` was asked for; ``ignore_eos`` (llama.cpp, vLLM) is sent where supported so
  every run decodes the same number of tokens.
* **concurrency** — k simultaneous streams for k in 1/2/4, capped by the server's slots;
  aggregate tokens/s = all completion tokens / (last end − first start).

The server's ``timings`` block is recorded when present but never replaces our figures
(except for prompt processing, as said above). Warmup runs are discarded.
"""

from __future__ import annotations

import secrets
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field
from tabulate import tabulate

from harness.endpoint.client import EndpointClient, StreamResult
from harness.endpoint.measured import Measured
from harness.endpoint.telemetry import GpuSampler, GpuTelemetry, gpu_lines
from harness.files import write_text_atomic

SCHEMA_VERSION: Final = 1
MIN_DECODE_TOKENS = 8  # tokens after the first one
MIN_DECODE_WINDOW_S = 0.050
GPU_INTERVAL_S = 0.5  # nvidia-smi polls: a decode phase of a few seconds still gets several samples
CTX_MARGIN_TOKENS = 16  # template/BOS slack when clamping prompts to the context
DECODE_PROMPT = ("Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. "
                 "Describe every room of the lighthouse and every day of the week.")
# Plain words of one token each in most vocabularies; the prompt length is sized from the
# server's usage.prompt_tokens after a calibration request, not from this assumption.
_FILLER_WORDS = ("the river runs past old stone walls and green fields while birds sing in tall trees "
                 "near a small town where people walk slowly to market every morning").split()

Clock = Callable[[], float]


# ---------------------------------------------------------------- result models

UNSTABLE_RATIO: Final = 1.3  # max/min above this: the runs disagree too much for the median to mean much


class Spread(BaseModel):
    """Median and range of one figure over the measured runs.

    ``unstable`` marks a figure whose runs disagree by more than ``UNSTABLE_RATIO`` (max/min) — a
    busy machine or a throttling GPU — so neither the output nor the report shows it as one number
    without saying so; more runs (``--runs``) narrow it down.
    """

    n: int
    median: float
    min: float
    max: float
    unstable: bool = False

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread | None:
        present = [v for v in values if v is not None]
        if not present:
            return None
        low, high = min(present), max(present)
        unstable = len(present) > 1 and (low <= 0 < high or (low > 0 and high / low > UNSTABLE_RATIO))
        return cls(n=len(present), median=statistics.median(present), min=low, max=high, unstable=unstable)

    def text(self, digits: int = 1) -> str:
        """``median (min–max)``, with ``UNSTABLE`` when the runs disagree."""
        mark = f"  UNSTABLE (max/min > {UNSTABLE_RATIO:g}: raise --runs)" if self.unstable else ""
        return f"{self.median:.{digits}f} ({self.min:.{digits}f}–{self.max:.{digits}f}){mark}"


class StreamRun(BaseModel):
    """The raw numbers of one streamed request."""

    salt: str
    ttft_s: float | None = Field(description="None when no token arrived")
    wall_s: float
    prompt_tokens: int | None
    completion_tokens: int
    token_count_source: Literal["usage", "chunks"]
    finish_reason: str | None
    stopped_early: bool
    decode_tps: float | None
    decode_na_reason: str | None
    wall_tps: float | None
    server_timings: dict[str, float] | None = None
    finished: bool = Field(default=True, description="the stream ended properly: a finish_reason and its end marker")
    retries: list[dict[str, Any]] = Field(default_factory=list, description="each retry before the stream began")


class PromptRun(BaseModel):
    """One prompt-processing request (max_tokens=1)."""

    salt: str
    prompt_tokens: int | None
    ttft_s: float | None
    client_pp_tps: float | None = Field(description="prompt_tokens / TTFT")
    server_pp_tps: float | None = Field(description="timings.prompt_per_second, when sent")
    server_prompt_n: int | None = Field(default=None, description="tokens the server actually evaluated")
    cached_tokens: int | None = None


class PromptLength(BaseModel):
    """Prompt processing at one target length."""

    target_tokens: int
    runs: list[PromptRun]
    pp_tps: Spread | None
    pp_source: Literal["server timings", "client ttft"]


class ConcurrencyLevel(BaseModel):
    """k simultaneous streams, measured ``repeats`` times: ``aggregate_tps`` is the median of the repeats."""

    streams: int
    wall_s: float
    completion_tokens: int
    aggregate_tps: float | None
    runs: list[StreamRun]
    repeats: int = 1
    aggregate_spread: Spread | None = Field(default=None, description="aggregate tok/s over the repeats")


class BenchSettings(BaseModel):
    """Everything that shapes the numbers; recorded with them."""

    runs: int = Field(default=5, ge=1)
    warmup_runs: int = Field(default=1, ge=0)
    max_tokens: int = Field(default=128, ge=2)
    ignore_eos: Literal["auto", "on", "off"] = "auto"
    prompt_lengths_tokens: list[int] = Field(default_factory=lambda: [256, 1024])
    prompt_runs: int = Field(default=3, ge=1)
    concurrency_levels: list[int] = Field(default_factory=lambda: [1, 2, 4])
    concurrency_repeats: int = Field(default=3, ge=1, description="times each concurrency level is measured")
    slots: int | None = Field(default=None, ge=1, description="server slots when /props cannot tell")
    timeout_s: float = Field(default=120, gt=0, description="longest silence allowed within one request")
    temperature: float = 0.0


class ThroughputResult(Measured):
    """One bench of one endpoint: settings, every measured run and the summaries."""

    kind: Literal["throughput"] = "throughput"
    schema_version: Literal[1] = SCHEMA_VERSION
    settings: BenchSettings
    ignore_eos_sent: bool
    slots: int
    slots_source: str
    n_ctx_per_slot: int | None
    decode_na_rule: str = (f"decode tokens/s is n/a when fewer than {MIN_DECODE_TOKENS} tokens follow the first "
                           f"one or the window after the first token is under {MIN_DECODE_WINDOW_S * 1000:.0f} ms")
    runs: list[StreamRun]
    ttft_s: Spread | None
    decode_tps: Spread | None
    wall_tps: Spread | None
    stopped_early_runs: int
    decode_na_runs: int
    prompt_processing: list[PromptLength]
    concurrency: list[ConcurrencyLevel]
    vram_peak_mib: float | None
    vram_note: str | None
    gpu: GpuTelemetry | None = Field(default=None, description="nvidia-smi over the measured decode runs: power, "
                                                               "J/token, clocks, throttling (a note without one)")
    load_time_s: float | None
    load_time_note: str | None
    notes: list[str] = Field(default_factory=list)
    unfinished_streams: int = Field(default=0, description="streams that ended without finish_reason or end marker")

    @property
    def valid(self) -> bool:
        """Numbers from streams that broke off are not measurements."""
        return self.unfinished_streams == 0


# ---------------------------------------------------------------- pure pieces

def decode_rate(completion_tokens: int, ttft_s: float | None, wall_s: float) -> tuple[float | None, str | None]:
    """Decode tokens/s over the window after the first token, or (None, why) when too short."""
    if ttft_s is None or completion_tokens == 0:
        return None, "no token received"
    after_first = completion_tokens - 1
    window_s = wall_s - ttft_s
    if after_first < MIN_DECODE_TOKENS:
        return None, f"only {after_first} tokens after the first (< {MIN_DECODE_TOKENS})"
    if window_s < MIN_DECODE_WINDOW_S:
        return None, f"generation window {window_s * 1000:.1f} ms (< {MIN_DECODE_WINDOW_S * 1000:.0f} ms)"
    return after_first / window_s, None


def new_salt() -> str:
    """A random prefix that makes every prompt unique from its first token."""
    return secrets.token_hex(6)


def salted(salt: str, text: str) -> str:
    return f"[{salt}] {text}"


def filler_text(words: int) -> str:
    """Plain filler prose of the given number of words."""
    return " ".join(_FILLER_WORDS[i % len(_FILLER_WORDS)] for i in range(max(words, 1)))


# ---------------------------------------------------------------- HTTP side

def _token_count(value: float | None) -> int | None:
    # the client keeps timings as floats; a token count from them is whole (anything else: unknown)
    return int(value) if value is not None and value.is_integer() else None


def _numeric(mapping: dict | None) -> dict[str, float] | None:
    if not mapping:
        return None
    return {k: float(v) for k, v in mapping.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class _Bench:
    """One endpoint under measurement: the request plumbing shared by every phase."""

    def __init__(self, client: EndpointClient, model: str, settings: BenchSettings, ignore_eos: bool, clock: Clock):
        self.client, self.model = client, model
        self.settings, self.ignore_eos, self.clock = settings, ignore_eos, clock

    def stream(self, payload: dict) -> StreamResult:
        return self.client.stream_chat(payload, clock=self.clock)

    def payload(self, text: str, max_tokens: int) -> dict:
        body = {"model": self.model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
                "temperature": self.settings.temperature}
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    def decode_run(self, max_tokens: int) -> tuple[StreamRun, StreamResult]:
        salt = new_salt()
        raw = self.stream(self.payload(salted(salt, DECODE_PROMPT), max_tokens))
        counted = raw.usage.completion_tokens
        tokens = int(counted) if counted is not None else raw.text_chunks
        decode, why = decode_rate(tokens, raw.ttft_s, raw.wall_s)
        run = StreamRun(salt=salt, ttft_s=raw.ttft_s, wall_s=raw.wall_s, prompt_tokens=raw.usage.prompt_tokens,
                        completion_tokens=tokens, token_count_source="usage" if counted is not None else "chunks",
                        finish_reason=raw.finish_reason, stopped_early=raw.finish_reason != "length",
                        decode_tps=decode, decode_na_reason=why,
                        wall_tps=tokens / raw.wall_s if raw.wall_s > 0 and tokens else None,
                        server_timings=_numeric(raw.timings), finished=raw.done and raw.finish_reason is not None,
                        retries=[r.model_dump() for r in raw.retries])
        return run, raw

    def prompt_run(self, words: int) -> PromptRun:
        salt = new_salt()
        raw = self.stream(self.payload(salted(salt, filler_text(words)), 1))
        timings = raw.timings or {}
        prompt_tokens = raw.usage.prompt_tokens
        cached = _token_count(timings.get("cache_n"))
        client_tps = prompt_tokens / raw.ttft_s if prompt_tokens and raw.ttft_s else None
        return PromptRun(salt=salt, prompt_tokens=prompt_tokens, ttft_s=raw.ttft_s, client_pp_tps=client_tps,
                         server_pp_tps=timings.get("prompt_per_second"),
                         server_prompt_n=_token_count(timings.get("prompt_n")), cached_tokens=cached)


def _measure_prompt_length(bench: _Bench, target_tokens: int, runs: int) -> PromptLength:
    """Size the filler from two discarded requests (template overhead, tokens per word), then measure.

    The calibration requests stay below the target, so they fit wherever the target fits.
    """
    words = max(2, target_tokens // 2)
    overhead = bench.prompt_run(1).prompt_tokens
    half = bench.prompt_run(words).prompt_tokens
    if overhead is not None and half is not None and half > overhead:
        per_word = (half - overhead) / (words - 1)
        words = max(1, round((target_tokens - overhead) / per_word))
    measured = [bench.prompt_run(words) for _ in range(runs)]
    use_server = all(r.server_pp_tps is not None for r in measured)
    values = [r.server_pp_tps if use_server else r.client_pp_tps for r in measured]
    return PromptLength(target_tokens=target_tokens, runs=measured, pp_tps=Spread.of(values),
                        pp_source="server timings" if use_server else "client ttft")


def _concurrent_once(bench: _Bench, streams: int, max_tokens: int) -> tuple[float, int, list[StreamRun]]:
    """Start k streams together (a barrier releases them at once): (wall, tokens, runs)."""
    barrier = threading.Barrier(streams)

    def one(_: int) -> tuple[StreamRun, StreamResult]:
        barrier.wait(timeout=bench.settings.timeout_s)
        return bench.decode_run(max_tokens)

    with ThreadPoolExecutor(max_workers=streams) as pool:
        results = list(pool.map(one, range(streams)))
    first_start = min(raw.started_s for _, raw in results)
    last_end = max(raw.ended_s for _, raw in results)
    return last_end - first_start, sum(run.completion_tokens for run, _ in results), [run for run, _ in results]


def _measure_concurrency(bench: _Bench, streams: int, max_tokens: int, repeats: int) -> ConcurrencyLevel:
    """k streams at once, ``repeats`` times; the aggregate is their median, with its spread."""
    walls, tokens, rates, runs = [], [], [], []
    for _ in range(repeats):
        wall, count, level_runs = _concurrent_once(bench, streams, max_tokens)
        walls.append(wall)
        tokens.append(count)
        rates.append(count / wall if wall > 0 else None)
        runs += level_runs
    spread = Spread.of(rates)
    return ConcurrencyLevel(streams=streams, wall_s=statistics.median(walls), completion_tokens=sum(tokens),
                            aggregate_tps=spread.median if spread else None, runs=runs, repeats=repeats,
                            aggregate_spread=spread)


def consistency_notes(wall_tps: Spread | None, concurrency: list[ConcurrencyLevel]) -> list[str]:
    """Say so when one stream's aggregate disagrees with the single-stream runs measuring the same thing.

    Both are completion tokens over the whole request's wall time, one request at a time; a ratio
    beyond ``UNSTABLE_RATIO`` means the machine was busy during one of them, not that the server
    has two speeds.
    """
    one = next((level for level in concurrency if level.streams == 1), None)
    if wall_tps is None or one is None or not one.aggregate_tps:
        return []
    ratio = max(wall_tps.median, one.aggregate_tps) / min(wall_tps.median, one.aggregate_tps)
    if ratio <= UNSTABLE_RATIO:
        return []
    return [f"UNSTABLE: aggregate tok/s at 1 stream ({one.aggregate_tps:.1f}) and the single-stream runs' wall "
            f"tok/s ({wall_tps.median:.1f}) measure the same thing but differ {ratio:.1f}x: the machine was busy "
            "during one of them; rerun with more --runs on a quiet machine"]


def unstable_figures(result: ThroughputResult) -> list[str]:
    """Names of the figures whose runs disagree by more than ``UNSTABLE_RATIO``."""
    named: list[tuple[str, Spread | None]] = [("TTFT", result.ttft_s), ("decode tok/s", result.decode_tps),
                                              ("wall tok/s", result.wall_tps)]
    named += [(f"pp tok/s @ ~{pp.target_tokens}", pp.pp_tps) for pp in result.prompt_processing]
    named += [(f"aggregate tok/s x {level.streams}", level.aggregate_spread) for level in result.concurrency]
    return [name for name, spread in named if spread is not None and spread.unstable]


# ---------------------------------------------------------------- the bench

def run_bench(endpoint: EndpointClient | str, settings: BenchSettings, *, model: str | None = None,
              profile_id: str | None = None, nvidia_smi: str | list[str] | None = None,
              vram_absent_note: str = "nvidia-smi not found", load_time_s: float | None = None,
              load_time_note: str | None = None, log: Callable[[str], None] = lambda _msg: None,
              clock: Clock = time.perf_counter, over_network: bool | str = False) -> ThroughputResult:
    """Measure one endpoint: decode runs, prompt processing, the concurrency probe (and VRAM).

    ``over_network``: an API endpoint (True), or a rig's server reached across the network (a sentence
    saying how), so TTFT and tokens/s include the network; the result says so.
    """
    notes: list[str] = []
    if over_network is True:
        notes.append("API endpoint: TTFT and tokens/s are measured over the network from this machine")
    elif over_network:
        notes.append(f"TTFT and tokens/s are measured {over_network}, from the controller: they include the network")
    own = isinstance(endpoint, str)
    if isinstance(endpoint, str):
        client = EndpointClient(endpoint, timeout_s=settings.timeout_s,
                                max_connections=max(settings.concurrency_levels + [1]) + 2)
    else:
        client = endpoint
    try:
        info = client.probe()
        model = model or info.model
        ignore_eos = settings.ignore_eos == "on" or (settings.ignore_eos == "auto" and info.is_llama_cpp)
        if info.slots:
            slots, slots_source = info.slots, "/props total_slots"
        elif settings.slots:
            slots, slots_source = settings.slots, "--slots"
        else:
            slots, slots_source = 1, "unknown (pass --slots); probing one stream only"
        max_tokens = settings.max_tokens
        if info.n_ctx_per_slot and max_tokens + 128 > info.n_ctx_per_slot:
            max_tokens = max(2, info.n_ctx_per_slot - 128)
            notes.append(f"max_tokens clamped to {max_tokens} by the per-slot context {info.n_ctx_per_slot}")
        bench = _Bench(client, model, settings, ignore_eos, clock)
        origin = clock()
        with GpuSampler(nvidia_smi, interval_s=GPU_INTERVAL_S, absent_note=vram_absent_note, clock=clock,
                        origin_s=origin) as sampler:
            for i in range(settings.warmup_runs):
                log(f"warmup {i + 1}/{settings.warmup_runs}")
                bench.decode_run(max_tokens)
            runs = []
            decode_from = clock() - origin
            for i in range(settings.runs):
                run, _ = bench.decode_run(max_tokens)
                runs.append(run)
                log(f"run {i + 1}/{settings.runs}: ttft {_fmt(run.ttft_s, 's', 3)}, "
                    f"decode {_fmt(run.decode_tps, ' tok/s')}, {run.completion_tokens} tokens ({run.finish_reason})")
            decode_until = clock() - origin
            prompt_lengths = []
            for target in settings.prompt_lengths_tokens:
                clamped = target
                if info.n_ctx_per_slot and target > info.n_ctx_per_slot - CTX_MARGIN_TOKENS:
                    clamped = info.n_ctx_per_slot - CTX_MARGIN_TOKENS
                    notes.append(f"prompt length {target} clamped to {clamped} by the per-slot context "
                                 f"{info.n_ctx_per_slot}")
                log(f"prompt processing at ~{clamped} tokens")
                prompt_lengths.append(_measure_prompt_length(bench, clamped, settings.prompt_runs))
            levels = sorted({k for k in settings.concurrency_levels if k <= slots})
            skipped = sorted({k for k in settings.concurrency_levels if k > slots})
            if skipped:
                notes.append(f"concurrency {', '.join(map(str, skipped))} skipped: server has {slots} slot(s)")
            concurrency = []
            for k in levels:
                log(f"concurrency {k} stream(s)")
                concurrency.append(_measure_concurrency(bench, k, max_tokens,
                                                        min(settings.concurrency_repeats, settings.runs)))
        # energy per token over the single-stream decode runs; VRAM peak over the whole bench
        gpu = sampler.summary(sum(r.completion_tokens for r in runs), since_s=decode_from, until_s=decode_until,
                              with_series=False)
        whole = sampler.summary(with_series=False)
        vram_peak, vram_note = whole.vram_peak_mib, whole.note
        if vram_peak is not None and vram_note is None:
            vram_note = f"peak memory.used over all visible GPUs, all processes, sampled every {GPU_INTERVAL_S:g}s"
    finally:
        if own:
            client.close()
    if load_time_s is None and load_time_note is None:
        load_time_note = "not measured (the bench did not start the server)"
    if not ignore_eos:
        notes.append("ignore_eos not sent (server support unknown): runs may stop early at EOS")
    notes += consistency_notes(Spread.of([r.wall_tps for r in runs]), concurrency)
    return ThroughputResult(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), endpoint=client.display_url, model=model,
        profile=profile_id, server_kind="llama.cpp" if info.is_llama_cpp else "openai-compatible",
        settings=settings.model_copy(update={"max_tokens": max_tokens}), ignore_eos_sent=ignore_eos, slots=slots,
        slots_source=slots_source, n_ctx_per_slot=info.n_ctx_per_slot, runs=runs,
        ttft_s=Spread.of([r.ttft_s for r in runs]), decode_tps=Spread.of([r.decode_tps for r in runs]),
        wall_tps=Spread.of([r.wall_tps for r in runs]), stopped_early_runs=sum(r.stopped_early for r in runs),
        decode_na_runs=sum(r.decode_tps is None for r in runs), prompt_processing=prompt_lengths,
        concurrency=concurrency, vram_peak_mib=vram_peak, vram_note=vram_note, gpu=gpu if sampler.command else None,
        load_time_s=load_time_s,
        load_time_note=load_time_note, notes=notes,
        unfinished_streams=sum(not r.finished for r in runs + [r for level in concurrency for r in level.runs]))


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _fmt_spread(spread: Spread | None, digits: int = 1) -> str:
    return "n/a" if spread is None else spread.text(digits)


def format_result(result: ThroughputResult) -> str:
    """The stdout table: summaries with median (min–max) and the probes."""
    n = len(result.runs)
    rows = [["TTFT (s)", _fmt_spread(result.ttft_s, 3)],
            ["decode tok/s", _fmt_spread(result.decode_tps)
             + (f"  [{result.decode_na_runs}/{n} n/a]" if result.decode_na_runs else "")],
            ["wall tok/s", _fmt_spread(result.wall_tps)],
            ["stopped early", f"{result.stopped_early_runs}/{n}"]]
    for pp in result.prompt_processing:
        tokens = Spread.of([r.prompt_tokens for r in pp.runs])
        size = f"{tokens.median:.0f}" if tokens else f"~{pp.target_tokens}"
        rows.append([f"pp tok/s @ {size} tok", f"{_fmt_spread(pp.pp_tps)}  [{pp.pp_source}]"])
    for level in result.concurrency:
        shown = _fmt_spread(level.aggregate_spread) if level.aggregate_spread else _fmt(level.aggregate_tps)
        rows.append([f"aggregate tok/s × {level.streams}", shown])
    rows.append(["peak VRAM (MiB)", _fmt(result.vram_peak_mib, digits=0) if result.vram_peak_mib is not None
                 else f"n/a: {result.vram_note}"])
    if result.gpu is not None:
        rows += [["GPU (decode runs)", line] for line in gpu_lines(result.gpu)]
    rows.append(["load time (s)", _fmt(result.load_time_s) if result.load_time_s is not None
                 else f"n/a: {result.load_time_note}"])
    head = (f"Throughput {result.model} at {result.endpoint} — {n} runs, max_tokens {result.settings.max_tokens}, "
            f"ignore_eos {'sent' if result.ignore_eos_sent else 'not sent'}, slots {result.slots}")
    lines = [head, tabulate(rows, headers=["metric", "median (min–max)"], disable_numparse=True)]
    lines += [f"note: {note}" for note in result.notes]
    if unstable := unstable_figures(result):
        lines.append(f"UNSTABLE: {', '.join(unstable)} — runs disagree by more than {UNSTABLE_RATIO:g}x (max/min); "
                     "raise --runs or bench on a quiet machine")
    return "\n".join(lines)


def write_result(result: ThroughputResult, path: Path) -> Path:
    """Write the result JSON atomically."""
    return write_text_atomic(path, result.model_dump_json(indent=2) + "\n")
