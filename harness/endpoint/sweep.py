"""Load sweep of an OpenAI-compatible endpoint: latency and throughput as the load rises.

Two sweeps, each stopped where the server saturates (like vLLM ``bench serve`` / GuideLLM):

* **concurrency** (closed loop) — k workers each send streamed requests back to back, for k
  over 1, 2, 4, … up to 2 × slots (slots and 2 × slots always included). Saturated when output
  tok/s grows by less than ``min_tps_gain`` over the previous level while p50 TTFT grows, or
  when requests fail.
* **rate** (open loop) — Poisson arrivals (exponential gaps from a seeded RNG) at given rates,
  by default fractions of the best request throughput the concurrency sweep reached.
  Saturated when completions fall behind arrivals (under ``min_rate_ratio`` of the offered
  rate, both over the same draw), when requests fail, or when the queue keeps growing (TTFT of
  the last third of the requests over ``QUEUE_GROWTH`` × that of the first third).

No coordinated omission: every request is timed from its *scheduled* instant, not from when a
thread got round to sending it, so a request that waited behind a busy client or server
counts that wait. The send lag (actual send − scheduled) is recorded beside it.

Per request (all streamed, ``ignore_eos`` where the server is llama.cpp, temperature 0, every
prompt salted so the prefix cache cannot serve it): TTFT, E2E, ITL (gaps between successive
text chunks), TPOT = (E2E − TTFT) / (completion tokens − 1). Per point: their p50/p90/p99,
output tok/s and completed req/s over the point's wall time, and goodput (completed req/s
that met every SLO set). Before the sweep the same load generator runs against an instant
in-process server (``harness.endpoint.instant``): what it measures there is the client's own
overhead, the floor under every figure here.
"""

from __future__ import annotations

import math
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, Field
from tabulate import tabulate

from harness.endpoint.client import EndpointClient, ServerInfo
from harness.endpoint.instant import InstantServer
from harness.endpoint.measured import Measured
from harness.endpoint.spend import SpendLimitReached
from harness.endpoint.telemetry import GpuSampler, GpuTelemetry, gpu_lines
from harness.endpoint.throughput import DECODE_PROMPT, new_salt, salted
from harness.errors import EndpointError
from harness.files import write_text_atomic

SCHEMA_VERSION: Final = 1
SLO_KEYS: Final = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")
DEFAULT_RATE_FACTORS: Final = (0.25, 0.5, 0.75, 1.0, 1.25)
QUEUE_GROWTH: Final = 2.0  # late-third p50 TTFT over early-third p50 TTFT: the queue is growing
QUEUE_GROWTH_MIN_MS: Final = 50.0  # ... and by at least this much (jitter on a fast server is not a queue)
GPU_INTERVAL_S: Final = 0.5  # nvidia-smi polls: a short point still gets a few samples
MAX_THREADS: Final = 1024  # open-loop worker threads per point, whatever the request count
CTX_RESERVE_TOKENS: Final = 128  # prompt + template room when clamping max_tokens to the slot context

Clock = Callable[[], float]
Mode = Literal["concurrency", "rate"]


# ---------------------------------------------------------------- result models

class Percentiles(BaseModel):
    """p50/p90/p99 (linear interpolation between order statistics) and mean of n values."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Percentiles | None:
        present = sorted(v for v in values if v is not None)
        if not present:
            return None
        return cls(n=len(present), p50=percentile(present, 50), p90=percentile(present, 90),
                   p99=percentile(present, 99), mean=statistics.fmean(present))


class SweepRecord(BaseModel):
    """One request as measured; offsets are seconds from the point's start (its first schedule)."""

    index: int = Field(description="order of scheduling within the point")
    scheduled_s: float = Field(description="when the request was due; closed loop: when its worker was free")
    sent_s: float = Field(description="when it was handed to the client")
    ended_s: float = Field(description="when its stream ended or failed")
    send_lag_ms: float = Field(description="sent − scheduled: time spent waiting for a free thread")
    ttft_ms: float | None = Field(description="scheduled instant → first text chunk; None when none arrived")
    e2e_ms: float | None = Field(description="scheduled instant → end of stream; None on error")
    completion_tokens: int | None
    token_count_source: Literal["usage", "chunks"] | None
    chunks: int = Field(description="text-carrying chunks received")
    tpot_ms: float | None = Field(description="(e2e − ttft) / (completion_tokens − 1); None under 2 tokens")
    itl_max_ms: float | None = Field(description="longest gap between successive text chunks")
    finish_reason: str | None
    error: str | None = None
    met_slo: bool | None = Field(default=None, description="met every SLO set; None without --slo")


class SweepPoint(BaseModel):
    """One load level: its summary figures and every request behind them."""

    mode: Literal["concurrency", "rate"]
    concurrency: int | None = Field(default=None, description="closed-loop workers (concurrency mode)")
    offered_rate: float | None = Field(default=None, description="requested Poisson rate, req/s (rate mode)")
    realized_rate_rps: float | None = Field(
        default=None, description="rate mode: arrivals per second of this draw, (n − 1) / schedule span")
    achieved_rps: float | None = Field(
        default=None, description="rate mode: completions per second, (completed − 1) / completion span")
    requests: int
    completed: int
    errors: int
    first_error: str | None
    wall_s: float = Field(description="first schedule → last end")
    output_tps: float = Field(description="completion tokens of completed requests / wall_s")
    request_tps: float = Field(description="completed requests / wall_s")
    goodput_rps: float | None = Field(description="requests that met every SLO / wall_s; None without --slo")
    ttft_ms: Percentiles | None
    itl_ms: Percentiles | None = Field(description="pooled gaps between successive text chunks of all requests")
    tpot_ms: Percentiles | None
    e2e_ms: Percentiles | None
    send_lag_ms: Percentiles | None = Field(description="rate mode only")
    gpu: GpuTelemetry | None = Field(default=None, description="nvidia-smi over this point (J/token of its tokens)")
    records: list[SweepRecord]

    @property
    def generated_tokens(self) -> int:
        """Completion tokens of the requests that completed (what the output tok/s counts)."""
        return sum(r.completion_tokens or 0 for r in self.records if r.error is None)


class ClientOverhead(BaseModel):
    """The load generator against the instant in-process server: the harness's own cost."""

    concurrency: int
    requests: int
    errors: int
    first_error: str | None
    chunks_per_request: int
    ttft_ms: Percentiles | None
    itl_ms: Percentiles | None
    e2e_ms: Percentiles | None
    request_tps: float = Field(description="the most req/s this client drove at this concurrency")
    output_tps: float


class SweepSettings(BaseModel):
    """Everything that shapes the numbers; recorded with them."""

    max_tokens: int = Field(default=128, ge=2)
    concurrency: list[int] | None = Field(
        default=None, description="the ladder; None: 1, 2, 4 … 2 × slots (the result holds the one used)")
    rates: list[float] | None = Field(
        default=None, description="req/s; None: rate_factors × the best concurrency req/s (the result holds them)")
    rate_factors: list[float] = Field(default_factory=lambda: list(DEFAULT_RATE_FACTORS))
    sweeps: Literal["both", "concurrency", "rate"] = "both"
    requests_per_point: int | None = Field(default=None, ge=1, description="None: max(8, 3k); rate: max(8, 3 × top k)")
    point_seconds: float | None = Field(default=None, gt=0, description="time budget per point")
    max_in_flight: int | None = Field(default=None, ge=1, description="rate mode: most requests in flight at once")
    seed: int = 1
    slots: int | None = Field(default=None, ge=1, description="--slots, used when /props cannot tell")
    timeout_s: float = Field(default=120, gt=0)
    temperature: float = 0.0
    ignore_eos: Literal["auto", "on", "off"] = "auto"
    slo: dict[str, float] = Field(default_factory=dict)
    warmup_requests: int = Field(default=1, ge=0)
    overhead_check: bool = True
    overhead_requests: int | None = Field(default=None, ge=1, description="None: max(100, 20 × top k), at most 1000")
    min_tps_gain: float = 0.05
    min_rate_ratio: float = 0.9


class SweepResult(Measured):
    """One load sweep of one endpoint: settings, client overhead, every point and where it saturated."""

    kind: Literal["sweep"] = "sweep"
    schema_version: Literal[1] = SCHEMA_VERSION
    ignore_eos_sent: bool
    settings: SweepSettings
    slots: int
    slots_source: str
    client_overhead: ClientOverhead | None
    client_overhead_note: str | None = None
    concurrency_points: list[SweepPoint]
    rate_points: list[SweepPoint]
    concurrency_saturated_at: int | None = None
    concurrency_saturation_reason: str | None = None
    rate_saturated_at: float | None = None
    rate_saturation_reason: str | None = None
    slo: dict[str, float]
    goodput_note: str | None = Field(default=None, description="why goodput is null, when it is")
    gpu: GpuTelemetry | None = Field(default=None, description="nvidia-smi over the whole sweep, or why there is none")
    notes: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------- pure pieces

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) of ``values``, interpolating linearly between order statistics."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def parse_slo(text: str) -> dict[str, float]:
    """``ttft_ms=500,itl_ms=50`` → {key: limit}; ValueError naming the first bad key or value."""
    slo: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if key not in SLO_KEYS:
            raise ValueError(f"unknown SLO key {key!r} (known: {', '.join(SLO_KEYS)})")
        try:
            limit = float(value) if sep else math.nan
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit) or limit <= 0:
            raise ValueError(f"SLO {key}: expected a positive number of ms, got {value.strip()!r}")
        slo[key] = limit
    if not slo:
        raise ValueError(f"no SLO given in {text!r} (e.g. ttft_ms=500,itl_ms=50)")
    return slo


def meets_slo(record: SweepRecord, slo: dict[str, float]) -> bool:
    """A completed request within every limit; a figure the request lacks fails its limit."""
    if record.error is not None:
        return False
    observed = {"ttft_ms": record.ttft_ms, "itl_ms": record.itl_max_ms, "tpot_ms": record.tpot_ms,
                "e2e_ms": record.e2e_ms}
    for key, limit in slo.items():
        value = observed[key]
        # one token has no gap and no TPOT: nothing there to miss
        if value is None and key in ("itl_ms", "tpot_ms") and record.completion_tokens == 1:
            continue
        if value is None or value > limit:
            return False
    return True


def concurrency_ladder(slots: int) -> list[int]:
    """1, 2, 4, … below 2 × slots, plus slots and 2 × slots."""
    top = 2 * slots
    levels = {slots, top}
    k = 1
    while k < top:
        levels.add(k)
        k *= 2
    return sorted(levels)


def closed_loop_requests(settings: SweepSettings, concurrency: int) -> int | None:
    """Requests at one concurrency level; None: as many as ``point_seconds`` allows."""
    if settings.requests_per_point is not None:
        return settings.requests_per_point
    if settings.point_seconds is not None:
        return None
    return max(8, 3 * concurrency)


def open_loop_requests(settings: SweepSettings, rate: float, top_concurrency: int) -> int:
    """Requests at one offered rate."""
    by_time = max(2, math.ceil(rate * settings.point_seconds)) if settings.point_seconds is not None else None
    if settings.requests_per_point is not None:
        return min(settings.requests_per_point, by_time or settings.requests_per_point)
    return by_time if by_time is not None else max(8, 3 * top_concurrency)


def poisson_offsets(rate: float, count: int, rng: random.Random) -> list[float]:
    """Arrival offsets (s) of ``count`` requests at ``rate`` req/s: the first at 0, then exponential gaps."""
    offsets = [0.0]
    for _ in range(count - 1):
        offsets.append(offsets[-1] + rng.expovariate(rate))
    return offsets[:count]


def summarize_point(mode: Mode, level: float, records: list[SweepRecord], itl_gaps_ms: list[float],
                    slo: dict[str, float]) -> SweepPoint:
    """The figures of one point from its records (pure); marks each record's ``met_slo``."""
    done = [r for r in records if r.error is None]
    failed = [r for r in records if r.error is not None]
    start = min((r.scheduled_s for r in records), default=0.0)
    end = max((r.ended_s for r in records), default=0.0)
    wall = max(end - start, 1e-9)
    tokens = sum(r.completion_tokens or 0 for r in done)
    records = [r.model_copy(update={"met_slo": meets_slo(r, slo) if slo else None}) for r in records]
    goodput = sum(bool(r.met_slo) for r in records) / wall if slo else None
    realized = achieved = None
    if mode == "rate":
        span = max(r.scheduled_s for r in records) - start if records else 0.0
        realized = (len(records) - 1) / span if len(records) > 1 and span > 0 else None
        ends = sorted(r.ended_s for r in done)
        achieved = (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 and ends[-1] > ends[0] else None
    return SweepPoint(
        mode=mode, concurrency=int(level) if mode == "concurrency" else None,
        offered_rate=float(level) if mode == "rate" else None, realized_rate_rps=realized, achieved_rps=achieved,
        requests=len(records), completed=len(done), errors=len(failed),
        first_error=failed[0].error if failed else None, wall_s=wall, output_tps=tokens / wall,
        request_tps=len(done) / wall, goodput_rps=goodput,
        ttft_ms=Percentiles.of([r.ttft_ms for r in done]), itl_ms=Percentiles.of(itl_gaps_ms),
        tpot_ms=Percentiles.of([r.tpot_ms for r in done]), e2e_ms=Percentiles.of([r.e2e_ms for r in done]),
        send_lag_ms=Percentiles.of([r.send_lag_ms for r in records]) if mode == "rate" else None,
        records=records)


def concurrency_saturation(previous: SweepPoint | None, point: SweepPoint, min_tps_gain: float) -> str | None:
    """Why this concurrency level is past saturation, or None."""
    if point.errors:
        return f"{point.errors} of {point.requests} requests failed at concurrency {point.concurrency}"
    if previous is None or previous.output_tps <= 0 or previous.ttft_ms is None or point.ttft_ms is None:
        return None
    gain = point.output_tps / previous.output_tps - 1
    if gain < min_tps_gain and point.ttft_ms.p50 > previous.ttft_ms.p50:
        return (f"output tok/s {previous.output_tps:.1f} → {point.output_tps:.1f} ({gain:+.0%}, under "
                f"{min_tps_gain:+.0%}) from concurrency {previous.concurrency} to {point.concurrency} while "
                f"p50 TTFT rose {previous.ttft_ms.p50:.0f} → {point.ttft_ms.p50:.0f} ms")
    return None


def rate_saturation(point: SweepPoint, min_rate_ratio: float) -> str | None:
    """Why this offered rate is past saturation, or None."""
    rate = f"{point.offered_rate:g} req/s"
    if point.errors:
        return f"{point.errors} of {point.requests} requests failed at {rate}"
    if point.realized_rate_rps and point.achieved_rps is not None \
            and point.achieved_rps < min_rate_ratio * point.realized_rate_rps:
        return (f"completions {point.achieved_rps:.2f} req/s fell under {min_rate_ratio:.0%} of arrivals "
                f"{point.realized_rate_rps:.2f} req/s (this draw of {rate})")
    ttfts = [r.ttft_ms for r in sorted(point.records, key=lambda r: r.scheduled_s) if r.ttft_ms is not None]
    third = len(ttfts) // 3
    if third >= 2:
        early, late = statistics.median(ttfts[:third]), statistics.median(ttfts[-third:])
        if late > QUEUE_GROWTH * early and late - early > QUEUE_GROWTH_MIN_MS:
            return (f"the queue grew at {rate}: p50 TTFT {early:.0f} ms over the first third of the requests, "
                    f"{late:.0f} ms over the last third")
    return None


def default_rates(best_rps: float, factors: Sequence[float]) -> list[float]:
    """The rate ladder: ``factors`` × the best request throughput the concurrency sweep reached."""
    return sorted({float(f"{best_rps * f:.3g}") for f in factors if best_rps * f > 0})


# ---------------------------------------------------------------- the load generator

@dataclass
class _Outcome:
    record: SweepRecord
    itl_gaps_ms: list[float] = field(default_factory=list)


class _Load:
    """Streams one fixed (salted) request per call and times it from its scheduled instant."""

    def __init__(self, client: EndpointClient, model: str, max_tokens: int, ignore_eos: bool, temperature: float,
                 clock: Clock) -> None:
        self.client, self.model, self.max_tokens = client, model, max_tokens
        self.ignore_eos, self.temperature, self.clock = ignore_eos, temperature, clock
        self.gpu: GpuSampler | None = None  # sampling nvidia-smi on the same clock, from its origin

    def with_gpu(self, point: SweepPoint, started: float) -> SweepPoint:
        """The point with the GPU figures of its span (J/token over the tokens it generated)."""
        if self.gpu is None:
            return point
        origin = self.gpu.origin_s
        return point.model_copy(update={"gpu": self.gpu.summary(point.generated_tokens, since_s=started - origin,
                                                                 until_s=self.clock() - origin, with_series=False)})

    def payload(self) -> dict:
        body = {"model": self.model, "messages": [{"role": "user", "content": salted(new_salt(), DECODE_PROMPT)}],
                "max_tokens": self.max_tokens, "temperature": self.temperature}
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    def one(self, index: int, scheduled: float, origin: float) -> _Outcome:
        payload = self.payload()
        sent = self.clock()
        base = SweepRecord(index=index, scheduled_s=scheduled - origin, sent_s=sent - origin, ended_s=0.0,
                           send_lag_ms=(sent - scheduled) * 1000, ttft_ms=None, e2e_ms=None, completion_tokens=None,
                           token_count_source=None, chunks=0, tpot_ms=None, itl_max_ms=None, finish_reason=None)
        try:
            raw = self.client.stream_chat(payload, clock=self.clock)
        except SpendLimitReached:
            raise  # the run must stop, not record failures
        except EndpointError as exc:
            return _Outcome(base.model_copy(update={"ended_s": self.clock() - origin, "error": str(exc)}))
        counted = raw.usage.completion_tokens
        tokens = counted if counted is not None else raw.text_chunks
        ttft = (raw.started_s + raw.ttft_s - scheduled) * 1000 if raw.ttft_s is not None else None
        e2e = (raw.ended_s - scheduled) * 1000
        gaps = [(b - a) * 1000 for a, b in zip(raw.chunk_times_s, raw.chunk_times_s[1:], strict=False)]
        error = None
        if not (raw.done and raw.finish_reason is not None):
            error = f"{self.client.display_url}: stream ended without a finish_reason or end marker"
        elif ttft is None:
            error = f"{self.client.display_url}: stream carried no text"
        record = base.model_copy(update={
            "ended_s": raw.ended_s - origin, "ttft_ms": ttft, "e2e_ms": e2e if error is None else None,
            "completion_tokens": tokens, "token_count_source": "usage" if counted is not None else "chunks",
            "chunks": raw.text_chunks,
            "tpot_ms": (e2e - ttft) / (tokens - 1) if ttft is not None and tokens > 1 else None,
            "itl_max_ms": max(gaps) if gaps else None, "finish_reason": raw.finish_reason, "error": error})
        return _Outcome(record, gaps)


@contextmanager
def _pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A thread pool that, on Ctrl-C or any error, leaves at once instead of waiting out requests in flight."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _closed_loop(load: _Load, concurrency: int, max_requests: int | None,
                 budget_s: float | None) -> list[_Outcome]:
    """k workers, each sending its next request the moment its last one ended."""
    lock = threading.Lock()
    taken = 0
    outcomes: list[_Outcome] = []
    origin = load.clock()
    stop = threading.Event()

    def worker() -> None:
        nonlocal taken
        while not stop.is_set():
            with lock:
                if max_requests is not None and taken >= max_requests:
                    return
                if budget_s is not None and load.clock() - origin >= budget_s:
                    return
                index = taken
                taken += 1
            now = load.clock()
            outcome = load.one(index, now, origin)
            with lock:
                outcomes.append(outcome)

    with _pool(concurrency) as pool:
        try:
            for future in [pool.submit(worker) for _ in range(concurrency)]:
                future.result()  # a SpendLimitReached stops the sweep here
        except BaseException:
            stop.set()  # the other workers take no new request
            raise
    return sorted(outcomes, key=lambda o: o.record.index)


def _open_loop(load: _Load, offsets: list[float], max_in_flight: int) -> list[_Outcome]:
    """Send each request at its scheduled offset, whatever the ones before it are doing."""
    with _pool(max(1, min(len(offsets), max_in_flight))) as pool:
        origin = load.clock() + 0.005  # a moment to start; the schedule is the measure, not the loop
        futures = []
        for index, offset in enumerate(offsets):
            due = origin + offset
            wait_s = due - load.clock()
            if wait_s > 0:
                time.sleep(wait_s)
            futures.append(pool.submit(load.one, index, due, origin))
        return [future.result() for future in futures]


def _point(mode: Mode, level: float, outcomes: list[_Outcome], slo: dict[str, float]) -> SweepPoint:
    gaps = [gap for outcome in outcomes for gap in outcome.itl_gaps_ms]
    return summarize_point(mode, level, [o.record for o in outcomes], gaps, slo)


def measure_client_overhead(concurrency: int, requests: int, chunks: int, *, model: str = "instant",
                            timeout_s: float = 30, clock: Clock = time.perf_counter) -> ClientOverhead:
    """Drive the instant in-process server with the sweep's load generator at ``concurrency``."""
    with InstantServer(chunks=chunks) as server, \
            EndpointClient(server.base_url, timeout_s=timeout_s, max_connections=concurrency + 2) as client:
        load = _Load(client, model, chunks, ignore_eos=False, temperature=0.0, clock=clock)
        _closed_loop(load, concurrency, concurrency, None)  # warm: threads, connections
        point = _point("concurrency", concurrency, _closed_loop(load, concurrency, requests, None), {})
    return ClientOverhead(concurrency=concurrency, requests=point.requests, errors=point.errors,
                          first_error=point.first_error, chunks_per_request=chunks, ttft_ms=point.ttft_ms,
                          itl_ms=point.itl_ms, e2e_ms=point.e2e_ms, request_tps=point.request_tps,
                          output_tps=point.output_tps)


# ---------------------------------------------------------------- the sweep

def run_sweep(connect: Callable[[int], EndpointClient] | str, settings: SweepSettings, *, model: str | None = None,
              profile_id: str | None = None, profile_slots: int | None = None,
              log: Callable[[str], None] = lambda _msg: None, clock: Clock = time.perf_counter,
              notes: Sequence[str] = (), nvidia_smi: str | list[str] | None = None,
              gpu_absent_note: str = "nvidia-smi not found") -> SweepResult:
    """Run the overhead check, the concurrency sweep and the rate sweep against one endpoint.

    ``connect(max_connections)`` opens a client (or pass a URL): one for the probe, one for every
    measured request. ``profile_slots`` (the profile's PARALLEL) is used when /props and --slots cannot tell.
    """
    open_client: Callable[[int], EndpointClient]
    if isinstance(connect, str):
        url = connect

        def open_client(max_connections: int) -> EndpointClient:
            return EndpointClient(url, timeout_s=settings.timeout_s, max_connections=max_connections)
    else:
        open_client = connect

    with open_client(4) as probe_client:
        info = probe_client.probe()
        display_url = probe_client.display_url
    model = model or info.model
    found_notes = list(notes)
    slots, slots_source = _slots(info, settings, profile_slots)
    if slots_source.startswith("unknown"):
        found_notes.append("slots unknown (no /props, no --slots, no profile PARALLEL): ladder assumes 1 slot")
    ignore_eos = settings.ignore_eos == "on" or (settings.ignore_eos == "auto" and info.is_llama_cpp)
    max_tokens = settings.max_tokens
    if info.n_ctx_per_slot and max_tokens + CTX_RESERVE_TOKENS > info.n_ctx_per_slot:
        max_tokens = max(2, info.n_ctx_per_slot - CTX_RESERVE_TOKENS)
        found_notes.append(f"max_tokens clamped to {max_tokens} by the per-slot context {info.n_ctx_per_slot}")
    levels = sorted(set(settings.concurrency)) if settings.concurrency else concurrency_ladder(slots)
    top = max(levels)

    overhead: ClientOverhead | None = None
    overhead_note: str | None = "skipped (--no-overhead-check)"
    if settings.overhead_check:
        requests = settings.overhead_requests or min(max(100, 20 * top), 1000)
        overhead = measure_client_overhead(top, requests, max_tokens,
                                           model=model, timeout_s=settings.timeout_s, clock=clock)
        overhead_note = None
        log(overhead_line(overhead))

    concurrency_points: list[SweepPoint] = []
    rate_points: list[SweepPoint] = []
    c_at: int | None = None
    r_at: float | None = None
    c_why: str | None = None
    r_why: str | None = None
    rates = sorted(set(settings.rates)) if settings.rates else None
    # One client for every measured request (one spend guard); its pool never limits the load.
    rate_cap = min(settings.max_in_flight or MAX_THREADS, MAX_THREADS)
    origin = clock()
    with open_client(max(top, rate_cap) + 2) as client, \
            GpuSampler(nvidia_smi, interval_s=GPU_INTERVAL_S, absent_note=gpu_absent_note, clock=clock,
                       origin_s=origin) as sampler:
        load = _Load(client, model, max_tokens, ignore_eos, settings.temperature, clock)
        load.gpu = sampler if sampler.command else None
        for _ in range(settings.warmup_requests):
            load.one(-1, clock(), clock())
        if settings.sweeps in ("both", "concurrency"):
            concurrency_points, c_at, c_why = _concurrency_sweep(load, levels, settings, log)
        if settings.sweeps in ("both", "rate") and not rates:
            best = max((p.request_tps for p in concurrency_points), default=0.0)
            rates = default_rates(best, settings.rate_factors)
            found_notes.append(
                f"rates: {', '.join(f'{f:g}' for f in settings.rate_factors)} × the best request throughput of "
                f"the concurrency sweep ({best:.3g} req/s)" if rates
                else "rate sweep skipped: the concurrency sweep completed no request to size it from")
        if settings.sweeps in ("both", "rate") and rates:
            rate_points, r_at, r_why = _rate_sweep(load, rates, top, rate_cap, settings, log)
            if overhead is not None and max(rates) > 0.5 * overhead.request_tps:
                found_notes.append(f"offered rates reach past half of what this client can drive "
                                   f"({overhead.request_tps:.0f} req/s): the client may limit the figures")
    if not ignore_eos:
        found_notes.append("ignore_eos not sent (server support unknown): requests may stop early at EOS")
    return SweepResult(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), endpoint=display_url, model=model,
        profile=profile_id, server_kind="llama.cpp" if info.is_llama_cpp else "openai-compatible",
        ignore_eos_sent=ignore_eos,
        settings=settings.model_copy(update={"max_tokens": max_tokens, "concurrency": levels, "rates": rates}),
        slots=slots, slots_source=slots_source, client_overhead=overhead, client_overhead_note=overhead_note,
        concurrency_points=concurrency_points, rate_points=rate_points, concurrency_saturated_at=c_at,
        concurrency_saturation_reason=c_why, rate_saturated_at=r_at, rate_saturation_reason=r_why,
        slo=settings.slo, goodput_note=None if settings.slo else "no --slo set: goodput not computed",
        gpu=sampler.summary(sum(p.generated_tokens for p in concurrency_points + rate_points), with_series=False),
        notes=found_notes)


def _concurrency_sweep(load: _Load, levels: list[int], settings: SweepSettings,
                       log: Callable[[str], None]) -> tuple[list[SweepPoint], int | None, str | None]:
    """Closed-loop points up the ladder; stops at the first saturated level (points, level, why)."""
    points: list[SweepPoint] = []
    for k in levels:
        started = load.clock()
        outcomes = _closed_loop(load, k, closed_loop_requests(settings, k), settings.point_seconds)
        point = load.with_gpu(_point("concurrency", k, outcomes, settings.slo), started)
        point_log(point, log)
        why = concurrency_saturation(points[-1] if points else None, point, settings.min_tps_gain)
        points.append(point)
        if why:
            log(f"saturated at concurrency {k}: {why}")
            return points, k, why
    return points, None, None


def _rate_sweep(load: _Load, rates: list[float], top: int, max_in_flight: int, settings: SweepSettings,
                log: Callable[[str], None]) -> tuple[list[SweepPoint], float | None, str | None]:
    """Open-loop points up the rates; stops at the first saturated rate (points, rate, why)."""
    points: list[SweepPoint] = []
    for rate in rates:
        rng = random.Random(f"{settings.seed}/{rate:g}")  # the same arrivals for every server at this rate
        offsets = poisson_offsets(rate, open_loop_requests(settings, rate, top), rng)
        started = load.clock()
        point = load.with_gpu(_point("rate", rate, _open_loop(load, offsets, max_in_flight), settings.slo), started)
        point_log(point, log)
        points.append(point)
        why = rate_saturation(point, settings.min_rate_ratio)
        if why:
            log(f"saturated at {rate:g} req/s: {why}")
            return points, rate, why
    return points, None, None


def _slots(info: ServerInfo, settings: SweepSettings, profile_slots: int | None) -> tuple[int, str]:
    if info.slots:
        return info.slots, "/props total_slots"
    if settings.slots:
        return settings.slots, "--slots"
    if profile_slots:
        return profile_slots, "profile PARALLEL"
    return 1, "unknown (pass --slots)"


# ---------------------------------------------------------------- output

def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _pct(p: Percentiles | None, which: str) -> str:
    return "n/a" if p is None else _ms(getattr(p, which))


def overhead_line(overhead: ClientOverhead) -> str:
    """One line: what the client itself costs."""
    errors = f", {overhead.errors} errors ({overhead.first_error})" if overhead.errors else ""
    return (f"client overhead: ttft p50 {_pct(overhead.ttft_ms, 'p50')} ms p99 {_pct(overhead.ttft_ms, 'p99')} ms, "
            f"e2e p50 {_pct(overhead.e2e_ms, 'p50')} ms p99 {_pct(overhead.e2e_ms, 'p99')} ms "
            f"({overhead.chunks_per_request} chunks), up to {overhead.request_tps:.0f} req/s at "
            f"{overhead.concurrency} streams{errors}")


def point_log(point: SweepPoint, log: Callable[[str], None]) -> None:
    """The progress line of one point."""
    level = f"concurrency {point.concurrency}" if point.mode == "concurrency" else f"rate {point.offered_rate:g} req/s"
    extra = ""
    if point.mode == "rate":
        achieved = "n/a" if point.achieved_rps is None else f"{point.achieved_rps:.2f}"
        extra = f", achieved {achieved} req/s, send lag p99 {_pct(point.send_lag_ms, 'p99')} ms"
    errors = f", {point.errors} errors" if point.errors else ""
    log(f"{level}: {point.requests} requests, {point.output_tps:.0f} tok/s, "
        f"ttft p50 {_pct(point.ttft_ms, 'p50')} ms{extra}{errors}")


def format_sweep(result: SweepResult) -> str:
    """The stdout summary: a header, the client overhead, one table row per point, saturation, notes."""
    s = result.settings
    head = (f"Sweep {result.model} at {result.endpoint} — slots {result.slots} ({result.slots_source}), "
            f"max_tokens {s.max_tokens}, ignore_eos {'sent' if result.ignore_eos_sent else 'not sent'}, "
            f"seed {s.seed}")
    lines = [head]
    lines.append(overhead_line(result.client_overhead) if result.client_overhead
                 else f"client overhead: {result.client_overhead_note}")
    if result.slo:
        lines.append("SLO: " + ", ".join(f"{k} ≤ {v:g}" for k, v in result.slo.items()))
    rows = []
    for p in result.concurrency_points + result.rate_points:
        level = f"c={p.concurrency}" if p.mode == "concurrency" else f"{p.offered_rate:g} req/s"
        rows.append([level, p.requests, p.errors, f"{p.output_tps:.1f}", f"{p.request_tps:.2f}",
                     "n/a" if p.goodput_rps is None else f"{p.goodput_rps:.2f}",
                     _pct(p.ttft_ms, "p50"), _pct(p.ttft_ms, "p99"), _pct(p.itl_ms, "p50"), _pct(p.itl_ms, "p99"),
                     _pct(p.tpot_ms, "p50"), _pct(p.e2e_ms, "p50"), _pct(p.e2e_ms, "p99"),
                     _pct(p.send_lag_ms, "p99") if p.mode == "rate" else "-"])
    if rows:
        lines.append(tabulate(rows, headers=["load", "req", "err", "tok/s", "req/s", "goodput", "ttft p50",
                                             "ttft p99", "itl p50", "itl p99", "tpot p50", "e2e p50", "e2e p99",
                                             "lag p99"], disable_numparse=True))
        lines.append("(times in ms; ttft/e2e from each request's scheduled instant)")
    else:
        lines.append("no load points were measured")
    if result.concurrency_points:
        lines.append(f"concurrency saturated at {result.concurrency_saturated_at}: "
                     f"{result.concurrency_saturation_reason}" if result.concurrency_saturated_at is not None
                     else "concurrency: no saturation up to the last level")
    if result.rate_points:
        lines.append(f"rate saturated at {result.rate_saturated_at:g} req/s: {result.rate_saturation_reason}"
                     if result.rate_saturated_at is not None else "rate: no saturation up to the last rate")
    first_errors = [p.first_error for p in result.concurrency_points + result.rate_points if p.first_error]
    if first_errors:
        lines.append(f"first error: {first_errors[0]}")
    if result.goodput_note:
        lines.append(f"goodput: {result.goodput_note}")
    lines += gpu_lines(result.gpu)
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


def write_sweep(result: SweepResult, path: Path) -> Path:
    """Write the result JSON atomically."""
    return write_text_atomic(path, result.model_dump_json(indent=2) + "\n")
