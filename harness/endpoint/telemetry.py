"""Peak GPU memory during a bench, sampled from ``nvidia-smi`` in a background thread.

Where there is no nvidia-smi the peak is None and the note says so, so a result never
shows a made-up zero.
"""

from __future__ import annotations

import subprocess
import threading


def parse_nvidia_smi_memory(text: str) -> list[float]:
    """MiB used per GPU from ``nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits``."""
    values = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            values.append(float(line.split(",")[0]))
    return values


class VramSampler:
    """Polls nvidia-smi in a thread and keeps the peak of memory used, summed over GPUs.

    This is whole-GPU memory in use (every process), which for a dedicated bench box is the
    server's footprint. Without nvidia-smi the peak stays None and ``note`` says why.
    """

    def __init__(self, nvidia_smi: str | list[str] | None, interval_s: float = 0.5,
                 absent_note: str = "nvidia-smi not found"):
        # a list is a command prefix: nvidia-smi run inside the server's container on another rig
        self.command = [nvidia_smi] if isinstance(nvidia_smi, str) else nvidia_smi
        self.interval_s = interval_s
        self.peak_mib: float | None = None
        self.note: str | None = None if nvidia_smi else absent_note
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, command: list[str]) -> None:
        try:
            out = subprocess.run([*command, "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
            used = sum(parse_nvidia_smi_memory(out))
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            self.note = f"nvidia-smi failed: {exc.__class__.__name__}: {str(exc)[:120]}"
            self._stop.set()
            return
        self.peak_mib = used if self.peak_mib is None else max(self.peak_mib, used)

    def _loop(self, command: list[str]) -> None:
        while not self._stop.is_set():
            self._sample(command)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> VramSampler:
        if self.command:
            self._thread = threading.Thread(target=self._loop, args=(self.command,), name="vram-sampler",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)
        if self.command and self.peak_mib is not None and self.note is None:
            self.note = "peak memory.used over all visible GPUs, all processes, sampled every " \
                        f"{self.interval_s:g}s"
