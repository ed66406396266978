"""The record of one rig as a run found it (kept apart from rigs.py so the manifest needs no Docker)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field


def _now() -> datetime:
    return datetime.now(UTC)


class RigFingerprint(BaseModel):
    """One rig (a Docker engine) as the run found it: taken once per run, from the rig itself."""

    recorded_at: datetime = Field(default_factory=_now)
    rig: str  # "local" or the DOCKER_CONTEXT name
    endpoint: str = ""  # the engine's address (unix socket, ssh://, tcp://), never credentials
    reachable: bool = True
    note: str = ""  # why it is unreachable, or what could not be read
    engine_version: str | None = None
    os: str | None = None
    kernel: str | None = None
    cpus: int | None = None
    memory_bytes: int | None = None
    gpus: list[str] = Field(default_factory=list)  # "NVIDIA GeForce RTX 3090, 24576 MiB"
    gpu_driver: str | None = None
    gpu_note: str = ""  # e.g. "no nvidia runtime on this engine"
