"""CLI verb `bench PROFILE|URL`: the throughput bench.

Given a PROFILE, the bench brings its server up when it is not running and records the
model load time (seconds from `up` to healthy); a server that was already running is
benched as is and left running, and its load time can be passed in with --load-time-s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from harness.endpoint.throughput import BenchSettings, format_result, run_bench, write_result
from harness.paths import COMPOSE_DIR
from harness.serving import compose as serving
from harness.serving.profiles import get_profile


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _server_for(args: argparse.Namespace) -> tuple[str, str | None, int | None, float | None, str | None]:
    """(base URL, profile id, profile slots, load time, load-time note); starts the profile's server if needed."""
    if args.target.startswith(("http://", "https://")):
        note = None if args.load_time_s is not None else "not measured (benched a URL; pass --load-time-s)"
        return args.target, None, None, args.load_time_s, note
    profile = get_profile(args.config, args.target)
    deployment = serving.deployment_for(profile, COMPOSE_DIR)
    container = serving.server_container(deployment)
    if args.load_time_s is not None:
        if container is None or not container.state.running:
            serving.up(deployment)
        return deployment.base_url, profile.id, profile.parallel, args.load_time_s, "given by the caller"
    if container is not None and container.state.running:
        serving.wait(deployment)
        return (deployment.base_url, profile.id, profile.parallel, None,
                "not measured (server was already running; pass --load-time-s)")
    seconds = serving.up(deployment)
    _log(f"[{profile.id}] started; left running (stop it: make down PROFILE={profile.id})")
    return deployment.base_url, profile.id, profile.parallel, seconds, "seconds from compose up to /health 200"


def cmd_bench(args: argparse.Namespace) -> int:
    base_url, profile_id, profile_slots, load_s, load_note = _server_for(args)
    settings = BenchSettings(runs=args.runs, warmup_runs=args.warmup, max_tokens=args.max_tokens,
                             ignore_eos=args.ignore_eos, prompt_lengths_tokens=args.prompt_lengths,
                             prompt_runs=args.prompt_runs, concurrency_levels=args.concurrency,
                             slots=args.slots or profile_slots, timeout_s=args.timeout)
    result = run_bench(base_url, settings, model=args.model, profile_id=profile_id,
                       nvidia_smi=shutil.which("nvidia-smi"), load_time_s=load_s, load_time_note=load_note, log=_log)
    print(format_result(result))
    if args.save_json:
        print(f"saved {write_result(result, args.save_json)}")
    return 0


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add the `bench` verb."""
    text = "throughput bench of a profile's server or an endpoint URL: TTFT, decode/pp tokens/s, concurrency"
    sub = verbs.add_parser("throughput", aliases=["bench"], parents=[common], help=text, description=text)
    sub.set_defaults(func=cmd_bench)
    sub.add_argument("target", help="profile id (started if not running) or base URL (http://host:port)")
    sub.add_argument("--model", help="model name to request (default: first of /v1/models)")
    sub.add_argument("--runs", type=int, default=5, help="measured runs (default 5)")
    sub.add_argument("--warmup", type=int, default=1, help="discarded warmup runs (default 1)")
    sub.add_argument("--max-tokens", type=int, default=128, help="tokens per decode run (default 128)")
    sub.add_argument("--ignore-eos", choices=["auto", "on", "off"], default="auto",
                     help="send ignore_eos so every run decodes max_tokens (auto: when the server is llama.cpp)")
    sub.add_argument("--prompt-lengths", type=_int_list, default=[256, 1024],
                     help="prompt-processing lengths in tokens, clamped to the context (default 256,1024)")
    sub.add_argument("--prompt-runs", type=int, default=3, help="measured requests per prompt length (default 3)")
    sub.add_argument("--concurrency", type=_int_list, default=[1, 2, 4],
                     help="simultaneous streams to probe, capped by the slots (default 1,2,4)")
    sub.add_argument("--slots", type=int, help="server slots when /props cannot tell (default: profile PARALLEL)")
    sub.add_argument("--timeout", type=float, default=120, help="longest silence within one request, s (default 120)")
    sub.add_argument("--load-time-s", type=float, help="model load time measured by the caller")
    sub.add_argument("--save-json", type=Path, help="write the ThroughputResult JSON here (atomically)")
