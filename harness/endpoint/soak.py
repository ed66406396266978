"""Soak: mixed traffic for a long time, watched window by window for drift, errors and restarts.

``concurrency`` workers (default: the server's slots) loop over a rotating mix of requests:

* ``chat`` — a short question, non-streamed;
* ``long_prompt`` — salted filler of about half the per-slot context, streamed with a few output
  tokens; gives prompt tokens/s (the server's ``timings.prompt_per_second`` when sent, else
  ``prompt_tokens / TTFT``);
* ``tool_call`` — a question with ``tools=[get_weather]``, non-streamed (whether the model called
  the tool is counted, not judged);
* ``decode`` — a streamed decode of ``max_tokens`` (``ignore_eos`` on llama.cpp); gives decode
  tokens/s exactly as the throughput bench computes it (``throughput.decode_rate``).

Each request belongs to the window in which it ended. At each window's end the server container is
read (memory, running state, restarts; compose profiles only) and GPU figures come from
``GpuSampler``. Drift is the least-squares slope of the per-window figure over time, with a 95%
interval from the t-distribution: an interval above zero for memory means "memory grows".

Failures are data: a failed request is counted in its window with its error. A server that dies
ends the soak early with the reason and its log tail; Ctrl-C ends it too. Either way the windows
measured so far are returned (and saved by the CLI).
"""

from __future__ import annotations

import itertools
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from tabulate import tabulate

from harness.endpoint.client import EndpointClient, ServerInfo
from harness.endpoint.measured import Measured
from harness.endpoint.spend import SpendLimitReached
from harness.endpoint.telemetry import GpuSampler, GpuTelemetry, fmt_number, gpu_lines
from harness.endpoint.throughput import DECODE_PROMPT, Spread, decode_rate, filler_text, new_salt, salted
from harness.errors import EndpointError, HarnessError
from harness.files import write_text_atomic
from harness.serving.stats import ContainerSnapshot, restarts_between

RequestKind = Literal["chat", "long_prompt", "tool_call", "decode"]
DEFAULT_MIX: tuple[RequestKind, ...] = ("chat", "long_prompt", "tool_call", "decode")
LONG_PROMPT_OUTPUT_TOKENS = 16
SHORT_OUTPUT_TOKENS = 32
DEFAULT_CONTEXT_TOKENS = 2048  # assumed per-slot context when the server does not say
CHAT_PROMPT = "In one sentence: why is the sky blue?"
TOOL_PROMPT = "What is the weather in Paris right now? Use the get_weather tool."
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
Clock = Callable[[], float]


# ---------------------------------------------------------------- result models

class SoakSettings(BaseModel):
    """What shaped the soak; recorded with it (concurrency and long prompt as resolved)."""

    minutes: float = Field(gt=0, description="traffic time; fresh-mode restarts add their own time to it")
    window_s: float = Field(default=30, gt=0)
    mode: Literal["continuous", "fresh"] = "continuous"
    fresh_every_windows: int = Field(default=1, ge=1, description="fresh mode: restart after this many windows")
    concurrency: int | None = Field(default=None, ge=1, description="workers; None: the server's slots")
    mix: list[RequestKind] = Field(default_factory=lambda: list(DEFAULT_MIX), min_length=1)
    max_tokens: int = Field(default=128, ge=2, description="tokens per decode request")
    long_prompt_tokens: int | None = Field(default=None, ge=8, description="None: half the per-slot context")
    timeout_s: float = Field(default=120, gt=0, description="longest one request may take")
    gpu_interval_s: float = Field(default=1.0, gt=0)


class Drift(BaseModel):
    """Least-squares slope of a per-window figure over time, with its 95% t-interval."""

    n: int = Field(description="windows with a value")
    baseline: float = Field(description="the first window's value")
    slope_per_hour: float
    low: float | None = Field(description="95% interval of the slope per hour; None with under 3 windows")
    high: float | None
    pct_per_hour: float | None = Field(description="slope as % of the first window per hour")

    @property
    def rises(self) -> bool:
        return self.low is not None and self.low > 0

    @property
    def falls(self) -> bool:
        return self.high is not None and self.high < 0

    def text(self, unit: str, digits: int = 1) -> str:
        interval = (f" (95% {self.low:+.{digits}f} … {self.high:+.{digits}f})" if self.low is not None
                    and self.high is not None else " (interval needs 3+ windows)")
        pct = f", {self.pct_per_hour:+.1f}%/h of the first window" if self.pct_per_hour is not None else ""
        return f"{self.slope_per_hour:+.{digits}f} {unit}/h{interval}{pct}, {self.n} windows"


class SoakWindow(BaseModel):
    """One window of the soak; requests are counted in the window they ended in."""

    index: int
    t_start_s: float = Field(description="seconds from the soak's start")
    t_end_s: float
    requests: int
    errors: int
    first_error: str | None = None
    requests_by_kind: dict[str, int] = Field(default_factory=dict)
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    completion_tokens: int = Field(description="tokens generated by the successful requests")
    tool_calls_returned: int = 0
    decode_tps: Spread | None = Field(description="decode tok/s over this window's decode requests")
    prompt_tps: Spread | None = Field(description="prompt tok/s over this window's long-prompt requests")
    mem_mib: float | None = Field(default=None, description="server container memory at the window's end")
    vram_mib: float | None = Field(default=None, description="peak memory.used over GPUs in the window")
    restarts: int = Field(default=0, description="restarts not caused by fresh mode, seen at the window's end")
    fresh_restart_s: float | None = Field(default=None, description="fresh mode: seconds to healthy after the "
                                                                    "restart that preceded this window")
    gpu: GpuTelemetry | None = Field(default=None, description="this window's GPU figures (no series)")


class SoakResult(Measured):
    """One soak of one endpoint: settings, windows, drift, errors, restarts, GPU telemetry."""

    kind: Literal["soak"] = "soak"
    schema_version: Literal[1] = 1
    slots: int | None
    n_ctx_per_slot: int | None
    settings: SoakSettings
    duration_s: float = Field(description="traffic start to the last window's end")
    windows: list[SoakWindow]
    decode_drift: Drift | None
    prompt_drift: Drift | None
    mem_drift: Drift | None
    memory_grows: bool = Field(description="mem_drift's 95% interval lies above 0")
    decode_slows: bool = Field(description="decode_drift's 95% interval lies below 0")
    requests_total: int
    errors_total: int
    restarts_total: int = Field(description="restarts not caused by fresh mode")
    fresh_restarts: int = Field(default=0, description="restarts fresh mode made")
    tool_calls_returned: int = 0
    ended_early: str | None = Field(default=None, description="why the soak stopped before --minutes")
    log_tail: str | None = Field(default=None, description="server log tail when it died")
    gpu: GpuTelemetry | None
    notes: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------- drift (pure)

# Two-sided 95% Student t quantiles for 1..30 degrees of freedom; beyond, the Cornish-Fisher series.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (error < 1e-3)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def drift(times_s: Sequence[float], values: Sequence[float | None]) -> Drift | None:
    """Slope per hour of values over times by least squares, with a 95% interval; None under 2 points."""
    points = [(t, v) for t, v in zip(times_s, values, strict=True) if v is not None]
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    sxx = sum((t - mean_t) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / sxx
    low = high = None
    if n >= 3:
        residual = sum((v - mean_v - slope * (t - mean_t)) ** 2 for t, v in points)
        half = t_quantile_975(n - 2) * math.sqrt(residual / (n - 2) / sxx)
        low, high = (slope - half) * 3600, (slope + half) * 3600
    baseline = points[0][1]
    per_hour = slope * 3600
    return Drift(n=n, baseline=baseline, slope_per_hour=per_hour, low=low, high=high,
                 pct_per_hour=per_hour / baseline * 100 if baseline else None)


# ---------------------------------------------------------------- requests

@dataclass(frozen=True)
class RequestRecord:
    """One request of the mix as it came out; ``error`` set when it failed."""

    kind: RequestKind
    t_start_s: float
    t_end_s: float
    error: str | None = None
    completion_tokens: int = 0
    decode_tps: float | None = None
    prompt_tps: float | None = None
    tool_called: bool = False


@dataclass
class ServerControl:
    """How the soak reads (and in fresh mode restarts) a compose-served server; None for a bare URL.

    ``snapshot`` raises (any exception) when the container is gone; ``restart`` returns seconds to healthy.
    """

    snapshot: Callable[[], ContainerSnapshot]
    log_tail: Callable[[], str]
    restart: Callable[[], float] | None = None


class _Traffic:
    """The request mix against one endpoint; ``one(kind)`` never raises for a failed request."""

    def __init__(self, client: EndpointClient, model: str, settings: SoakSettings, ignore_eos: bool,
                 long_words: int, clock: Clock, origin_s: float):
        self.client, self.model, self.settings = client, model, settings
        self.ignore_eos, self.long_words = ignore_eos, long_words
        self.clock, self.origin_s = clock, origin_s

    def _payload(self, text: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
        return {"model": self.model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
                "temperature": 0.0, **extra}

    def one(self, kind: RequestKind) -> RequestRecord:
        started = self.clock() - self.origin_s
        try:
            fields = getattr(self, f"_{kind}")()
        except SpendLimitReached:
            raise  # the run must stop, not record failures
        except HarnessError as exc:
            fields = {"error": str(exc)}
        except Exception as exc:  # errors are data: a worker never dies of one request
            fields = {"error": f"{type(exc).__name__}: {exc}"}
        return RequestRecord(kind=kind, t_start_s=started, t_end_s=self.clock() - self.origin_s, **fields)

    def _chat(self, tools: bool = False) -> dict[str, Any]:
        extra = {"tools": TOOLS} if tools else {}
        text = TOOL_PROMPT if tools else CHAT_PROMPT
        outcome = self.client.chat(self._payload(salted(new_salt(), text), SHORT_OUTPUT_TOKENS, **extra))
        if outcome.reply is None:
            return {"error": f"{outcome.failure}: {outcome.error}"}
        return {"completion_tokens": outcome.reply.usage.completion_tokens or 0,
                "tool_called": bool(outcome.reply.tool_calls)}

    def _tool_call(self) -> dict[str, Any]:
        return self._chat(tools=True)

    def _stream(self, payload: dict[str, Any]) -> tuple[Any, int, str | None]:
        raw = self.client.stream_chat(payload, clock=self.clock)
        counted = raw.usage.completion_tokens
        tokens = int(counted) if counted is not None else raw.text_chunks
        unfinished = None if raw.done and raw.finish_reason else "stream ended without finish_reason or end marker"
        return raw, tokens, unfinished

    def _long_prompt(self) -> dict[str, Any]:
        text = salted(new_salt(), filler_text(self.long_words))
        raw, tokens, unfinished = self._stream(self._payload(text, LONG_PROMPT_OUTPUT_TOKENS))
        if unfinished:
            return {"error": unfinished}
        server_pp = (raw.timings or {}).get("prompt_per_second")
        prompt_tokens = raw.usage.prompt_tokens
        client_pp = prompt_tokens / raw.ttft_s if prompt_tokens and raw.ttft_s else None
        return {"completion_tokens": tokens, "prompt_tps": server_pp if server_pp is not None else client_pp}

    def _decode(self) -> dict[str, Any]:
        extra = {"ignore_eos": True} if self.ignore_eos else {}
        payload = self._payload(salted(new_salt(), DECODE_PROMPT), self.settings.max_tokens, **extra)
        raw, tokens, unfinished = self._stream(payload)
        if unfinished:
            return {"error": unfinished}
        return {"completion_tokens": tokens, "decode_tps": decode_rate(tokens, raw.ttft_s, raw.wall_s)[0]}


def _long_prompt_words(client: EndpointClient, model: str, target_tokens: int,
                       log: Callable[[str], None]) -> tuple[int, str | None]:
    """Filler words for about ``target_tokens`` prompt tokens, from one calibration request (also a warmup)."""
    words = max(8, int(target_tokens * 0.75))  # filler words are about one token each; start below the target
    payload = {"model": model, "messages": [{"role": "user", "content": salted(new_salt(), filler_text(words))}],
               "max_tokens": 1, "temperature": 0.0}
    outcome = client.chat(payload)
    tokens = outcome.reply.usage.prompt_tokens if outcome.reply else None
    if not tokens:
        why = outcome.error or "no usage.prompt_tokens"
        return words, f"long prompt not calibrated ({why[:160]}): {words} filler words"
    scaled = max(8, round(words * target_tokens / tokens))
    log(f"long prompt: {words} words -> {tokens} tokens; using {scaled} words for ~{target_tokens} tokens")
    return scaled, None


# ---------------------------------------------------------------- the run

@dataclass
class _Live:
    """Per-window observations made while the soak runs (the requests are grouped afterwards)."""

    bounds: list[tuple[float, float]]
    mem_mib: list[float | None]
    restarts: list[int]
    fresh_restart_s: list[float | None]


class _Workers:
    """``concurrency`` threads looping over the mix; a gate pauses them (fresh-mode restarts)."""

    def __init__(self, traffic: _Traffic, mix: Sequence[RequestKind], concurrency: int):
        self.traffic = traffic
        self.records: list[RequestRecord] = []
        self.stop = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.stop_reason: str | None = None
        self._kinds = itertools.cycle(mix)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._threads = [threading.Thread(target=self._loop, name=f"soak-{i}", daemon=True)
                         for i in range(concurrency)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        while True:
            self.gate.wait()
            with self._lock:
                if self.stop.is_set():
                    return
                kind = next(self._kinds)
                self._in_flight += 1
            try:
                record = self.traffic.one(kind)
            except SpendLimitReached as exc:
                self.stop_reason = f"spend limit reached: {exc}"
                self.stop.set()
                return
            finally:
                with self._lock:
                    self._in_flight -= 1
            with self._lock:
                self.records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self.records)

    def drain(self, timeout_s: float) -> None:
        """Pause (no new requests) and wait up to timeout_s for those in flight."""
        self.gate.clear()
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            with self._lock:
                if self._in_flight == 0:
                    return
            time.sleep(0.05)

    def resume(self) -> None:
        self.gate.set()

    def finish(self, timeout_s: float) -> None:
        """No new requests; wait up to timeout_s for those in flight."""
        with self._lock:
            self.stop.set()
        self.gate.set()
        until = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, until - time.monotonic()))


def window_of(records: Sequence[RequestRecord], index: int, start_s: float, end_s: float) -> SoakWindow:
    """The figures of one window from the requests that ended in it (pure)."""
    errors = [r for r in records if r.error]
    ok = [r for r in records if not r.error]
    by_kind: dict[str, int] = {}
    errors_by_kind: dict[str, int] = {}
    for record in records:
        by_kind[record.kind] = by_kind.get(record.kind, 0) + 1
    for record in errors:
        errors_by_kind[record.kind] = errors_by_kind.get(record.kind, 0) + 1
    first = min(errors, key=lambda r: r.t_end_s) if errors else None
    return SoakWindow(
        index=index, t_start_s=start_s, t_end_s=end_s, requests=len(records), errors=len(errors),
        first_error=f"{first.kind}: {first.error}"[:300] if first else None, requests_by_kind=by_kind,
        errors_by_kind=errors_by_kind, completion_tokens=sum(r.completion_tokens for r in ok),
        tool_calls_returned=sum(r.tool_called for r in ok),
        decode_tps=Spread.of([r.decode_tps for r in ok if r.kind == "decode"]),
        prompt_tps=Spread.of([r.prompt_tps for r in ok if r.kind == "long_prompt"]))


def _group(records: Sequence[RequestRecord], bounds: Sequence[tuple[float, float]]) -> list[list[RequestRecord]]:
    """Each request into the window it ended in; stragglers after the last window's end go into it."""
    groups: list[list[RequestRecord]] = [[] for _ in bounds]
    for record in records:
        index = next((i for i in range(len(bounds) - 1, -1, -1) if record.t_end_s >= bounds[i][0]), 0)
        groups[index].append(record)
    return groups


def _describe_death(snap: ContainerSnapshot | None, problem: str | None) -> str:
    if snap is None:
        return f"server container gone ({problem})"
    cause = "was OOM-killed" if snap.oom_killed else f"exited with code {snap.exit_code}"
    return f"server container {cause} ({snap.status})"


def run_soak(client: EndpointClient, settings: SoakSettings, *, model: str | None = None,
             profile_id: str | None = None, server: ServerControl | None = None,
             nvidia_smi: str | list[str] | None = None, gpu_absent_note: str = "nvidia-smi not found",
             log: Callable[[str], None] = lambda _msg: None, clock: Clock = time.monotonic,
             notes: Sequence[str] = ()) -> SoakResult:
    """Run the soak and return what was measured, also when the server died or Ctrl-C was pressed."""
    info = client.probe()
    model = model or info.model
    notes = list(notes)
    if settings.mode == "fresh" and (server is None or server.restart is None):
        raise EndpointError(f"{client.display_url}: fresh mode restarts the server, so it needs a PROFILE, not a URL")
    concurrency = settings.concurrency or info.slots or 1
    if settings.concurrency is None and not info.slots:
        notes.append("server slots unknown: concurrency 1 (pass --concurrency)")
    context = info.n_ctx_per_slot or DEFAULT_CONTEXT_TOKENS
    long_tokens = settings.long_prompt_tokens or context // 2
    max_tokens = settings.max_tokens
    if info.n_ctx_per_slot and max_tokens + 128 > info.n_ctx_per_slot:
        max_tokens = max(2, info.n_ctx_per_slot - 128)
        notes.append(f"max_tokens clamped to {max_tokens} by the per-slot context {info.n_ctx_per_slot}")
    settings = settings.model_copy(update={"concurrency": concurrency, "long_prompt_tokens": long_tokens,
                                           "max_tokens": max_tokens})
    long_words, calibration_note = _long_prompt_words(client, model, long_tokens, log)
    if calibration_note:
        notes.append(calibration_note)
    if server is None:
        notes.append("container memory and restarts: n/a (a URL target; give a PROFILE to watch its container)")
    if settings.mode == "fresh":
        notes.append("fresh mode: the server restarts every "
                     f"{settings.fresh_every_windows} window(s), so memory drift spans restarts")

    duration_s = settings.minutes * 60  # of traffic: fresh-mode drains and restarts are not counted
    origin = clock()
    traffic = _Traffic(client, model, settings, info.is_llama_cpp, long_words, clock, origin)
    workers = _Workers(traffic, settings.mix, concurrency)
    live = _Live(bounds=[], mem_mib=[], restarts=[], fresh_restart_s=[])
    ended_early: str | None = None
    log_tail: str | None = None
    baseline: ContainerSnapshot | None = None
    if server is not None:
        try:
            baseline = server.snapshot()
        except Exception as exc:
            raise EndpointError(f"{client.display_url}: cannot read the server container: {exc}") from exc

    def now() -> float:
        return clock() - origin

    def close_window(start: float, fresh_s: float | None) -> float:
        """Record the window [start, now] and read the server; returns the window's end."""
        nonlocal baseline, ended_early, log_tail
        end = now()
        mine = [r for r in workers.snapshot() if start <= r.t_end_s <= end]
        mem, restarts = None, 0
        if server is not None and baseline is not None:
            snap, problem = None, None
            try:
                snap = server.snapshot()
            except Exception as exc:  # a vanished container is the finding, not a crash
                problem = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
            if snap is not None:
                mem, restarts = snap.mem_mib, restarts_between(baseline, snap)
                baseline = snap
            if snap is None or not snap.running:
                ended_early = f"{_describe_death(snap, problem)} at {end:.0f}s"
                log_tail = server.log_tail()
        elif server is None and mine and all(r.error for r in mine):
            try:
                client.get("/health", timeout_s=5)
            except EndpointError as exc:
                ended_early = f"endpoint unreachable at {end:.0f}s: {exc}"
        live.bounds.append((start, end))  # all four lists grow together
        live.fresh_restart_s.append(fresh_s)
        live.mem_mib.append(mem)
        live.restarts.append(restarts)
        window = window_of(mine, len(live.bounds) - 1, start, end)
        log(f"window {window.index + 1} ({start:.0f}–{end:.0f}s): {window.requests} req, {window.errors} err, "
            f"decode {_spread(window.decode_tps)} tok/s, pp {_spread(window.prompt_tps)} tok/s"
            + (f", mem {fmt_number(mem, 0)} MiB" if server is not None else "")
            + (f", {restarts} restart(s)!" if restarts else ""))
        return end

    gpu_sampler = GpuSampler(nvidia_smi, interval_s=settings.gpu_interval_s, absent_note=gpu_absent_note,
                             clock=clock, origin_s=origin)
    with gpu_sampler:
        workers.start()
        start, fresh_s, traffic_s = 0.0, None, 0.0
        try:
            while ended_early is None:
                planned_s = min(settings.window_s, duration_s - traffic_s)
                boundary = start + planned_s
                while now() < boundary and not workers.stop.is_set():
                    workers.stop.wait(min(0.2, max(0.0, boundary - now())))
                traffic_s += planned_s
                if workers.stop_reason:
                    ended_early = workers.stop_reason
                last = traffic_s >= duration_s - 1e-6 or ended_early is not None
                if last:
                    workers.finish(settings.timeout_s + 5)
                elif settings.mode == "fresh" and (len(live.bounds) + 1) % settings.fresh_every_windows == 0:
                    workers.drain(settings.timeout_s + 5)
                end = close_window(start, fresh_s)
                if last or ended_early is not None:
                    break
                start, fresh_s = end, None
                if not workers.gate.is_set():  # drained for a fresh restart
                    assert server is not None and server.restart is not None
                    log("fresh mode: restarting the server")
                    try:
                        fresh_s = server.restart()
                        baseline = server.snapshot()
                    except Exception as exc:  # recorded as the reason the soak ended
                        ended_early = f"fresh restart failed: {str(exc).strip().splitlines()[0][:300]}"
                        log_tail = server.log_tail()
                        break
                    start = now()
                    workers.resume()
        except KeyboardInterrupt:
            ended_early = f"interrupted (Ctrl-C) at {now():.0f}s"
            workers.stop.set()
            workers.gate.set()
            if not live.bounds or live.bounds[-1][0] != start:  # the window under way, as far as it got
                live.bounds.append((start, now()))
                live.fresh_restart_s.append(fresh_s)
                live.mem_mib.append(None)
                live.restarts.append(0)
        if ended_early is not None and not workers.stop.is_set():
            workers.finish(0)
    return _result(client, info, model, profile_id, settings, workers.snapshot(), live, gpu_sampler, ended_early,
                   log_tail, notes)


def _result(client: EndpointClient, info: ServerInfo, model: str, profile_id: str | None, settings: SoakSettings,
            records: list[RequestRecord], live: _Live, gpu_sampler: GpuSampler, ended_early: str | None,
            log_tail: str | None, notes: list[str]) -> SoakResult:
    windows = []
    sampling = bool(gpu_sampler.command)
    for index, (group, (start, end)) in enumerate(zip(_group(records, live.bounds), live.bounds, strict=True)):
        window = window_of(group, index, start, end)
        window.mem_mib, window.restarts = live.mem_mib[index], live.restarts[index]
        window.fresh_restart_s = live.fresh_restart_s[index]
        if sampling:
            window.gpu = gpu_sampler.summary(window.completion_tokens, since_s=start, until_s=end, with_series=False)
            window.vram_mib = window.gpu.vram_peak_mib
        windows.append(window)
    middles = [(w.t_start_s + w.t_end_s) / 2 for w in windows]
    decode = drift(middles, [w.decode_tps.median if w.decode_tps else None for w in windows])
    prompt = drift(middles, [w.prompt_tps.median if w.prompt_tps else None for w in windows])
    mem = drift([w.t_end_s for w in windows], [w.mem_mib for w in windows])
    tokens = sum(w.completion_tokens for w in windows)
    return SoakResult(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), endpoint=client.display_url, model=model,
        profile=profile_id, server_kind="llama.cpp" if info.is_llama_cpp else "openai-compatible", slots=info.slots,
        n_ctx_per_slot=info.n_ctx_per_slot, settings=settings,
        duration_s=live.bounds[-1][1] if live.bounds else 0.0, windows=windows, decode_drift=decode,
        prompt_drift=prompt, mem_drift=mem, memory_grows=bool(mem and mem.rises),
        decode_slows=bool(decode and decode.falls), requests_total=sum(w.requests for w in windows),
        errors_total=sum(w.errors for w in windows), restarts_total=sum(w.restarts for w in windows),
        fresh_restarts=sum(w.fresh_restart_s is not None for w in windows),
        tool_calls_returned=sum(w.tool_calls_returned for w in windows), ended_early=ended_early, log_tail=log_tail,
        gpu=gpu_sampler.summary(tokens), notes=notes)


# ---------------------------------------------------------------- output

def _span(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _spread(spread: Spread | None) -> str:
    return "n/a" if spread is None else f"{spread.median:.1f}"


def format_soak(result: SoakResult) -> str:
    """The stdout summary: one row per window, then drift, errors, restarts and GPU lines."""
    s = result.settings
    head = (f"Soak {result.model} at {result.endpoint} — {s.mode}, ran {_span(result.duration_s)} of "
            f"{_span(s.minutes * 60)}, {len(result.windows)} windows of {s.window_s:g}s, concurrency {s.concurrency}, "
            f"mix {'/'.join(s.mix)}")
    columns: dict[str, list[str]] = {
        "win": [str(w.index + 1) for w in result.windows],
        "t (s)": [f"{w.t_start_s:.0f}–{w.t_end_s:.0f}" for w in result.windows],
        "req": [str(w.requests) for w in result.windows],
        "err": [str(w.errors) for w in result.windows],
        "decode tok/s": [w.decode_tps.text() if w.decode_tps else "n/a" for w in result.windows],
        "pp tok/s": [w.prompt_tps.text(0) if w.prompt_tps else "n/a" for w in result.windows],
        "mem MiB": [fmt_number(w.mem_mib, 0) for w in result.windows],
        "VRAM MiB": [fmt_number(w.vram_mib, 0) for w in result.windows],
        "restarts": [str(w.restarts or "") for w in result.windows],
        "fresh up (s)": [fmt_number(w.fresh_restart_s) if w.fresh_restart_s is not None else ""
                         for w in result.windows],
    }
    optional = ("mem MiB", "VRAM MiB", "restarts", "fresh up (s)")  # shown when some window has a figure
    shown = {k: v for k, v in columns.items() if k not in optional or any(x not in ("", "n/a") for x in v)}
    table = tabulate(list(zip(*shown.values(), strict=True)), headers=list(shown), disable_numparse=True)
    lines = [head, table]
    for label, found, unit in (("decode drift", result.decode_drift, "tok/s"),
                               ("prompt drift", result.prompt_drift, "tok/s"),
                               ("memory drift", result.mem_drift, "MiB")):
        lines.append(f"{label}: {found.text(unit) if found else 'n/a (needs 2+ windows with a value)'}")
    if result.memory_grows:
        lines.append("MEMORY GROWS: the memory slope's 95% interval lies above 0")
    if result.decode_slows:
        lines.append("DECODE SLOWS: the decode slope's 95% interval lies below 0")
    first_error = next((w.first_error for w in result.windows if w.first_error), None)
    lines.append(f"requests {result.requests_total}, errors {result.errors_total}"
                 + (f" (first: {first_error})" if first_error else "")
                 + f", tool calls returned {result.tool_calls_returned}")
    lines.append(f"restarts not caused by the soak: {result.restarts_total}"
                 + (f"; fresh-mode restarts: {result.fresh_restarts}" if s.mode == "fresh" else ""))
    lines += gpu_lines(result.gpu)
    if result.ended_early:
        lines.append(f"ENDED EARLY: {result.ended_early}")
        if result.log_tail:
            lines += [f"  | {line}" for line in result.log_tail.rstrip().splitlines()[-15:]]
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


def write_soak(result: SoakResult, path: Path) -> Path:
    """Write the result JSON atomically."""
    return write_text_atomic(path, result.model_dump_json(indent=2) + "\n")
