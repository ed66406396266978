"""Overnight runs: every bench-* profile, step by step, unattended and resumable.

Each step is a ``python -m harness <verb>`` subprocess whose output goes to
``results/<run-id>/<profile>/<step>.log``: a step cannot take the run down with it, can be
killed cleanly, and resumes from its own journal. The manifest records every step.

Per profile: env → up → verify (hard gate) → throughput → packs → codegen → down →
evaluate. ``evaluate`` (sandboxed, CPU-only) runs on a background worker so that the next
profile's server loads and generates meanwhile; the manifest's timestamps show the overlap.
Between server steps the server's liveness is checked, so a dead engine is reported as
such rather than as a quality failure.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from python_on_whales import docker

from harness.errors import HarnessError
from harness.overnight.manifest import (
    Manifest,
    ManifestStore,
    ProfileRecord,
    StepRecord,
    StepStatus,
    overlap_seconds,
    utc_now,
)
from harness.packs.selection import selection_args
from harness.serving import compose as serving
from harness.serving.profiles import Profile, get_profile

SERVER_STEPS = ("verify", "throughput", "packs", "codegen")
STEP_NAMES = ("env", "up", "verify", "throughput", "packs", "codegen", "down", "evaluate")
_echo_lock = threading.Lock()


@dataclass(frozen=True)
class BenchOptions:
    """What each profile's benchmark covers (CI uses small subsets)."""

    packs: str = "medium"  # quick | medium | none | comma-separated pack ids and PACK/SCENARIO ids
    datasets: tuple[str, ...] = ("humaneval",)
    evalplus_limit: int | None = None
    throughput_runs: int = 5
    pipeline: bool = True

    def as_dict(self) -> dict[str, str | int | bool | None]:
        return {"packs": self.packs, "datasets": ",".join(self.datasets), "evalplus_limit": self.evalplus_limit,
                "throughput_runs": self.throughput_runs, "pipeline": self.pipeline}


@dataclass
class _ProfileContext:
    profile: Profile
    config_path: Path
    out_dir: Path
    deployment: serving.Deployment
    options: BenchOptions
    load_time_s: float | None = None  # seconds from `up` to healthy, measured by the up step
    evaluations: list[Future] = field(default_factory=list)


def _echo(message: str) -> None:
    with _echo_lock:
        print(message, file=sys.stderr, flush=True)


def step_argv(step: str, ctx: _ProfileContext) -> list[list[str]] | None:
    """The harness command lines for one step (None: not part of this run's options)."""
    harness = [sys.executable, "-m", "harness"]
    conf = ["--config", str(ctx.config_path)]
    pid, out, opts = ctx.profile.id, ctx.out_dir, ctx.options
    if step == "env":
        return [harness + ["env", pid, *conf, "--out", str(out / "compose.env")]]
    if step in ("up", "verify", "down"):
        return [harness + [step, pid, *conf]]
    if step == "throughput":
        if opts.throughput_runs <= 0:
            return None
        load = ["--load-time-s", f"{ctx.load_time_s:.2f}"] if ctx.load_time_s is not None else []
        return [harness + ["throughput", pid, *conf, "--runs", str(opts.throughput_runs),
                           "--prompt-runs", str(min(3, opts.throughput_runs)), *load,
                           "--save-json", str(out / "throughput.json")]]
    if step == "packs":
        if opts.packs == "none":
            return None
        return [harness + ["packs", "run", "--profile", pid, *conf, *selection_args(opts.packs), "--resume",
                           "--no-progress", "--save-json", str(out / "packs.json")]]
    limit = ["--limit", str(opts.evalplus_limit)] if opts.evalplus_limit else []
    if step == "codegen":
        if not opts.datasets:
            return None
        return [harness + ["codegen", "--dataset", ds, "--profile", pid, *conf, "--out", str(out / "evalplus" / ds),
                           *limit] for ds in opts.datasets]
    if step == "evaluate":
        if not opts.datasets:
            return None
        return [harness + ["evaluate", "--dataset", ds, "--samples", str(out / "evalplus" / ds / f"{ds}.jsonl")]
                for ds in opts.datasets]
    raise ValueError(f"unknown step {step}")


def _run_logged(argv: list[str], log_path: Path, *, echo_prefix: str | None) -> int:
    """Run one command, appending its output to log_path (and echoing it when in the foreground)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(argv[1:])}\n")
        log.flush()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   text=True, bufsize=1)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            log.flush()
            if echo_prefix:
                _echo(f"{echo_prefix} {line.rstrip()}")
        return process.wait()


def _failure_line(log_path: Path) -> str:
    """The line of a step log that best says why it failed: the CLI's `error:` line, else the last line."""
    lines = [line.strip() for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    chosen = errors[-1] if errors else (lines[-1] if lines else "no output")
    if chosen.endswith("log lines:") and lines and lines[-1].startswith("|"):
        chosen = f"{chosen.split('; last ')[0]}; server said: {lines[-1].lstrip('| ')}"  # its own last words
    return chosen[:300]


def _server_problem(deployment: serving.Deployment) -> str | None:
    """None while the server is up and healthy; otherwise what is wrong with it."""
    try:
        container = serving.server_container(deployment)
    except HarnessError as exc:
        return f"cannot inspect the server container: {exc}"
    except Exception as exc:  # the docker CLI itself failing is an engine problem, report it as data
        return f"docker engine not answering: {exc}"
    if container is None:
        return "server container is gone"
    state = container.state
    if not state.running:
        cause = "was OOM-killed" if state.oom_killed else f"exited with code {state.exit_code}"
        return f"server container {cause}"
    try:
        reply = httpx.get(f"{deployment.base_url}/health", timeout=10)
    except httpx.HTTPError as exc:
        return f"server not answering /health ({type(exc).__name__})"
    return None if reply.status_code == 200 else f"/health answered {reply.status_code}"


def _save_server_log(deployment: serving.Deployment, path: Path) -> None:
    try:
        container = serving.server_container(deployment)
        if container is not None:
            path.write_text(docker.container.logs(container.id, tail=400), encoding="utf-8")
    except Exception:  # best effort: the log is evidence, not a step
        pass


def _run_step(store: ManifestStore, record: ProfileRecord, step: StepRecord, ctx: _ProfileContext,
              *, background: bool = False) -> bool:
    """Run one step and record it; True when it ended done (or was already done)."""
    if step.status == StepStatus.done:
        return True
    commands = step_argv(step.name, ctx)
    if commands is None:
        step.status, step.detail = StepStatus.skipped, "not in this run's options"
        store.save()
        return True
    log_path = ctx.out_dir / f"{step.name}.log"
    step.status, step.started_at, step.ended_at = StepStatus.running, utc_now(), None
    step.log, step.background = str(log_path.relative_to(ctx.out_dir.parent)), background
    store.save()
    prefix = None if background else f"  [{ctx.profile.id}:{step.name}]"
    started = time.monotonic()
    exit_code = 0
    for argv in commands:
        exit_code = _run_logged(argv, log_path, echo_prefix=prefix)
        if exit_code != 0:
            break
    step.seconds = round(time.monotonic() - started, 2)
    step.ended_at, step.exit_code = utc_now(), exit_code
    step.status = StepStatus.done if exit_code == 0 else StepStatus.failed
    if exit_code != 0:
        step.detail = f"exit {exit_code}: {_failure_line(log_path)}"
    store.save()
    _echo(f"[{ctx.profile.id}] {step.name} {step.status.value} in {step.seconds:.1f}s"
          + (f" — {step.detail}" if step.detail else "") + (" (background)" if background else ""))
    return step.status == StepStatus.done


def _fail_profile(store: ManifestStore, record: ProfileRecord, reason: str, *, skip_from: str | None) -> None:
    record.status, record.reason = "failed", reason
    if skip_from is not None:
        names = list(STEP_NAMES)
        for step in record.steps[names.index(skip_from):]:
            if step.name not in ("down",) and step.status in (StepStatus.pending, StepStatus.running):
                step.status, step.detail = StepStatus.skipped, f"skipped: {reason}"
    store.save()
    _echo(f"[{record.profile}] FAILED: {reason}")


def _run_profile(store: ManifestStore, record: ProfileRecord, ctx: _ProfileContext,
                 evaluator: ThreadPoolExecutor | None) -> None:
    record.status, record.reason = "running", ""
    store.save()
    if not _run_step(store, record, record.step("env"), ctx):
        _fail_profile(store, record, "profile invalid: " + record.step("env").detail, skip_from="up")
        return
    server_work_left = any(record.step(n).status != StepStatus.done for n in SERVER_STEPS)
    if server_work_left:
        record.step("up").status = StepStatus.pending  # a resumed run must bring the server back
        if not _run_step(store, record, record.step("up"), ctx):
            _save_server_log(ctx.deployment, ctx.out_dir / "server.log")
            _fail_profile(store, record, "server did not start: " + record.step("up").detail, skip_from="verify")
            _run_step(store, record, record.step("down"), ctx)
            return
        ctx.load_time_s = record.step("up").seconds
        for name in SERVER_STEPS:
            step = record.step(name)
            if step.status == StepStatus.done:
                continue
            problem = _server_problem(ctx.deployment)
            if problem:
                _save_server_log(ctx.deployment, ctx.out_dir / "server.log")
                _fail_profile(store, record, f"server died before {name}: {problem} (see server.log)", skip_from=name)
                break
            if not _run_step(store, record, step, ctx):
                problem = _server_problem(ctx.deployment)
                if problem:
                    _save_server_log(ctx.deployment, ctx.out_dir / "server.log")
                    reason = f"server died during {name}: {problem} (see server.log)"
                elif name == "verify":
                    reason = f"verify failed ({step.detail}); benchmark skipped"
                else:
                    reason = f"{name} failed: {step.detail}"
                _fail_profile(store, record, reason, skip_from="verify" if name == "verify" else None)
                if name == "verify" or problem:
                    break
        record.step("down").status = StepStatus.pending
    if record.step("down").status != StepStatus.done:  # also after a kill between the last server step and down
        _run_step(store, record, record.step("down"), ctx)
    evaluate = record.step("evaluate")
    if record.step("codegen").status != StepStatus.done:
        if evaluate.status == StepStatus.pending:
            evaluate.status, evaluate.detail = StepStatus.skipped, "no finished codegen to evaluate"
        _finish_profile(store, record)
        return
    if evaluator is None:
        _run_step(store, record, evaluate, ctx)
        _finish_profile(store, record)
    else:
        future = evaluator.submit(_run_step, store, record, evaluate, ctx, background=True)
        future.add_done_callback(lambda _f: _finish_profile(store, record))
        ctx.evaluations.append(future)


def _finish_profile(store: ManifestStore, record: ProfileRecord) -> None:
    if record.status != "failed":
        bad = [s for s in record.steps if s.status == StepStatus.failed]
        record.status = "failed" if bad else "completed"
        if bad:
            record.reason = f"{bad[0].name} failed: {bad[0].detail}"
    store.save()


def new_manifest(run_id: str, config_path: Path, profile_ids: list[str], options: BenchOptions) -> Manifest:
    """A fresh manifest with every step pending."""
    return Manifest(run_id=run_id, config=str(config_path), options=options.as_dict(), pipelined=options.pipeline,
                    profiles=[ProfileRecord(profile=p, steps=[StepRecord(name=n) for n in STEP_NAMES])
                              for p in profile_ids])


def run_all(config_path: Path, profile_ids: list[str], run_dir: Path, options: BenchOptions,
            compose_dir: Path) -> Manifest:
    """Run (or resume) every profile in order; the manifest says how each one ended."""
    manifest_path = run_dir / "manifest.json"
    if manifest_path.is_file():
        store = ManifestStore.load(manifest_path)
        known = {p.profile for p in store.manifest.profiles}
        store.manifest.profiles += [ProfileRecord(profile=p, steps=[StepRecord(name=n) for n in STEP_NAMES])
                                    for p in profile_ids if p not in known]
        _echo(f"[all-bench] resuming run {run_dir.name}: completed steps are skipped")
    else:
        store = ManifestStore(manifest_path, new_manifest(run_dir.name, config_path, profile_ids, options))
    store.manifest.finished_at = None
    store.save()
    started = time.monotonic()
    evaluator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate") if options.pipeline else None
    contexts: list[_ProfileContext] = []
    try:
        for profile_id in profile_ids:
            record = store.manifest.profile(profile_id)
            if record.status == "completed":
                _echo(f"[{profile_id}] already completed in this run; skipped")
                continue
            out_dir = run_dir / profile_id
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                profile = get_profile(config_path, profile_id, require_model=False)
            except HarnessError as exc:
                _fail_profile(store, record, str(exc), skip_from="env")
                continue
            ctx = _ProfileContext(profile, config_path, out_dir, serving.deployment_for(profile, compose_dir), options)
            contexts.append(ctx)
            _echo(f"[all-bench] === {profile_id} ===")
            _run_profile(store, record, ctx, evaluator)
    finally:
        if evaluator is not None:
            evaluator.shutdown(wait=True)
    manifest = store.manifest
    manifest.finished_at = utc_now()
    manifest.wall_seconds = round(time.monotonic() - started, 1)
    manifest.overlap_seconds = overlap_seconds(manifest)
    store.save()
    return manifest
