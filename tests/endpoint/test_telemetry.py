"""harness.endpoint.telemetry: parsing nvidia-smi output and the GPU sampler."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.endpoint.telemetry import (
    EVENT_FIELD,
    THROTTLE_FIELD,
    GpuSample,
    GpuSampler,
    decode_throttle_reasons,
    energy_j,
    parse_gpu_readings,
    summarize_gpu_samples,
)


def _script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


# ---------------------------------------------------------------- GpuSampler and its parsing
#
# Everything below runs on nvidia-smi output recorded in tests/data/nvidia-smi/ (written by hand in the
# format nvidia-smi prints for this query); no test here touches a GPU.

RECORDED = Path(__file__).resolve().parent.parent / "data" / "nvidia-smi"


def test_parses_one_idle_gpu():
    (gpu,) = parse_gpu_readings((RECORDED / "one-gpu-idle.csv").read_text())
    assert (gpu.index, gpu.name, gpu.power_w, gpu.sm_clock_mhz, gpu.temp_c) == (0, "NVIDIA GeForce RTX 3090", 21.53,
                                                                                 210, 34)
    assert (gpu.mem_used_mib, gpu.mem_total_mib, gpu.throttle_mask) == (1, 24576, 0x1)
    assert decode_throttle_reasons(gpu.throttle_mask) == ["gpu_idle"]


def test_parses_two_gpus_under_a_power_cap():
    gpus = parse_gpu_readings((RECORDED / "two-gpus-power-cap.csv").read_text())
    assert [g.index for g in gpus] == [0, 1] and [g.power_w for g in gpus] == [349.62, 347.10]
    assert all(decode_throttle_reasons(g.throttle_mask) == ["sw_power_cap"] for g in gpus)


def test_not_available_fields_are_none_not_zero():
    mig, k80 = parse_gpu_readings((RECORDED / "na-fields.csv").read_text())
    assert mig.name == "NVIDIA A100-SXM4-40GB MIG 3g.20gb"
    assert (mig.power_w, mig.sm_clock_mhz, mig.temp_c, mig.mem_used_mib, mig.throttle_mask) == (None, None, 41, None,
                                                                                                 None)
    assert (k80.power_w, k80.sm_clock_mhz, k80.temp_c, k80.throttle_mask) == (None, 562, None, 0)


def test_a_driver_error_is_not_read_as_a_gpu():
    with pytest.raises(ValueError, match="not a GPU line"):
        parse_gpu_readings((RECORDED / "driver-failed.csv").read_text())
    with pytest.raises(ValueError, match="not a GPU line"):
        parse_gpu_readings((RECORDED / "throttle-field-rejected.csv").read_text())


def test_a_name_with_commas_keeps_them():
    (gpu,) = parse_gpu_readings("3, Some GPU, rev 2, 100, 1500, 60, 10, 20, 0x24\n")
    assert gpu.index == 3 and gpu.name == "Some GPU, rev 2" and gpu.power_w == 100
    assert decode_throttle_reasons(gpu.throttle_mask) == ["sw_power_cap", "sw_thermal_slowdown"]


def test_throttle_bits_each_decode_and_unknown_bits_are_named():
    assert decode_throttle_reasons(0) == []
    assert decode_throttle_reasons(0x1FF) == ["gpu_idle", "applications_clocks_setting", "sw_power_cap",
                                              "hw_slowdown", "sync_boost", "sw_thermal_slowdown",
                                              "hw_thermal_slowdown", "hw_power_brake_slowdown",
                                              "display_clock_setting"]
    assert decode_throttle_reasons(0x88 | 0x400) == ["hw_slowdown", "hw_power_brake_slowdown", "unknown_0x400"]


def test_energy_is_the_trapezoid_over_sample_times():
    assert energy_j([0.0, 1.0, 3.0], [100.0, 200.0, 200.0]) == 150.0 + 400.0
    assert energy_j([5.0], [300.0]) is None


def test_summary_per_gpu_energy_per_token_and_throttle_fractions():
    idle = parse_gpu_readings((RECORDED / "one-gpu-idle.csv").read_text())[0]
    capped = parse_gpu_readings((RECORDED / "two-gpus-power-cap.csv").read_text())[0]
    samples = [GpuSample(t_s=0.0, gpus=[idle]), GpuSample(t_s=2.0, gpus=[capped]), GpuSample(t_s=4.0, gpus=[capped])]
    telemetry = summarize_gpu_samples(samples, interval_s=2.0, generated_tokens=100)
    (gpu,) = telemetry.gpus
    expected_j = (21.53 + 349.62) / 2 * 2 + 349.62 * 2
    assert gpu.samples == 3 and gpu.energy_j == pytest.approx(expected_j) and gpu.power_w_max == 349.62
    assert gpu.power_w_mean == pytest.approx((21.53 + 2 * 349.62) / 3)
    assert (gpu.sm_clock_mhz_min, gpu.sm_clock_mhz_median, gpu.sm_clock_mhz_max) == (210, 1695, 1695)
    assert gpu.temp_c_max == 71 and gpu.vram_peak_mib == 21874 and gpu.vram_total_mib == 24576
    assert gpu.throttle_reasons == pytest.approx({"gpu_idle": 1 / 3, "sw_power_cap": 2 / 3})
    assert telemetry.energy_j == pytest.approx(expected_j)
    assert telemetry.j_per_token == pytest.approx(expected_j / 100)
    assert telemetry.duration_s == 4.0 and len(telemetry.series) == 3


def test_summary_without_power_has_no_energy_and_thins_the_series():
    readings = parse_gpu_readings((RECORDED / "na-fields.csv").read_text())
    samples = [GpuSample(t_s=float(t), gpus=readings) for t in range(100)]
    telemetry = summarize_gpu_samples(samples, interval_s=1.0, generated_tokens=50, max_points=10)
    assert telemetry.energy_j is None and telemetry.j_per_token is None  # the MIG slice reports no power
    assert telemetry.vram_peak_mib == 3  # only the K80 reports memory.used
    times = sorted({p.t_s for p in telemetry.series})
    assert len(times) <= 11 and times[0] == 0.0 and times[-1] == 99.0


def _fake_smi(tmp_path, recorded: str, *, reject_field: str | None = None, exit_code: int = 0) -> str:
    """An executable standing in for nvidia-smi: prints a recorded file (and rejects one field name)."""
    reject = (f'case "$*" in *{reject_field}*) cat {RECORDED / "throttle-field-rejected.csv"}; exit 2;; esac\n'
              if reject_field else "")
    return _script(tmp_path, "nvidia-smi", f"{reject}cat {RECORDED / recorded}\nexit {exit_code}")


def test_gpu_sampler_end_to_end_on_a_recorded_two_gpu_box(tmp_path):
    with GpuSampler(_fake_smi(tmp_path, "two-gpus-power-cap.csv"), interval_s=0.02) as sampler:
        time.sleep(0.3)
    telemetry = sampler.summary(generated_tokens=1000)
    assert telemetry.samples >= 3 and [g.index for g in telemetry.gpus] == [0, 1]
    assert telemetry.throttle_field == THROTTLE_FIELD and telemetry.note is None
    assert telemetry.gpus[0].throttle_reasons == {"sw_power_cap": 1.0}
    assert telemetry.vram_peak_mib == 21874 + 20310
    # constant power: energy is power x the span the samples cover
    assert telemetry.energy_j == pytest.approx((349.62 + 347.10) * telemetry.duration_s)
    assert telemetry.j_per_token == pytest.approx(telemetry.energy_j / 1000)
    window = sampler.summary(since_s=telemetry.series[2].t_s, with_series=False)
    assert window.samples == telemetry.samples - 1 and window.series == []


def test_gpu_sampler_switches_to_the_newer_field_name(tmp_path):
    fake = _fake_smi(tmp_path, "one-gpu-event-field.csv", reject_field=THROTTLE_FIELD)
    with GpuSampler(fake, interval_s=0.02) as sampler:
        time.sleep(0.15)
    telemetry = sampler.summary()
    assert telemetry.throttle_field == EVENT_FIELD and telemetry.samples >= 2
    assert telemetry.gpus[0].name == "NVIDIA H100 80GB HBM3" and telemetry.gpus[0].power_w_max == 612.40


def test_gpu_sampler_stops_on_a_failing_driver_and_says_why(tmp_path):
    with GpuSampler(_fake_smi(tmp_path, "driver-failed.csv", exit_code=9), interval_s=0.01) as sampler:
        time.sleep(0.2)
    telemetry = sampler.summary(generated_tokens=10)
    assert telemetry.samples == 0 and telemetry.gpus == [] and telemetry.j_per_token is None
    assert telemetry.note.startswith("nvidia-smi failed: ValueError: exit 9: NVIDIA-SMI has failed")
    with GpuSampler(None) as absent:
        pass
    assert absent.summary().note == "nvidia-smi not found" and absent.summary().samples == 0
