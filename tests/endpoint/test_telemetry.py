"""harness.endpoint.telemetry: parsing nvidia-smi output and the background peak sampler."""

from __future__ import annotations

import time

from harness.endpoint.telemetry import VramSampler, parse_nvidia_smi_memory


def test_parse_nvidia_smi_memory():
    assert parse_nvidia_smi_memory("1234\n 567\n\n") == [1234.0, 567.0]


def _script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_sampler_keeps_the_peak_summed_over_gpus(tmp_path):
    # A stand-in executable plays nvidia-smi (no GPU here); the sampler under test is real.
    fake = _script(tmp_path, "nvidia-smi", "echo 1000\necho 24")
    with VramSampler(fake, interval_s=0.01) as sampler:
        time.sleep(0.05)
    assert sampler.peak_mib == 1024.0 and "peak memory.used" in sampler.note


def test_sampler_reports_a_failing_tool_and_absence(tmp_path):
    with VramSampler(_script(tmp_path, "broken-smi", "exit 9"), interval_s=0.01) as sampler:
        time.sleep(0.05)
    assert sampler.peak_mib is None and "nvidia-smi failed" in sampler.note
    with VramSampler(None) as absent:
        pass
    assert absent.peak_mib is None and absent.note == "nvidia-smi not found"
