"""CLI verb `throughput PROFILE|URL` (alias `bench`): TTFT, decode and prompt tokens/s, concurrency.

Given a PROFILE, the bench brings its server up when it is not running and records the
model load time (seconds from `up` to healthy); a server that was already running is
benched as is and left running, and its load time can be passed in with --load-time-s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from harness.cli.common import add_endpoint_args, client_for, number, number_list, resolve_target
from harness.endpoint.target import Target
from harness.endpoint.throughput import BenchSettings, format_result, run_bench, write_result
from harness.errors import EndpointError
from harness.files import check_output_location
from harness.paths import COMPOSE_DIR
from harness.serving import compose as serving
from harness.serving.profiles import Profile, check_model_file
from harness.serving.rigs import context_host, is_remote, needs_tunnel, nvidia_smi_on_rig


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def server_for(args: argparse.Namespace, log: Callable[[str], None] | None = None,
               ) -> tuple[Target, Profile | None, float | None, str | None]:
    """(target, profile, load time, load-time note); starts a compose profile's server if needed.

    Shared by every verb that measures a server (throughput, verify-full, stress, sweep, soak): a
    server that was running is used as is and left running; one this call starts is left running too.
    """
    target, profile = resolve_target(args, args.target, args.config)
    load_time = getattr(args, "load_time_s", None)
    if profile is None or profile.is_api:
        what = "benched a URL" if profile is None else "an API endpoint"
        note = None if load_time is not None else f"not measured ({what}; pass --load-time-s)"
        return target, profile, load_time, note
    if not profile.docker_context:  # a rig's model file is on the rig
        check_model_file(profile)
    deployment = serving.deployment_for(profile, COMPOSE_DIR)
    container = serving.server_container(deployment)
    if load_time is not None:
        if container is None or not container.state.running:
            serving.up(deployment)
        return target, profile, load_time, "given by the caller"
    if container is not None and container.state.running:
        serving.wait(deployment)
        return target, profile, None, "not measured (server was already running; pass --load-time-s)"
    seconds = serving.up(deployment)
    (log or _log)(f"[{profile.id}] started; left running (stop it: make down PROFILE={profile.id})")
    return target, profile, seconds, "seconds from compose up to /health 200"


def gpu_sampler(profile: Profile | None) -> tuple[str | list[str] | None, str]:
    """What samples VRAM: this machine's nvidia-smi, or the one in the server's container on the profile's rig."""
    if profile is None or not profile.docker_context:
        return shutil.which("nvidia-smi"), "nvidia-smi not found"
    container = serving.server_container(serving.deployment_for(profile, COMPOSE_DIR))
    if container is None:
        return None, f"no server container on rig {profile.rig}"
    return nvidia_smi_on_rig(profile, container.id)


def cmd_throughput(args: argparse.Namespace) -> int:
    if args.save_json:
        check_output_location(args.save_json)  # before the measurement: a bad path costs no work
    target, profile, load_s, load_note = server_for(args)
    settings = BenchSettings(runs=args.runs, warmup_runs=args.warmup, max_tokens=args.max_tokens,
                             ignore_eos=args.ignore_eos, prompt_lengths_tokens=args.prompt_lengths,
                             prompt_runs=args.prompt_runs, concurrency_levels=args.concurrency,
                             slots=args.slots or (profile.parallel if profile else None), timeout_s=args.timeout_s)
    nvidia_smi, absent = gpu_sampler(profile)
    over_network: bool | str = profile is not None and profile.is_api
    if profile is not None and profile.docker_context and is_remote(context_host(profile.docker_context)):
        over_network = f"on rig {profile.rig} over an SSH tunnel" if needs_tunnel(profile) else \
            f"on rig {profile.rig} over the network"
    with client_for(target, timeout_s=args.timeout_s, max_connections=max(args.concurrency) + 2) as client:
        result = run_bench(client, settings, model=target.model_id, profile_id=target.profile_id,
                           nvidia_smi=nvidia_smi, vram_absent_note=absent, load_time_s=load_s,
                           load_time_note=load_note, log=_log,
                           over_network=over_network)
    if not result.valid:
        raise EndpointError(f"{target.display_url}: {result.unfinished_streams} stream(s) ended without a "
                            "finish_reason or end marker; the numbers are not a measurement and were not saved")
    print(format_result(result))
    if args.save_json:
        print(f"saved {write_result(result, args.save_json)}")
    return 0


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add the `throughput` verb (`bench` is its old name, kept as an alias)."""
    text = "throughput bench of a profile's server or an endpoint URL: TTFT, decode/pp tokens/s, concurrency"
    sub = verbs.add_parser("throughput", aliases=["bench"], parents=[common], help=text, description=text)
    sub.set_defaults(func=cmd_throughput)
    sub.add_argument("target", help="profile id (started if not running) or base URL (http://host:port)")
    sub.add_argument("--runs", type=number(int, low=1, high=10_000), default=5, help="measured runs (default 5)")
    sub.add_argument("--warmup", type=number(int, low=0, high=1000), default=1,
                     help="discarded warmup runs (default 1)")
    sub.add_argument("--max-tokens", type=number(int, low=2, high=1_000_000), default=128,
                     help="tokens per decode run (default 128)")
    sub.add_argument("--ignore-eos", choices=["auto", "on", "off"], default="auto",
                     help="send ignore_eos so every run decodes max_tokens (auto: when the server is llama.cpp)")
    sub.add_argument("--prompt-lengths", type=number_list(int, low=1, what="token counts"), default=[256, 1024],
                     help="prompt-processing lengths in tokens, clamped to the context (default 256,1024)")
    sub.add_argument("--prompt-runs", type=number(int, low=1, high=1000), default=3,
                     help="measured requests per prompt length (default 3)")
    sub.add_argument("--concurrency", type=number_list(int, low=1, what="stream counts"), default=[1, 2, 4],
                     help="simultaneous streams to probe, capped by the slots (default 1,2,4)")
    sub.add_argument("--slots", type=number(int, low=1, high=256),
                     help="server slots when /props cannot tell (default: profile PARALLEL)")
    sub.add_argument("--timeout-s", "--timeout", dest="timeout_s", type=number(float, above=0, high=86400), default=120,
                     help="seconds one request may take in total (default 120)")
    add_endpoint_args(sub)
    sub.add_argument("--load-time-s", type=number(float, low=0, high=86400),
                     help="model load time measured by the caller")
    sub.add_argument("--save-json", type=Path, help="write the ThroughputResult JSON here (atomically)")
