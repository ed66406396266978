"""EvalPlus datasets (HumanEval+, MBPP+ and their variants), read from local jsonl files.

Core code takes the file path explicitly; only the CLI consults HUMANEVAL_OVERRIDE_PATH /
MBPP_OVERRIDE_PATH or --data-dir. The dataset hash is the md5 of the uncompressed file,
the same key EvalPlus uses for its ground-truth cache.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict

from harness.errors import HarnessError
from harness.files import atomic_output

Kind = Literal["humaneval", "mbpp"]


class DatasetError(HarnessError):
    """A dataset file is missing or malformed."""


class DatasetSpec(BaseModel):
    """Where a dataset variant lives under a data dir and where it is published."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: Kind
    relative_path: str
    url: str
    md5: str | None = None  # of the uncompressed file we test with (../shared/data), where we have it


_GITHUB = "https://github.com"
_HE = "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10"
_MBPP = "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0"
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in [
    DatasetSpec(name="humaneval", kind="humaneval", relative_path="humanevalplus/HumanEvalPlus-v0.1.10.jsonl",
                url=f"{_HE}/HumanEvalPlus.jsonl.gz", md5="fe585eb4df8c88d844eeb463ea4d0302"),
    DatasetSpec(name="humaneval-mini", kind="humaneval",
                relative_path="humanevalplus/HumanEvalPlus-Mini-v0.1.10.jsonl",
                url=f"{_HE}/HumanEvalPlus-Mini.jsonl.gz", md5="401e75ad986361dccc7afecb4121e295"),
    DatasetSpec(name="humaneval-noextreme", kind="humaneval",
                relative_path="humanevalplus/HumanEvalPlus-NoExtreme-v0.1.10.jsonl",
                url=f"{_HE}/HumanEvalPlus-NoExtreme.jsonl.gz"),
    DatasetSpec(name="mbpp", kind="mbpp", relative_path="mbppplus/MbppPlus-v0.2.0.jsonl",
                url=f"{_MBPP}/MbppPlus.jsonl.gz", md5="ee43ecabebf20deef4bb776a405ac5b1"),
    DatasetSpec(name="mbpp-noextreme", kind="mbpp", relative_path="mbppplus/MbppPlus-NoExtreme-v0.2.0.jsonl",
                url=f"{_MBPP}/MbppPlus-NoExtreme.jsonl.gz"),
]}
OVERRIDE_ENV = {"humaneval": "HUMANEVAL_OVERRIDE_PATH", "mbpp": "MBPP_OVERRIDE_PATH"}


class Task(BaseModel):
    """What codegen needs from a task: the prompt and the function name."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    prompt: str
    entry_point: str


class Dataset(BaseModel):
    """A loaded dataset file: its tasks in file order, and the md5 EvalPlus keys caches by."""

    name: str
    kind: Kind
    path: Path
    md5: str
    tasks: list[Task]

    def subset(self, limit: int | None, task_ids: list[str] | None = None) -> list[Task]:
        """The first `limit` tasks, or the named ones (in dataset order)."""
        tasks = self.tasks
        if task_ids:
            wanted = set(task_ids)
            unknown = wanted - {t.task_id for t in tasks}
            if unknown:
                raise DatasetError(f"{self.path}: no such task(s): {', '.join(sorted(unknown))}")
            tasks = [t for t in tasks if t.task_id in wanted]
        return tasks[:limit] if limit else tasks


def spec_for(name: str) -> DatasetSpec:
    """The spec of a dataset name, or a one-line error listing the known names."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return DATASETS[name]


def load_dataset(name: str, path: Path) -> Dataset:
    """Read a dataset jsonl; a missing file is one line saying how to get it."""
    spec = spec_for(name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"dataset file not found: {path} (run `make data`, pass --data-dir, "
                           f"or set {OVERRIDE_ENV[spec.kind]})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read dataset ({exc})") from None
    tasks = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            tasks.append(Task.model_validate_json(line))
        except ValueError as exc:
            raise DatasetError(f"{path}:{number}: not an EvalPlus task line ({str(exc).splitlines()[0]})") from None
    if not tasks:
        raise DatasetError(f"{path}: no tasks")
    return Dataset(name=name, kind=spec.kind, path=path, md5=hashlib.md5(raw).hexdigest(), tasks=tasks)


def fetch_dataset(name: str, data_dir: Path, *, mirror: str | None = None, timeout_s: float = 60) -> Path:
    """Download a published release file into data_dir (uncompressed, as EvalPlus hashes it).

    `mirror` replaces "https://github.com" for hosts that reach GitHub only through a mirror
    of its release URLs. The file lands whole or not at all (written aside, then renamed),
    and must load as a dataset before it takes its place.
    """
    spec = spec_for(name)
    target = data_dir / spec.relative_path
    if target.is_file():
        return target
    url = spec.url if not mirror else mirror.rstrip("/") + spec.url.removeprefix(_GITHUB)
    try:
        response = httpx.get(url, follow_redirects=True, timeout=timeout_s)
        response.raise_for_status()
        content = gzip.decompress(response.content)
    except httpx.HTTPStatusError as exc:
        raise DatasetError(f"cannot download {url}: HTTP {exc.response.status_code} "
                           f"(copy the file to {target} by hand)") from None
    except (httpx.HTTPError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"cannot download {url}: {reason} (copy the file to {target} by hand)") from None
    def must_load(partial: Path) -> None:
        try:
            load_dataset(name, partial)
        except DatasetError as exc:
            raise DatasetError(f"{url}: the download is not an EvalPlus dataset ({exc})") from None

    with atomic_output(target, check=must_load) as handle:
        handle.write(content)
    return target


def md5_note(name: str, path: Path) -> str:
    """One line on whether a dataset file is the one this harness was tested with."""
    spec, digest = spec_for(name), hashlib.md5(path.read_bytes()).hexdigest()
    if spec.md5 is None:
        return f"{path}: md5 {digest} (no reference md5 recorded for {name})"
    if digest == spec.md5:
        return f"{path}: md5 {digest}, the file this harness is tested with"
    return f"{path}: md5 {digest} differs from the tested file's {spec.md5}; scores may not compare with the references"
