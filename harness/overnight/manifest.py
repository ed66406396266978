"""The run manifest: which profiles and steps ran, when, and how they ended.

One JSON file per run (``results/<run-id>/manifest.json``), rewritten atomically after every
change so a killed run leaves a readable manifest that `all-bench --run-id` resumes from.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

from harness.files import write_text_atomic

MANIFEST_SCHEMA_VERSION = 1


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class StepStatus(str, Enum):
    pending = "pending"
    running = "running"  # seen after a kill: treated as not done on resume
    done = "done"
    failed = "failed"
    skipped = "skipped"


class StepRecord(BaseModel):
    """One step of one profile."""

    name: str
    status: StepStatus = StepStatus.pending
    background: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    seconds: float | None = None
    exit_code: int | None = None
    log: str | None = None  # relative to the run dir
    detail: str = ""


class ProfileRecord(BaseModel):
    """Every step of one profile, and how the profile as a whole ended."""

    profile: str
    status: str = "pending"  # pending | running | completed | failed
    reason: str = ""
    steps: list[StepRecord] = Field(default_factory=list)

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)


class Manifest(BaseModel):
    """The whole run."""

    schema_version: int = MANIFEST_SCHEMA_VERSION
    run_id: str
    config: str
    options: dict[str, str | int | bool | None] = Field(default_factory=dict)
    pipelined: bool = True
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    finished_at: datetime | None = None
    wall_seconds: float | None = None
    overlap_seconds: float | None = None
    profiles: list[ProfileRecord] = Field(default_factory=list)

    def profile(self, profile_id: str) -> ProfileRecord:
        return next(p for p in self.profiles if p.profile == profile_id)


class ManifestStore:
    """Thread-safe, atomic persistence of a Manifest (the evaluation worker writes too)."""

    def __init__(self, path: Path, manifest: Manifest):
        self.path = path
        self.manifest = manifest
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> "ManifestStore":
        return cls(path, Manifest.model_validate_json(path.read_text(encoding="utf-8")))

    def save(self) -> None:
        with self._lock:
            self.manifest.updated_at = utc_now()
            write_text_atomic(self.path, self.manifest.model_dump_json(indent=2))


def overlap_seconds(manifest: Manifest) -> float:
    """Seconds during which a background step of one profile ran alongside another profile's steps."""
    total = 0.0
    for record in manifest.profiles:
        for bg in record.steps:
            if not (bg.background and bg.started_at and bg.ended_at):
                continue
            spans = sorted(
                (s.started_at, s.ended_at)
                for other in manifest.profiles if other.profile != record.profile
                for s in other.steps if not s.background and s.started_at and s.ended_at
            )
            merged: list[list[datetime]] = []
            for start, end in spans:
                if merged and start <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            for start, end in merged:
                lo, hi = max(start, bg.started_at), min(end, bg.ended_at)
                if hi > lo:
                    total += (hi - lo).total_seconds()
    return round(total, 1)
