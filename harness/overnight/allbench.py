"""Overnight runs: every bench-* profile, step by step, unattended and resumable.

Each step is a ``python -m harness <verb>`` subprocess whose output goes to
``results/<run-id>/<profile>/<step>.log``: a step cannot take the run down with it, can be
killed cleanly, and resumes from its own journal. The manifest records every step. Steps hand
the runner data, not log text: each leaves ``<step>.outcome.json`` (exit code, one-line error)
and its result JSON (``verify.json``, ``throughput.json``, ...). What the run ran (resolved
profiles, compose .env, image ids, model checksums, harness commit) is recorded in the
manifest when the run starts.

Per profile: env → up → verify (hard gate) → verify-full → stress → throughput → sweep →
packs → codegen → soak → down → evaluate. verify-full, stress, sweep and soak are the optional
layers (``--layers``; soak is off unless asked for: it takes half an hour by default).
``evaluate`` (sandboxed, CPU-only) runs on a background worker so that the next
profile's server loads and generates meanwhile; the manifest's timestamps show the overlap.
Between server steps the server's liveness is checked, so a dead engine is reported as
such rather than as a quality failure.

Profiles are grouped by rig (their ``DOCKER_CONTEXT``; API profiles form a lane of their own)
and the rigs run in parallel, one profile at a time per rig: a rig's GPUs are never shared
between two servers. Evaluation stays on the controller. A rig that is unreachable, or dies,
fails its own profiles with the reason; the other rigs finish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.endpoint.spend import SPEND_LEDGER_ENV
from harness.endpoint.verify import VerifyResult
from harness.errors import HarnessError
from harness.files import write_text_atomic
from harness.overnight.manifest import (
    Manifest,
    ManifestStore,
    ProfileRecord,
    StepRecord,
    StepStatus,
    overlap_seconds,
    rig_seconds,
    utc_now,
)
from harness.overnight.outcome import STEP_OUTCOME_ENV, StepOutcome, read_step_outcome
from harness.overnight.provenance import (
    ImageInspector,
    engine_inspector,
    image_identity,
    profile_changes,
    profile_provenance,
    run_provenance,
)
from harness.packs.selection import selection_args
from harness.serving import compose as serving
from harness.serving import rigs
from harness.serving.engines import engine_spec, health_url
from harness.serving.profiles import ENDPOINT_OVERRIDES_ENV, Profile, get_profile

SERVER_STEPS = ("verify", "verify-full", "stress", "throughput", "sweep", "packs", "codegen", "soak")
LAYERS = ("verify-full", "stress", "sweep", "soak")  # the steps --layers chooses from
DEFAULT_LAYERS = ("verify-full", "stress", "sweep")  # soak only when asked: it is long by design
SOAK_MARGIN_S = 900.0  # beyond the soak's own minutes: a fresh-mode restart, the last window's requests
DOWN_TIMEOUT_S = 600.0  # compose down against an engine that stopped answering must not hold a rig's lane
UP_MARGIN_S = 600.0  # beyond the profile's own health timeout: pulls, container creation
MAX_DETAIL_CHARS = 300
STEP_NAMES = ("env", "up", "verify", "verify-full", "stress", "throughput", "sweep", "packs", "codegen", "soak",
              "down", "evaluate")
_echo_lock = threading.Lock()


@dataclass(frozen=True)
class BenchOptions:
    """What each profile's benchmark covers (CI uses small subsets)."""

    packs: str = "medium"  # quick | medium | none | comma-separated pack ids and PACK/SCENARIO ids
    datasets: tuple[str, ...] = ("humaneval",)
    evalplus_limit: int | None = None
    throughput_runs: int = 5
    pipeline: bool = True
    judge: str | None = None  # profile id or URL of the rubric judge
    layers: tuple[str, ...] = DEFAULT_LAYERS  # which of LAYERS run
    soak_minutes: float = 30.0
    short_layers: bool = False  # the layers' quick versions (CI, a first look)

    def as_dict(self) -> dict[str, str | int | float | bool | None]:
        return {"packs": self.packs, "datasets": ",".join(self.datasets), "evalplus_limit": self.evalplus_limit,
                "throughput_runs": self.throughput_runs, "pipeline": self.pipeline, "judge": self.judge,
                "layers": ",".join(self.layers), "soak_minutes": self.soak_minutes, "short_layers": self.short_layers}


@dataclass
class _ProfileContext:
    profile: Profile
    config_path: Path
    out_dir: Path
    deployment: serving.Deployment | None  # None for an API profile: nothing to bring up
    options: BenchOptions
    load_time_s: float | None = None  # seconds from `up` to healthy, measured by the up step
    evaluations: list[Future] = field(default_factory=list)
    inspect_image: ImageInspector | None = None  # None: ask the profile's rig
    endpoint: str | None = None  # the controller's address of a server behind an SSH tunnel


def _echo(message: str) -> None:
    with _echo_lock:
        print(message, file=sys.stderr, flush=True)


def step_argv(step: str, ctx: _ProfileContext) -> list[list[str]] | None:
    """The harness command lines for one step (None: not part of this run's options)."""
    harness = [sys.executable, "-m", "harness"]
    conf = ["--config", str(ctx.config_path)]
    pid, out, opts = ctx.profile.id, ctx.out_dir, ctx.options
    if step in ("env", "up", "down") and ctx.profile.is_api:
        return None  # an API endpoint is already up; nothing of ours to start or stop
    if step == "env":
        return [harness + ["env", pid, *conf, "--out", str(out / "compose.env")]]
    if step in ("up", "down"):
        return [harness + [step, pid, *conf]]
    if step == "verify":
        return [harness + ["verify", pid, *conf, "--save-json", str(out / "verify.json")]]
    if step in LAYERS:
        return None if step not in opts.layers else [harness + layer_argv(step, opts) + [pid, *conf, "--save-json",
                                                                                        str(out / f"{step}.json")]]
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
        judge = ["--judge", opts.judge] if opts.judge else []
        return [harness + ["packs", "run", "--profile", pid, *conf, *selection_args(opts.packs), *judge, "--resume",
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


def layer_argv(step: str, opts: BenchOptions) -> list[str]:
    """The verb and options of one layer step (before the profile argument)."""
    short = opts.short_layers
    if step == "stress":
        return ["stress", *(["--quick"] if short else [])]
    if step == "sweep":
        return ["sweep", *(["--concurrency", "1,2", "--rates", "1", "--requests-per-point", "3", "--max-tokens", "16",
                            "--no-overhead-check"] if short else [])]
    if step == "soak":
        return ["soak", "--minutes", f"{opts.soak_minutes:g}", *(["--window-s", "5"] if short else [])]
    return [step]


def _run_logged(argv: list[str], log_path: Path, *, echo_prefix: str | None, outcome_path: Path,
                extra_env: dict[str, str] | None = None, timeout_s: float | None = None) -> int:
    """Run one command, appending its output to log_path (and echoing it when in the foreground);
    the command leaves its outcome record at outcome_path. Past timeout_s it is killed (exit -9)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    outcome_path.unlink(missing_ok=True)  # a record left by an earlier attempt must not speak for this one
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(argv[1:])}\n")
        log.flush()
        # One spend ledger per profile: its steps (separate processes) share one MAX_TOTAL_TOKENS / MAX_COST_USD.
        env = {**os.environ, STEP_OUTCOME_ENV: str(outcome_path),
               SPEND_LEDGER_ENV: str(outcome_path.parent / "spend.jsonl"), **(extra_env or {})}
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   text=True, bufsize=1, env=env)
        watchdog = threading.Timer(timeout_s, process.kill) if timeout_s else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        assert process.stdout is not None
        try:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if echo_prefix:
                    _echo(f"{echo_prefix} {line.rstrip()}")
            code = process.wait()
        finally:
            if watchdog is not None:
                watchdog.cancel()
        if code == -9 and timeout_s:
            log.write(f"[all-bench] killed after {timeout_s:.0f}s\n")
        return code


def _verify_failures(path: Path) -> str | None:
    """`2 of 6 server checks failed: name (detail); ...` from verify.json, or None without a readable one."""
    try:
        result = VerifyResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    server = [c for c in result.checks if c.kind == "server"]
    failed = [c for c in server if not c.passed]
    if not failed:
        return None
    return (f"{len(failed)} of {len(server)} server checks failed: "
            + "; ".join(f"{c.name} ({c.detail})" for c in failed))


def failure_detail(step: str, exit_code: int, outcome: StepOutcome | None, out_dir: Path, log_name: str) -> str:
    """Why a step failed, from the records it left: its outcome file (and verify.json for verify)."""
    if outcome is None:  # killed, crashed (a segfault), or not a harness process
        return f"exit {exit_code} (no outcome record; see {log_name})"
    if outcome.error:
        return f"exit {exit_code}: {outcome.error[:MAX_DETAIL_CHARS]}"
    if step == "verify" and (failures := _verify_failures(out_dir / "verify.json")):
        return f"exit {exit_code}: {failures[:MAX_DETAIL_CHARS]}"
    return f"exit {exit_code} (no error message; see {log_name})"


def _server_problem(deployment: serving.Deployment, endpoint: str | None = None) -> str | None:
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
    path = engine_spec(deployment.profile.engine).health_path
    try:
        reply = httpx.get(health_url(endpoint or deployment.base_url, deployment.profile.engine), timeout=10)
    except httpx.HTTPError as exc:
        return f"server not answering {path} ({type(exc).__name__})"
    return None if reply.status_code == 200 else f"{path} answered {reply.status_code}"


def _save_server_log(deployment: serving.Deployment, path: Path) -> str:
    """Save the server container's log tail to path; returns its last line (`` server said: ...``) or ""."""
    try:
        container = serving.server_container(deployment)
        if container is None:
            return ""
        write_text_atomic(path, str(rigs.client_for(deployment.profile).container.logs(container.id, tail=400)))
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except Exception:  # best effort: the log is evidence, not a step
        return ""
    return f"; server said: {lines[-1][:200]}" if lines else ""


def _run_step(store: ManifestStore, record: ProfileRecord, step: StepRecord, ctx: _ProfileContext,
              *, background: bool = False) -> bool:
    """Run one step and record it; True when it ended done (or was already done)."""
    if step.status == StepStatus.done:
        return True
    commands = step_argv(step.name, ctx)
    if commands is None:
        api = ctx.profile.is_api and step.name in ("env", "up", "down")
        step.status = StepStatus.skipped
        step.detail = f"API profile ({ctx.profile.provider}): no server to bring up" if api else \
            "not in this run's options"
        store.save()
        return True
    log_path = ctx.out_dir / f"{step.name}.log"
    outcome_path = ctx.out_dir / f"{step.name}.outcome.json"
    step.status, step.started_at, step.ended_at = StepStatus.running, utc_now(), None
    step.log, step.background = str(log_path.relative_to(ctx.out_dir.parent)), background
    store.save()
    prefix = None if background else f"  [{ctx.profile.id}:{step.name}]"
    started = time.monotonic()
    exit_code = 0
    timeout_s = {"up": ctx.profile.health_timeout_s + UP_MARGIN_S, "down": DOWN_TIMEOUT_S,
                 "soak": ctx.options.soak_minutes * 60 + SOAK_MARGIN_S}.get(step.name)
    extra_env = {ENDPOINT_OVERRIDES_ENV: json.dumps({ctx.profile.id: ctx.endpoint})} if ctx.endpoint else None
    for argv in commands:
        exit_code = _run_logged(argv, log_path, echo_prefix=prefix, outcome_path=outcome_path, extra_env=extra_env,
                                timeout_s=timeout_s)
        if exit_code != 0:
            break
    step.seconds = round(time.monotonic() - started, 2)
    step.ended_at, step.exit_code = utc_now(), exit_code
    step.status = StepStatus.done if exit_code == 0 else StepStatus.failed
    if exit_code != 0:
        step.detail = failure_detail(step.name, exit_code, read_step_outcome(outcome_path), ctx.out_dir,
                                     step.log or log_path.name)
        if exit_code == -9 and timeout_s:
            step.detail = f"killed after {timeout_s:.0f}s without finishing; " + step.detail
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
    """One profile's steps; a server on a remote rig's loopback is reached through an SSH tunnel held
    open from before `up` until after `down`."""
    record.status, record.reason = "running", ""
    record.rig, record.network = ctx.profile.rig, _network(ctx.profile)
    store.save()
    tunnel = None
    if ctx.deployment is not None and rigs.needs_tunnel(ctx.profile):
        try:
            tunnel = rigs.open_tunnel(ctx.profile)
        except HarnessError as exc:
            _fail_profile(store, record, str(exc), skip_from="env")
            _finish_profile(store, record)
            return
        ctx.endpoint = tunnel.url
        _echo(f"[{ctx.profile.id}] SSH tunnel to rig {ctx.profile.rig}: {tunnel.url} -> 127.0.0.1:{tunnel.remote_port}")
    try:
        _run_profile_steps(store, record, ctx, evaluator)
    finally:
        if tunnel is not None:
            tunnel.close()
            ctx.endpoint = None


def _network(profile: Profile) -> str:
    """How the controller reached the server: "" on this machine, else what the figures include."""
    if profile.is_api or not profile.docker_context or not rigs.is_remote(rigs.context_host(profile.docker_context)):
        return ""
    if rigs.needs_tunnel(profile):
        return f"over an SSH tunnel to rig {profile.rig}"
    return f"over the network to rig {profile.rig} ({profile.bind_address})"


def _run_profile_steps(store: ManifestStore, record: ProfileRecord, ctx: _ProfileContext,
                       evaluator: ThreadPoolExecutor | None) -> None:
    if not _run_step(store, record, record.step("env"), ctx):
        _fail_profile(store, record, "profile invalid: " + record.step("env").detail, skip_from="up")
        return
    server_work_left = any(record.step(n).status != StepStatus.done and step_argv(n, ctx) is not None
                           for n in SERVER_STEPS)
    if server_work_left:
        record.step("up").status = StepStatus.pending  # a resumed run must bring the server back
        if not _run_step(store, record, record.step("up"), ctx):
            said = _save_server_log(ctx.deployment, ctx.out_dir / "server.log") if ctx.deployment else ""
            _fail_profile(store, record, "server did not start: " + record.step("up").detail + said,
                          skip_from="verify")
            _run_step(store, record, record.step("down"), ctx)
            return
        ctx.load_time_s = record.step("up").seconds if not ctx.profile.is_api else None
        if ctx.deployment is not None:
            _image_after_up(store, record, ctx)
        for name in SERVER_STEPS:
            step = record.step(name)
            if step.status == StepStatus.done:
                continue
            problem = _server_problem(ctx.deployment, ctx.endpoint) if ctx.deployment else None
            if problem and ctx.deployment:
                said = _save_server_log(ctx.deployment, ctx.out_dir / "server.log")
                _fail_profile(store, record, f"server died before {name}: {problem} (see server.log{said})",
                              skip_from=name)
                break
            if not _run_step(store, record, step, ctx):
                problem = _server_problem(ctx.deployment, ctx.endpoint) if ctx.deployment else None
                if problem and ctx.deployment:
                    said = _save_server_log(ctx.deployment, ctx.out_dir / "server.log")
                    reason = f"server died during {name}: {problem} (see server.log{said})"
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


def _image_after_up(store: ManifestStore, record: ProfileRecord, ctx: _ProfileContext) -> None:
    """An image missing at run start (compose pulls it on `up`) is identified once its server is up."""
    provenance = record.provenance
    if provenance is None or provenance.is_api or provenance.image_id is not None or not provenance.image:
        return
    inspector = ctx.inspect_image or engine_inspector(rigs.client_for(ctx.profile))
    image_id, digests, note = image_identity(provenance.image, inspector)
    if image_id is not None:
        provenance.image_id, provenance.image_digests = image_id, digests
        provenance.image_note = f"inspected after up ({provenance.image_note or 'absent'} at run start)"
        store.save()


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


def _warn(manifest: Manifest, message: str) -> None:
    if message not in manifest.warnings:
        manifest.warnings.append(message)
    _echo(f"[all-bench] WARNING: {message}")


def record_provenance(manifest: Manifest, config_path: Path, profile_ids: list[str], repo_root: Path,
                      inspect_image: ImageInspector | None = None) -> None:
    """Record what the run runs, once: a resumed run keeps the original records and warns where the
    checkout or a resolved profile has changed since."""
    current = run_provenance(repo_root)
    if manifest.provenance is None:
        manifest.provenance = current
        if manifest.resumed_at:
            _warn(manifest, "this run started before provenance was recorded: the harness and profile records "
                            f"were taken when it was resumed at {current.recorded_at:%Y-%m-%d %H:%M UTC}")
    else:
        before, now = manifest.provenance, current
        old = (before.harness_version, before.git_commit, before.git_dirty)
        new = (now.harness_version, now.git_commit, now.git_dirty)
        if old != new:
            _warn(manifest, "the harness changed since the run started: version/commit/dirty "
                            f"{'/'.join(map(str, old))} at the start, {'/'.join(map(str, new))} on resume")
    for profile_id in profile_ids:
        record = manifest.profile(profile_id)
        if record.status == "completed" and record.provenance is not None:
            continue  # nothing of it runs again
        try:
            profile = get_profile(config_path, profile_id, require_model=False)
        except HarnessError:
            continue  # the run itself records why this profile cannot run
        if record.provenance is None:
            record.provenance = profile_provenance(profile, inspect_image)
            if record.provenance.model_sha256_source == "computed":
                _echo(f"[{profile_id}] model sha256 computed in {record.provenance.model_sha256_seconds:.1f}s "
                      f"({record.provenance.model_path})")
            continue
        changes = profile_changes(record.provenance.resolved, profile.model_dump(mode="json", by_alias=True))
        if changes:
            _warn(manifest, f"[{profile_id}] profile changed since the run started ({'; '.join(changes)}); "
                            "the manifest keeps the original, steps run after the resume use the new values")


def run_all(config_path: Path, profile_ids: list[str], run_dir: Path, options: BenchOptions,
            compose_dir: Path, repo_root: Path, *, inspect_image: ImageInspector | None = None) -> Manifest:
    """Run (or resume) every profile in order; the manifest says what ran and how each profile ended.

    repo_root is the harness checkout whose commit is recorded; inspect_image replaces the local
    engine's image inspection (tests)."""
    manifest_path = run_dir / "manifest.json"
    if manifest_path.is_file():
        store = ManifestStore.load(manifest_path)
        known = {p.profile for p in store.manifest.profiles}
        for record in store.manifest.profiles:  # a run from an older harness lacks the newer steps
            have = {s.name: s for s in record.steps}
            record.steps = [have.get(n) or StepRecord(name=n) for n in STEP_NAMES] + \
                [s for s in record.steps if s.name not in STEP_NAMES]
        store.manifest.profiles += [ProfileRecord(profile=p, steps=[StepRecord(name=n) for n in STEP_NAMES])
                                    for p in profile_ids if p not in known]
        store.manifest.resumed_at.append(utc_now())
        _echo(f"[all-bench] resuming run {run_dir.name}: completed steps are skipped")
    else:
        store = ManifestStore(manifest_path, new_manifest(run_dir.name, config_path, profile_ids, options))
    store.manifest.finished_at = None
    record_provenance(store.manifest, config_path, profile_ids, repo_root, inspect_image)
    store.save()
    started = time.monotonic()
    evaluator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate") if options.pipeline else None
    lanes = _lanes(config_path, profile_ids)
    if len(lanes) > 1:
        _echo(f"[all-bench] {len(lanes)} rigs in parallel: "
              + "; ".join(f"{rig}: {', '.join(ids)}" for rig, ids in lanes.items()))
    try:
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="rig") as pool:
            futures = [pool.submit(_run_lane, store, rig, ids, run_dir, config_path, compose_dir, options, evaluator,
                                   inspect_image) for rig, ids in lanes.items()]
            for future in futures:
                future.result()  # a lane's own failures are recorded; this re-raises only harness bugs
    finally:
        if evaluator is not None:
            evaluator.shutdown(wait=True)
    manifest = store.manifest
    manifest.finished_at = utc_now()
    manifest.wall_seconds = round(time.monotonic() - started, 1)
    manifest.overlap_seconds = overlap_seconds(manifest)
    manifest.rig_seconds = rig_seconds(manifest)
    store.save()
    return manifest


def _lanes(config_path: Path, profile_ids: list[str]) -> dict[str, list[str]]:
    """Profile ids by rig, in run order (a profile that does not load runs in the local lane and fails there)."""
    lanes: dict[str, list[str]] = {}
    for profile_id in profile_ids:
        try:
            rig = get_profile(config_path, profile_id, require_model=False).rig
        except HarnessError:
            rig = rigs.LOCAL_RIG
        lanes.setdefault(rig, []).append(profile_id)
    return lanes


def _run_lane(store: ManifestStore, rig: str, profile_ids: list[str], run_dir: Path, config_path: Path,
              compose_dir: Path, options: BenchOptions, evaluator: ThreadPoolExecutor | None,
              inspect_image: ImageInspector | None) -> None:
    """One rig's profiles, one at a time. The rig is fingerprinted once per run, and asked whether it
    answers before each profile: an unreachable rig fails its profiles in seconds, with the reason."""
    context = None if rig in (rigs.LOCAL_RIG, "api") else rig
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
        if rig != "api":
            known = store.manifest.rigs.get(rig)
            if known is None or not known.reachable:
                store.manifest.rigs[rig] = rigs.fingerprint(context, gpu_image=profile.image)
                store.save()
            problem = rigs.rig_problem(context)
            if problem:
                record.rig = rig
                _fail_profile(store, record, f"{problem} (the other rigs go on)", skip_from="env")
                continue
        deployment = None if profile.is_api else serving.deployment_for(profile, compose_dir)
        ctx = _ProfileContext(profile, config_path, out_dir, deployment, options, inspect_image=inspect_image)
        _echo(f"[all-bench] === {profile_id}" + (f" on rig {rig}" if context else "") + " ===")
        _run_profile(store, record, ctx, evaluator)
