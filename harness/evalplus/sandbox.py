"""The only place model-written code is executed: the EvalPlus sandbox container.

One container evaluates a whole batch (started through harness.containers, the sandboxes' one
way to the engine). The container has no network, runs as a non-root
user with every capability dropped and no-new-privileges, a read-only root filesystem with
a small tmpfs, capped memory/CPUs/PIDs, and a wall-clock cap enforced from here. It has no
mounts at all: the request (dataset, ground truth, samples) goes in on stdin and verdicts
come back on stdout, each line signed with a per-run nonce (see images/sandbox-evalplus/
checker.py for what happens inside and why).

The ground truth (EvalPlus's expected outputs and reference timings, ~15 s to compute)
is computed once per dataset md5 by running only the canonical solutions, and cached on
the host.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.containers import Container, ExecResult, Limits, image_present
from harness.errors import SandboxError
from harness.evalplus.datasets import Dataset
from harness.evalplus.results import TaskVerdict
from harness.serving import images

EVALPLUS_VERSION = "0.3.1"
SANDBOX_IMAGE = f"benchwright/sandbox-evalplus:{EVALPLUS_VERSION}"
SANDBOX_USER = "10002:10002"
CONTAINER_PREFIX = "bw-evalplus"
# The image's interpreter: Debian bookworm's python3 (glibc 2.36). Wheels are fetched for it.
SANDBOX_PYTHON = "3.11"
SANDBOX_GLIBC_MINOR = 36


class SandboxLimits(Limits):
    """Resource caps of one EvalPlus container: a whole batch runs in it, so more than an agent's."""

    memory: str = "4g"
    cpus: float = Field(default=2.0, gt=0)
    pids: int = Field(default=256, gt=16)
    tmpfs_mb: int = Field(default=512, gt=16)
    wall_s: float = Field(default=3600, gt=0)


DEFAULT_LIMITS = SandboxLimits()  # frozen, so one shared default is safe


class CheckOptions(BaseModel):
    """How tests are timed; recorded in every result."""

    model_config = ConfigDict(frozen=True)

    parallel: int = Field(default=2, ge=1)
    min_time_limit_s: float = Field(default=4.0, gt=0)
    gt_time_limit_factor: float = Field(default=4.0, gt=0)
    max_memory_bytes: int = 4 * 1024 ** 3
    # pass@1 plus needs base and plus; skipping plus after a base failure saves its time-outs.
    skip_plus_after_base_failure: bool = True


def _log(message: str) -> None:
    print(f"[sandbox] {message}", file=sys.stderr, flush=True)


def build_sandbox_image(repo_root: Path, cache_dir: Path, base_image: str | None) -> str:
    """Build the EvalPlus sandbox image offline from host-fetched wheels; returns its tag."""
    source = repo_root / "images" / "sandbox-evalplus"
    wheelhouse = cache_dir / "inputs" / f"sandbox-evalplus-{EVALPLUS_VERSION}"
    stamp = wheelhouse / "requirements.txt"
    requirements = (source / "requirements.txt").read_text()
    wanted = requirements + f"# for CPython {SANDBOX_PYTHON} {_machine()}\n"
    if not stamp.is_file() or stamp.read_text() != wanted:
        _fetch_wheelhouse(source / "requirements.txt", wheelhouse, SANDBOX_PYTHON)
        stamp.write_text(wanted)
    wheels = sorted(wheelhouse.glob("*.whl"))
    images.build_image(source, SANDBOX_IMAGE, inputs=wheels,
                       build_args={"BASE_IMAGE": images.resolve_base_image(base_image),
                                   "PYTHON_VERSION": SANDBOX_PYTHON},
                       staging_dir=cache_dir / "build" / "sandbox-evalplus")
    return SANDBOX_IMAGE


def _machine() -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())


def _fetch_wheelhouse(requirements: Path, wheelhouse: Path, python: str) -> None:
    """Wheels for the image's Python (`python`, e.g. "3.11"), whatever Python the host runs.

    Binary wheels are asked for by target tags, so a host on another Python version or glibc
    still fetches what the image can install. Packages published only as sdists are built here
    and must come out pure Python; anything else is an error naming the package.
    """
    for stale in wheelhouse.glob("*"):
        if stale.name != "requirements.txt":
            stale.unlink()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    _log(f"downloading pinned wheels for CPython {python} into {wheelhouse}")
    machine, minor = _machine(), python.replace(".", "")
    platforms = [f"manylinux_2_{glibc}_{machine}" for glibc in range(SANDBOX_GLIBC_MINOR, 16, -1)]
    platforms += [f"manylinux2014_{machine}"] + ([f"manylinux2010_{machine}", f"manylinux1_{machine}"]
                                               if machine == "x86_64" else [])
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheelhouse),
           "--python-version", python, "--implementation", "cp",
           "--abi", f"cp{minor}", "--abi", "abi3", "--abi", "none", "-r", str(requirements)]
    for tag in platforms:
        cmd += ["--platform", tag]
    _pip(cmd, "pip download for the sandbox image")
    for sdist in sorted([*wheelhouse.glob("*.tar.gz"), *wheelhouse.glob("*.zip")]):
        before = set(wheelhouse.glob("*.whl"))
        _pip([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), str(sdist)],
             f"building a wheel from {sdist.name}")
        built = set(wheelhouse.glob("*.whl")) - before
        if not built or any(not wheel.name.endswith("-none-any.whl") for wheel in built):
            raise SandboxError(f"{requirements}: {sdist.name} has no wheel for CPython {python} "
                               f"manylinux {machine}, and building it here would target the host's Python")
        sdist.unlink()


def _pip(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.strip().splitlines() if not line.startswith("WARNING")]
        raise SandboxError(f"{what} failed: {(errors or ['(no output)'])[-1]}")


def require_image(image: str) -> None:
    if not image_present(image):
        raise SandboxError(f"sandbox image {image} is not built; run `make sandboxes`")


def _run(mode: str, stdin: bytes, limits: SandboxLimits, image: str, *, user: str = SANDBOX_USER,
         binds: dict[str, dict[str, str]] | None = None, env: dict[str, str] | None = None) -> ExecResult:
    """Run the checker in `mode` in a fresh container, stdin streamed in, under the wall-clock cap."""
    container = Container.create(
        image, name_prefix=f"{CONTAINER_PREFIX}-{mode}", user=user, command=[mode], stdin_open=True,
        limits=limits,
        tmpfs={"/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmpfs_mb}m,mode=1777"}, env=env, binds=binds,
        labels={"benchwright": "sandbox-evalplus"})
    with container:
        result = container.run_attached(stdin, limits.wall_s)
    if result.timed_out:
        result.stderr += f"\nsandbox wall-clock cap of {limits.wall_s:.0f}s reached; container killed".encode()
    return result


def groundtruth_path(dataset: Dataset, cache_dir: Path) -> Path:
    """EvalPlus's own cache file; per-task pickles live in `<md5>.tasks/` beside it."""
    return cache_dir / "evalplus" / f"{dataset.md5}.pkl"


def _task_oracle(groundtruth: Path, task_id: str) -> Path:
    return groundtruth.with_suffix(".tasks") / (task_id.replace("/", "_") + ".pkl")


def ensure_groundtruth(dataset: Dataset, cache_dir: Path, *, image: str = SANDBOX_IMAGE,
                       limits: SandboxLimits = DEFAULT_LIMITS) -> Path:
    """Compute (once per dataset md5) the expected outputs by running the canonical solutions."""
    target = groundtruth_path(dataset, cache_dir)
    if target.is_file() and _task_oracle(target, dataset.tasks[-1].task_id).is_file():
        return target
    require_image(image)
    target.parent.mkdir(parents=True, exist_ok=True)
    _log(f"computing EvalPlus ground truth for {dataset.path.name} (once per dataset; ~15-60 s)")
    # Only the dataset's canonical solutions run here; the cache dir is the one writable mount,
    # and the container runs as the host user so the cache stays the user's.
    done = _run("prepare", b"", limits, image, user=f"{os.getuid()}:{os.getgid()}",
                binds={str(dataset.path.resolve()): {"bind": "/data/dataset.jsonl", "mode": "ro"},
                       str(target.parent.resolve()): {"bind": "/cache/evalplus", "mode": "rw"}},
                env={"XDG_CACHE_HOME": "/cache", "DATASET": dataset.kind, "DATASET_PATH": "/data/dataset.jsonl"})
    if done.exit_code != 0 or not target.is_file():
        code = "killed at the wall-clock cap" if done.exit_code is None else done.exit_code
        raise SandboxError(f"computing the ground truth for {dataset.path} failed (exit {code}): "
                           f"{_tail(done.stderr)}")
    return target


def _tail(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return " / ".join(lines[-3:]) if lines else "no output"


def _request(mode: str, dataset: Dataset, groundtruth: Path, samples: list[dict[str, Any]],
             options: CheckOptions, nonce: str) -> bytes:
    if mode == "reference":  # EvalPlus's evaluate() reads its whole cache file
        oracles = groundtruth.read_bytes()
    else:  # only the tasks sampled, still pickled: the host never unpickles sandbox output
        oracles = pickle.dumps({task_id: _task_oracle(groundtruth, task_id).read_bytes()
                                for task_id in {s["task_id"] for s in samples}})
    blobs = [dataset.path.read_bytes(), oracles,
             "".join(json.dumps({"task_id": s["task_id"], "solution": s["solution"]}) + "\n"
                     for s in samples).encode()]
    header = {"nonce": nonce, "dataset": dataset.kind, "lengths": [len(b) for b in blobs],
              "options": options.model_dump()}
    return json.dumps(header).encode() + b"\n" + b"".join(blobs)


def _signed_lines(stdout: bytes, nonce: str) -> list[tuple[str, Any]]:
    lines = []
    for raw in stdout.decode(errors="replace").splitlines():
        kind, _, rest = raw.partition(" ")
        got_nonce, _, payload = rest.partition(" ")
        if got_nonce == nonce:  # anything unsigned is not from the checker
            lines.append((kind, json.loads(payload)))
    return lines


def run_checker(mode: str, dataset: Dataset, samples: list[dict[str, Any]], groundtruth: Path, *,
                options: CheckOptions, limits: SandboxLimits, image: str = SANDBOX_IMAGE
                ) -> tuple[list[tuple[str, Any]], bool, str]:
    """Run the checker in `mode` over samples; returns (signed lines, finished, stderr tail)."""
    require_image(image)
    nonce = secrets.token_hex(16)
    done = _run(mode, _request(mode, dataset, groundtruth, samples, options, nonce), limits, image)
    lines = _signed_lines(done.stdout, nonce)
    finished = bool(lines) and lines[-1][0] == "DONE"
    return lines, finished, _tail(done.stderr)


def evaluate_samples(dataset: Dataset, samples: list[dict[str, Any]], groundtruth: Path, *,
                     options: CheckOptions, limits: SandboxLimits, image: str = SANDBOX_IMAGE) -> list[TaskVerdict]:
    """Base and plus verdicts for each sample (same order). Samples the sandbox never
    reported on (it was killed, ran out of time) get an error verdict, never a pass."""
    lines, finished, stderr = run_checker("evaluate", dataset, samples, groundtruth, options=options,
                                          limits=limits, image=image)
    by_index = {payload["index"]: payload for kind, payload in lines if kind == "RESULT"}
    verdicts = []
    for index, sample in enumerate(samples):
        payload = by_index.get(index)
        if payload is None or payload.get("task_id") != sample["task_id"]:
            reason = "sandbox ended before this sample was checked" if not finished else "no verdict returned"
            verdicts.append(TaskVerdict.from_error(sample["task_id"], f"{reason} ({stderr})"))
        else:
            verdicts.append(TaskVerdict.from_checker(payload))
    if not finished:
        _log(f"sandbox did not finish: {stderr}")
    return verdicts


def reference_evaluate(dataset: Dataset, samples: list[dict[str, Any]], groundtruth: Path, *,
                       options: CheckOptions, limits: SandboxLimits, image: str = SANDBOX_IMAGE) -> dict[str, Any]:
    """EvalPlus's own `evaluate()` on the samples, run inside the sandbox (fidelity checks)."""
    lines, finished, stderr = run_checker("reference", dataset, samples, groundtruth, options=options,
                                          limits=limits, image=image)
    found = [payload for kind, payload in lines if kind == "REFERENCE"]
    if not finished or not found:
        raise SandboxError(f"EvalPlus reference evaluation did not finish: {stderr}")
    return found[0]
