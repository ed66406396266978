"""The run manifest: what a run ran (provenance), which profiles and steps ran, when, and how they ended.

One JSON file per run (``results/<run-id>/manifest.json``), rewritten atomically after every
change so a killed run leaves a readable manifest that `all-bench --run-id` resumes from.
``RunProvenance`` and one ``ProfileProvenance`` per profile are recorded once, when the run
starts; the report reads them instead of today's models.conf or checkout. Every field added
since schema 1 is optional, so manifests from older runs still load.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from harness.errors import HarnessError
from harness.files import write_text_atomic
from harness.serving.fingerprint import RigFingerprint

__all__ = ["RigFingerprint"]  # re-exported: the manifest records one per rig

MANIFEST_SCHEMA_VERSION = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


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


class RunProvenance(BaseModel):
    """The harness that ran: recorded once, when the run starts."""

    recorded_at: datetime = Field(default_factory=utc_now)
    harness_version: str
    git_commit: str | None = None  # None: not a git checkout, or git failed (see git_note)
    git_dirty: bool | None = None  # tracked files differed from the commit
    git_note: str = ""
    python_version: str
    hostname: str


class ProfileProvenance(BaseModel):
    """One profile as the run used it: recorded once, when the run starts."""

    recorded_at: datetime = Field(default_factory=utc_now)
    resolved: dict[str, Any]  # the profile as resolved, by models.conf key (all keys, whatever they are)
    is_api: bool = False  # a hosted API: no compose .env, image or model file
    compose_env: str | None = None  # the effective compose .env text
    image: str | None = None
    image_id: str | None = None
    image_digests: list[str] = Field(default_factory=list)
    image_note: str = ""  # why image_id is missing ("not built yet", the engine's error), or when it was taken
    model_path: str | None = None
    model_bytes: int | None = None
    model_sha256: str | None = None
    model_sha256_source: str = ""  # "<model>.sha256 file" | "computed" | "" (not recorded)
    model_sha256_seconds: float | None = None  # time spent hashing when computed
    model_note: str = ""  # why model_sha256 is missing


class ProfileRecord(BaseModel):
    """Every step of one profile, how the profile as a whole ended, and what it ran."""

    profile: str
    rig: str = "local"  # where its server ran: "local", the DOCKER_CONTEXT name, or "api"
    network: str = ""  # "" when the controller and server share a machine; else what speed figures include
    status: str = "pending"  # pending | running | completed | failed
    reason: str = ""
    provenance: ProfileProvenance | None = None  # None: a run from before provenance was recorded
    steps: list[StepRecord] = Field(default_factory=list)

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)


class Manifest(BaseModel):
    """The whole run."""

    schema_version: int = MANIFEST_SCHEMA_VERSION
    run_id: str
    config: str
    options: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    pipelined: bool = True
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    finished_at: datetime | None = None
    wall_seconds: float | None = None
    overlap_seconds: float | None = None
    provenance: RunProvenance | None = None  # None: a run from before provenance was recorded
    resumed_at: list[datetime] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # e.g. a profile that changed between start and resume
    profiles: list[ProfileRecord] = Field(default_factory=list)
    rigs: dict[str, RigFingerprint] = Field(default_factory=dict)  # by rig name; empty in older runs
    rig_seconds: dict[str, float] = Field(default_factory=dict)  # per rig: seconds its lane's steps took

    def profile(self, profile_id: str) -> ProfileRecord:
        return next(p for p in self.profiles if p.profile == profile_id)


def read_manifest(path: Path) -> Manifest:
    """Load a manifest; an unreadable or malformed one is a one-line HarnessError naming the file."""
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: no manifest (is {path.parent} a run directory from all-bench?)") from None
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise HarnessError(f"{path}: not a run manifest ({where + ': ' if where else ''}{error['msg']})") from None
    except ValueError as exc:  # bad UTF-8
        raise HarnessError(f"{path}: not a run manifest ({exc})") from None


class ManifestStore:
    """Thread-safe, atomic persistence of a Manifest (the evaluation worker writes too)."""

    def __init__(self, path: Path, manifest: Manifest):
        self.path = path
        self.manifest = manifest
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> ManifestStore:
        return cls(path, read_manifest(path))

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


def rig_seconds(manifest: Manifest) -> dict[str, float]:
    """Per rig, the seconds its foreground steps took (summed): with rigs in parallel the run's wall
    time is about the longest of these, not their sum."""
    totals: dict[str, float] = {}
    for record in manifest.profiles:
        busy = sum(s.seconds or 0.0 for s in record.steps if not s.background)
        totals[record.rig] = round(totals.get(record.rig, 0.0) + busy, 1)
    return totals
