"""GPU figures sampled from ``nvidia-smi`` in a background thread.

``GpuSampler`` polls power, SM clock, temperature, memory and throttle reasons per GPU, summarised
as ``GpuTelemetry`` (energy, joules per generated token, peak VRAM, a time series) over any span of
a throughput bench, a sweep point or a soak window.

Where there is no nvidia-smi the figures are None and the note says so, so a result never
shows a made-up zero.
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

# ---------------------------------------------------------------- GPU telemetry (power, clocks, throttling)
#
# One `nvidia-smi --query-gpu=...` line per GPU per poll. Drivers from R545 on call the throttle field
# clocks_event_reasons.active and some reject the old name ("is not a valid field to query"); older
# ones know only the old name: the sampler tries one, and on that refusal switches to the other.

THROTTLE_FIELD = "clocks_throttle_reasons.active"
EVENT_FIELD = "clocks_event_reasons.active"
_GPU_FIELDS = "index,name,power.draw,clocks.sm,temperature.gpu,memory.used,memory.total"
_COLUMNS = 8  # the seven above plus the throttle bitmask
# nvidia-smi's documented clocks_throttle_reasons bits (nvml.h, nvmlClocksThrottleReason*)
THROTTLE_REASONS: dict[int, str] = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
SERIES_MAX_POINTS = 720  # per GPU: a 30-minute soak at 1 s keeps every other sample


class GpuReading(BaseModel):
    """One GPU at one poll; None where nvidia-smi printed [N/A], [Not Supported] or nothing."""

    index: int
    name: str
    power_w: float | None
    sm_clock_mhz: float | None
    temp_c: float | None
    mem_used_mib: float | None
    mem_total_mib: float | None
    throttle_mask: int | None


class GpuSample(BaseModel):
    """One poll: every GPU, at t_s seconds from the sampler's origin."""

    t_s: float
    gpus: list[GpuReading]


class GpuPoint(BaseModel):
    """One GPU at one instant, for time-series charts."""

    t_s: float
    gpu: int = Field(description="GPU index")
    power_w: float | None
    mem_used_mib: float | None
    sm_clock_mhz: float | None
    temp_c: float | None


class GpuStats(BaseModel):
    """One GPU over a span of samples."""

    index: int
    name: str
    samples: int
    power_w_mean: float | None
    power_w_max: float | None
    energy_j: float | None = Field(description="trapezoid rule over power.draw and sample times; None under 2 samples")
    sm_clock_mhz_min: float | None
    sm_clock_mhz_median: float | None
    sm_clock_mhz_max: float | None
    temp_c_max: float | None
    vram_peak_mib: float | None
    vram_total_mib: float | None
    throttle_reasons: dict[str, float] = Field(
        default_factory=dict, description="reason -> fraction of samples (with a readable bitmask) it was active in")


class GpuTelemetry(BaseModel):
    """What nvidia-smi saw over a span: per-GPU summaries, energy per generated token, a time series."""

    interval_s: float
    samples: int = Field(description="polls that returned a reading")
    duration_s: float | None = Field(description="first to last poll in the span")
    gpus: list[GpuStats] = Field(default_factory=list)
    energy_j: float | None = Field(default=None, description="sum over GPUs; None when any GPU has no energy figure")
    vram_peak_mib: float | None = Field(default=None, description="peak of memory.used summed over GPUs at one poll")
    generated_tokens: int | None = None
    j_per_token: float | None = Field(default=None, description="energy_j / generated_tokens (all GPUs)")
    throttle_field: str | None = Field(default=None, description="the bitmask field this driver answered")
    note: str | None = Field(default=None, description="why figures are missing (e.g. nvidia-smi not found)")
    series: list[GpuPoint] = Field(default_factory=list, description="per-GPU points, thinned to a few hundred")


def _gpu_value(text: str) -> float | None:
    """A number, or None for [N/A], [Not Supported], ERR!, blank and any other non-number."""
    try:
        return float(text)
    except ValueError:
        return None


def _gpu_mask(text: str) -> int | None:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def parse_gpu_readings(text: str) -> list[GpuReading]:
    """Readings from ``--query-gpu=index,name,...,<throttle field> --format=csv,noheader,nounits``.

    A line that is not a GPU line (a driver error nvidia-smi printed instead) raises ValueError naming it.
    """
    readings = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [part.strip() for part in line.split(",")]
        if len(fields) < _COLUMNS or not fields[0].isdigit():
            raise ValueError(f"not a GPU line: {line.strip()[:120]!r}")
        name = ", ".join(fields[1 : len(fields) - _COLUMNS + 2])  # a name with commas keeps them
        power, clock, temp, used, total, mask = fields[-6:]
        readings.append(GpuReading(index=int(fields[0]), name=name, power_w=_gpu_value(power),
                                   sm_clock_mhz=_gpu_value(clock), temp_c=_gpu_value(temp),
                                   mem_used_mib=_gpu_value(used), mem_total_mib=_gpu_value(total),
                                   throttle_mask=_gpu_mask(mask)))
    return readings


def decode_throttle_reasons(mask: int) -> list[str]:
    """Names of the reasons set in a clocks_throttle_reasons bitmask; unknown bits as ``unknown_0x...``."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    bit = 1
    while unknown >= bit:
        if unknown & bit:
            names.append(f"unknown_{bit:#x}")
        bit <<= 1
    return names


def energy_j(times_s: Sequence[float], powers_w: Sequence[float]) -> float | None:
    """Joules by the trapezoid rule over (time, power) points; None under two points."""
    if len(times_s) < 2:
        return None
    return sum((powers_w[i] + powers_w[i + 1]) / 2 * (times_s[i + 1] - times_s[i]) for i in range(len(times_s) - 1))


def energy_per_token_j(joules: float | None, tokens: int | None) -> float | None:
    """Joules per generated token; None when either is unknown or no token was generated."""
    return joules / tokens if joules is not None and tokens else None


def _stats_of(index: int, timed: list[tuple[float, GpuReading]]) -> GpuStats:
    def present(attr: str) -> list[float]:
        return [v for _, r in timed if (v := getattr(r, attr)) is not None]

    powered = [(t, r.power_w) for t, r in timed if r.power_w is not None]
    powers, clocks = present("power_w"), present("sm_clock_mhz")
    temps, used, total = present("temp_c"), present("mem_used_mib"), present("mem_total_mib")
    masks = [r.throttle_mask for _, r in timed if r.throttle_mask is not None]
    counts: dict[str, int] = {}
    for mask in masks:
        for reason in decode_throttle_reasons(mask):
            counts[reason] = counts.get(reason, 0) + 1
    return GpuStats(
        index=index, name=timed[-1][1].name, samples=len(timed),
        power_w_mean=statistics.fmean(powers) if powers else None, power_w_max=max(powers, default=None),
        energy_j=energy_j([t for t, _ in powered], [p for _, p in powered]),
        sm_clock_mhz_min=min(clocks, default=None),
        sm_clock_mhz_median=statistics.median(clocks) if clocks else None,
        sm_clock_mhz_max=max(clocks, default=None), temp_c_max=max(temps, default=None),
        vram_peak_mib=max(used, default=None), vram_total_mib=max(total, default=None),
        throttle_reasons={reason: count / len(masks) for reason, count in sorted(counts.items())})


def summarize_gpu_samples(samples: Sequence[GpuSample], *, interval_s: float, generated_tokens: int | None = None,
                          note: str | None = None, throttle_field: str | None = None, with_series: bool = True,
                          max_points: int = SERIES_MAX_POINTS) -> GpuTelemetry:
    """Per-GPU figures over the samples (pure); ``j_per_token`` when the tokens generated are known."""
    by_gpu: dict[int, list[tuple[float, GpuReading]]] = {}
    for sample in samples:
        for reading in sample.gpus:
            by_gpu.setdefault(reading.index, []).append((sample.t_s, reading))
    gpus = [_stats_of(index, timed) for index, timed in sorted(by_gpu.items())]
    energies = [g.energy_j for g in gpus]
    total_j = sum(e for e in energies if e is not None) if gpus and None not in energies else None
    sums = [sum(r.mem_used_mib for r in s.gpus if r.mem_used_mib is not None) for s in samples
            if any(r.mem_used_mib is not None for r in s.gpus)]
    series: list[GpuPoint] = []
    if with_series and samples:
        step = max(1, -(-len(samples) // max_points))  # ceil: at most max_points per GPU
        kept = list(samples[::step])
        if kept[-1] is not samples[-1]:
            kept.append(samples[-1])
        series = [GpuPoint(t_s=s.t_s, gpu=r.index, power_w=r.power_w, mem_used_mib=r.mem_used_mib,
                           sm_clock_mhz=r.sm_clock_mhz, temp_c=r.temp_c) for s in kept for r in s.gpus]
    return GpuTelemetry(
        interval_s=interval_s, samples=len(samples),
        duration_s=samples[-1].t_s - samples[0].t_s if samples else None, gpus=gpus, energy_j=total_j,
        vram_peak_mib=max(sums, default=None), generated_tokens=generated_tokens,
        j_per_token=energy_per_token_j(total_j, generated_tokens), throttle_field=throttle_field,
        note=note if note is not None else (None if samples else "no GPU sample in this span"), series=series)


class GpuSampler:
    """Polls nvidia-smi for power, SM clock, temperature, memory and throttle reasons in a thread.

    ``nvidia_smi`` is a path or a command prefix (nvidia-smi inside a rig's container), as for
    ``VramSampler``; without one the summary carries ``absent_note`` and no figures. A few polls
    failing in a row stop the sampler with the failure as its note; one bad poll is only skipped.
    Sample times are seconds from ``origin_s`` on ``clock`` (default: when the sampler starts), so a
    caller on the same clock can cut the series into its own windows.
    """

    def __init__(self, nvidia_smi: str | list[str] | None, interval_s: float = 1.0,
                 absent_note: str = "nvidia-smi not found", *, clock: Callable[[], float] = time.monotonic,
                 origin_s: float | None = None, max_failures_in_a_row: int = 3):
        self.command = [nvidia_smi] if isinstance(nvidia_smi, str) else nvidia_smi
        self.interval_s = interval_s
        self.note: str | None = None if nvidia_smi else absent_note
        self.throttle_field: str | None = None
        self._clock = clock
        self._origin_s = origin_s
        self._max_failures = max_failures_in_a_row
        self._field = THROTTLE_FIELD
        self._samples: list[GpuSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def origin_s(self) -> float:
        """The clock reading sample times count from (set when the sampler starts, if not given)."""
        return self._origin_s or 0.0

    @property
    def samples(self) -> list[GpuSample]:
        with self._lock:
            return list(self._samples)

    def _query(self, command: list[str], field: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, f"--query-gpu={_GPU_FIELDS},{field}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL, check=False)

    def poll(self, command: list[str]) -> list[GpuReading]:
        """One query, switching the throttle field's name when the driver rejects it; raises on failure."""
        done = self._query(command, self._field)
        if "not a valid field" in done.stdout + done.stderr:
            other = EVENT_FIELD if self._field == THROTTLE_FIELD else THROTTLE_FIELD
            retried = self._query(command, other)
            if retried.returncode == 0:
                self._field, done = other, retried
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise ValueError(f"exit {done.returncode}: {said[-1][:120] if said else 'no output'}")
        readings = parse_gpu_readings(done.stdout)
        if not readings:
            raise ValueError("printed no GPU line")
        self.throttle_field = self._field
        return readings

    def _loop(self, command: list[str]) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                readings = self.poll(command)
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                failures += 1
                if failures >= self._max_failures:
                    self.note = f"nvidia-smi failed: {exc.__class__.__name__}: {str(exc)[:120]}"
                    return
            else:
                failures = 0
                sample = GpuSample(t_s=self._clock() - (self._origin_s or 0.0), gpus=readings)
                with self._lock:
                    self._samples.append(sample)
            self._stop.wait(self.interval_s)

    def summary(self, generated_tokens: int | None = None, *, since_s: float | None = None,
                until_s: float | None = None, with_series: bool = True) -> GpuTelemetry:
        """Figures over the samples in [since_s, until_s] (all by default); safe while sampling."""
        chosen = [s for s in self.samples if (since_s is None or s.t_s >= since_s)
                  and (until_s is None or s.t_s <= until_s)]
        return summarize_gpu_samples(chosen, interval_s=self.interval_s, generated_tokens=generated_tokens,
                                     note=self.note, throttle_field=self.throttle_field, with_series=with_series)

    def __enter__(self) -> GpuSampler:
        if self._origin_s is None:
            self._origin_s = self._clock()
        if self.command:
            self._thread = threading.Thread(target=self._loop, args=(self.command,), name="gpu-sampler",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)


def fmt_number(value: float | None, digits: int = 1) -> str:
    """A figure as printed, or n/a when it was not measured (never a made-up zero)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def gpu_lines(gpu: GpuTelemetry | None) -> list[str]:
    """GPU figures as printed and reported: one line per GPU, then energy per token (or why there are none)."""
    if gpu is None or not gpu.gpus:
        return [f"GPU: n/a: {gpu.note if gpu else 'not sampled'}"]
    lines = []
    for g in gpu.gpus:
        throttled = ", ".join(f"{k} {v:.0%}" for k, v in g.throttle_reasons.items() if k != "gpu_idle") or "none"
        lines.append(f"GPU {g.index} {g.name}: power {fmt_number(g.power_w_mean)} W mean / "
                     f"{fmt_number(g.power_w_max)} max, "
                     f"SM {fmt_number(g.sm_clock_mhz_min, 0)}–{fmt_number(g.sm_clock_mhz_max, 0)} MHz, "
                     f"{fmt_number(g.temp_c_max, 0)} °C max, VRAM peak {fmt_number(g.vram_peak_mib, 0)} MiB, "
                     f"throttled: {throttled}")
    lines.append(f"GPU energy {fmt_number(gpu.energy_j, 0)} J, {fmt_number(gpu.j_per_token, 3)} J/token "
                 f"over {gpu.generated_tokens} generated tokens")
    return lines
