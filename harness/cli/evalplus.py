"""CLI verbs for EvalPlus: data, sandboxes, codegen, evaluate, and the one-profile pipeline.

This is the edge: it reads HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH and options, and
passes explicit paths and settings to the core modules.
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from pathlib import Path

from tabulate import tabulate

from harness.cli.common import add_endpoint_args, client_for, number, resolve_target
from harness.endpoint.client import RetryPolicy
from harness.endpoint.target import Target, target_from_profile
from harness.errors import Interrupted
from harness.evalplus import datasets, sandbox
from harness.evalplus.codegen import DEFAULT_MAX_TOKENS, CodegenConfig, CodegenSummary, raw_path_for, run_codegen
from harness.evalplus.evaluation import evaluate_file, result_paths
from harness.evalplus.results import EvalRunResult
from harness.files import OutputPathError, check_output_location
from harness.packs import sandbox as agent_sandbox
from harness.paths import CACHE_DIR, COMPOSE_DIR, REPO_ROOT, default_data_dir
from harness.serving import compose as serving
from harness.serving.profiles import check_model_file, get_profile

DEFAULT_DATA_DIR = default_data_dir()


def load_named_dataset(name: str, data_dir: Path = DEFAULT_DATA_DIR, path: Path | None = None) -> datasets.Dataset:
    """--dataset-path, else $HUMANEVAL_OVERRIDE_PATH / $MBPP_OVERRIDE_PATH, else the data dir."""
    spec = datasets.spec_for(name)
    override = os.environ.get(datasets.OVERRIDE_ENV[spec.kind])
    return datasets.load_dataset(name, Path(path or override or data_dir / spec.relative_path))


def _dataset(args: argparse.Namespace) -> datasets.Dataset:
    return load_named_dataset(args.dataset, args.data_dir, args.dataset_path)


def _options(args: argparse.Namespace) -> sandbox.CheckOptions:
    return sandbox.CheckOptions(parallel=args.eval_parallel, min_time_limit_s=args.min_time_limit)


def _limits(args: argparse.Namespace) -> sandbox.SandboxLimits:
    return sandbox.SandboxLimits(memory=args.sandbox_memory, cpus=args.eval_parallel, wall_s=args.sandbox_wall_s)


def print_codegen_summary(summary: CodegenSummary) -> None:
    print(f"codegen: {summary.n_tasks} tasks ({summary.generated} generated, {summary.resumed} resumed) in "
          f"{summary.wall_s:.1f}s; empty {summary.empty}, truncated {summary.truncated}, recovered from reasoning "
          f"{summary.recovered_from_reasoning}, request errors {summary.errors}; "
          f"{'canonical (greedy)' if summary.canonical else 'NON-CANONICAL (server sampling)'} "
          f"-> {summary.samples_path}")


def print_eval_summary(result: EvalRunResult, label: str) -> None:
    rows = [[label, result.dataset, result.n_tasks, f"{100 * result.pass_at_1_base:.1f}",
             f"{100 * result.pass_at_1_plus:.1f}", result.counts["empty"], result.counts["truncated"],
             result.counts["recovered_from_reasoning"],
             result.counts["request_errors"] + result.counts["sandbox_errors"]]]
    print(tabulate(rows, headers=["run", "dataset", "tasks", "pass@1 base %", "pass@1 plus %", "empty", "truncated",
                                  "recovered", "errors"]))


def cmd_data(args: argparse.Namespace) -> int:
    for name in args.names:
        path = datasets.fetch_dataset(name, args.data_dir, mirror=args.mirror)
        print(datasets.md5_note(name, path))
    return 0


def cmd_sandboxes(args: argparse.Namespace) -> int:
    print(sandbox.build_sandbox_image(REPO_ROOT, CACHE_DIR, args.base_image))
    print(agent_sandbox.build_agent_image(REPO_ROOT, CACHE_DIR, args.base_image))
    return 0


def _check_out_dir(out_dir: Path, dataset: datasets.Dataset) -> None:
    """Before any request: --out is a folder (or can be one) and its sample files are plain files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(f"{out_dir}: --out must be a folder, and this is a file")
    samples = out_dir / f"{dataset.name}.jsonl"
    for path in (samples, raw_path_for(samples)):
        check_output_location(path)


def _codegen(args: argparse.Namespace, dataset: datasets.Dataset, target: Target, parallel: int,
             max_tokens: int, out_dir: Path) -> CodegenSummary:
    """Generate samples through the endpoint client; the model id comes from the target or /v1/models."""
    _check_out_dir(out_dir, dataset)
    retry = RetryPolicy(max_retries=args.retries)
    with client_for(target, timeout_s=args.timeout_s, max_connections=parallel, retry=retry) as client:
        info = client.probe()
        config = CodegenConfig(base_url=target.display_url, model=info.model, parallel=parallel, max_tokens=max_tokens,
                               sampling_from_server=args.sampling_from_server, thinking=args.thinking,
                               reasoning_effort=args.reasoning_effort, request_timeout_s=args.timeout_s,
                               retries=args.retries)
        tasks = dataset.subset(args.limit, args.task)
        samples = out_dir / f"{dataset.name}.jsonl"
        try:
            summary = run_codegen(tasks, config, samples, client=client)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: finished tasks are kept in {samples}; run the same command to generate "
                              "the rest") from None
    print_codegen_summary(summary)
    return summary


def cmd_codegen(args: argparse.Namespace) -> int:
    """Against --base-url, or a profile's endpoint (its slots and MAX_TOKENS as defaults)."""
    dataset = _dataset(args)  # a missing dataset fails before any request
    parallel, max_tokens = args.parallel, args.max_tokens
    target, profile = resolve_target(args, args.profile or args.base_url, args.config)
    if profile is not None:
        parallel, max_tokens = parallel or profile.requests_in_flight, max_tokens or profile.max_tokens
    summary = _codegen(args, dataset, target, parallel or 1, max_tokens or DEFAULT_MAX_TOKENS, args.out)
    return 1 if summary.errors else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    for path in result_paths(args.samples):
        check_output_location(path)  # before the sandbox runs: a bad path costs no work
    result = evaluate_file(_dataset(args), args.samples, CACHE_DIR, options=_options(args), limits=_limits(args))
    print_eval_summary(result, args.samples.name)
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    """One profile: up -> health-wait -> codegen -> down -> sandbox evaluation -> result."""
    profile = get_profile(args.config, args.profile, require_model=False)
    dataset = _dataset(args)
    sandbox.require_image(sandbox.SANDBOX_IMAGE)  # fail before spending GPU time
    out_dir = args.out or Path("results") / f"evalplus-{datetime.now():%Y%m%d}" / profile.id
    target = target_from_profile(profile, api_key_env=args.api_key_env, model_id=args.model)
    parallel = args.parallel or profile.requests_in_flight
    max_tokens = args.max_tokens or profile.max_tokens or DEFAULT_MAX_TOKENS
    if profile.is_api:
        summary = _codegen(args, dataset, target, parallel, max_tokens, out_dir)
    else:
        check_model_file(profile)
        deployment = serving.deployment_for(profile, COMPOSE_DIR)
        serving.up(deployment)
        try:
            summary = _codegen(args, dataset, target, parallel, max_tokens, out_dir)
        finally:
            if not args.keep_up:
                serving.down(deployment)
    result = evaluate_file(dataset, summary.samples_path, CACHE_DIR, options=_options(args), limits=_limits(args))
    print_eval_summary(result, profile.id)
    return 0


def _add_dataset_args(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--dataset", default="humaneval", help=f"one of {', '.join(datasets.DATASETS)}")
    sub.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                     help=f"where `make data` put the files (default {DEFAULT_DATA_DIR}: $BENCHWRIGHT_DATA_DIR, "
                          "./data or ../shared/data)")
    sub.add_argument("--dataset-path", type=Path,
                     help="dataset jsonl (default: $HUMANEVAL_OVERRIDE_PATH / $MBPP_OVERRIDE_PATH, then --data-dir)")


def _add_codegen_args(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--limit", type=number(int, low=1), help="only the first N tasks")
    sub.add_argument("--task", action="append", help="only this task id (repeatable)")
    sub.add_argument("--max-tokens", type=number(int, low=1, high=1_000_000),
                     help=f"per answer (default: profile MAX_TOKENS or {DEFAULT_MAX_TOKENS})")
    sub.add_argument("--sampling-from-server", action="store_true",
                     help="send no sampler fields; record /props defaults; marks the run non-canonical")
    thinking = sub.add_mutually_exclusive_group()
    thinking.add_argument("--thinking", dest="thinking", action="store_true", default=None,
                          help="chat_template_kwargs.enable_thinking=true")
    thinking.add_argument("--no-thinking", dest="thinking", action="store_false",
                          help="chat_template_kwargs.enable_thinking=false")
    sub.add_argument("--reasoning-effort", help="reasoning_effort for templates that read it (low|medium|high)")
    sub.add_argument("--retries", type=number(int, low=0, high=10), default=2,
                     help="retries of 429 / 5xx / lost connections per request (default 2)")
    sub.add_argument("--timeout-s", "--request-timeout", dest="timeout_s", type=number(float, above=0, high=86400),
                     default=600, help="seconds one request may take in total (default 600)")


def _add_eval_args(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--eval-parallel", type=number(int, low=1, high=256), default=os.cpu_count() or 1,
                     help="samples checked at once, and the sandbox's --cpus (default: host cores)")
    sub.add_argument("--min-time-limit", type=number(float, above=0, high=3600), default=4.0,
                     help="per-test minimum seconds (default 4)")
    sub.add_argument("--sandbox-memory", default="4g", help="sandbox --memory (default 4g)")
    sub.add_argument("--sandbox-wall-s", type=number(float, above=0, high=86400), default=3600,
                     help="wall-clock cap of one sandbox run")


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add the EvalPlus verbs to the main parser."""

    def verb(name: str, func, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    sub = verb("data", cmd_data, "download the EvalPlus datasets (HumanEval+, MBPP+) into --data-dir")
    sub.add_argument("names", nargs="*", default=["humaneval", "mbpp"])
    sub.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    sub.add_argument("--mirror", default=os.environ.get("BENCHWRIGHT_DATA_MIRROR"),
                     help="base URL that serves GitHub's release paths (default: https://github.com; "
                          "env BENCHWRIGHT_DATA_MIRROR)")
    sub = verb("sandboxes", cmd_sandboxes, "build the sandbox images offline (EvalPlus, agent)")
    sub.add_argument("--base-image")
    sub = verb("codegen", cmd_codegen, "generate EvalPlus samples from an OpenAI-compatible endpoint (resumable)")
    where = sub.add_mutually_exclusive_group(required=True)
    where.add_argument("--profile", help="profile id in --config (its server must be up)")
    where.add_argument("--base-url", help="endpoint URL, with or without /v1, e.g. http://127.0.0.1:8080")
    add_endpoint_args(sub)
    sub.add_argument("--out", type=Path, required=True, help="directory for <dataset>.jsonl and .raw.jsonl")
    sub.add_argument("--parallel", type=number(int, low=1, high=256),
                     help="requests in flight (default: the profile's BENCH_PARALLEL, else its PARALLEL slots, else 1)")
    _add_dataset_args(sub)
    _add_codegen_args(sub)
    sub = verb("evaluate", cmd_evaluate, "evaluate a samples file in the sandbox; print pass@1 base/plus")
    sub.add_argument("--samples", type=Path, required=True)
    _add_dataset_args(sub)
    _add_eval_args(sub)
    sub = verb("evalplus", cmd_pipeline, "one profile: up, codegen, down, sandbox evaluation, summary")
    sub.add_argument("profile")
    sub.add_argument("--out", type=Path, help="default results/evalplus-DATE/PROFILE")
    sub.add_argument("--parallel", type=number(int, low=1, high=256),
                     help="requests in flight (default: the profile's BENCH_PARALLEL, else PARALLEL)")
    sub.add_argument("--keep-up", action="store_true", help="leave the server running after codegen")
    add_endpoint_args(sub)
    _add_dataset_args(sub)
    _add_codegen_args(sub)
    _add_eval_args(sub)
