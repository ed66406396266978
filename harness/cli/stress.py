"""CLI verb `stress PROFILE|URL`: needle-in-a-haystack grid and boundary probes of a server.

Given a PROFILE, the server is brought up when it is not running (and left running); should it
die during the stress, its container state and log tail go into the result and onto stderr.
The exit code counts the failed server checks, plus one when the server died.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from harness.cli.common import add_endpoint_args, client_for, number, number_list
from harness.cli.throughput import server_for
from harness.endpoint.client import RetryPolicy
from harness.endpoint.stress import (
    LOG_TAIL_LINES,
    QUICK_DEPTHS_PCT,
    QUICK_FILLS_PCT,
    StressSettings,
    format_stress,
    run_stress,
    write_result,
)
from harness.files import check_output_location
from harness.paths import COMPOSE_DIR
from harness.serving import compose as serving
from harness.serving.profiles import Profile
from harness.serving.rigs import client_for as docker_for

PERCENTS = number_list(int, low=1, high=100, what="percents")
NO_RETRIES = RetryPolicy(max_retries=0)  # a probe must see the server's first answer, not a retried one


def _log(message: str) -> None:
    print(f"[stress] {message}", file=sys.stderr, flush=True)


def _server_state_reader(profile: Profile | None) -> Callable[[], tuple[str, list[str]]] | None:
    """For a compose profile: what became of its server container, and the container's log tail."""
    if profile is None or profile.is_api:
        return None
    deployment = serving.deployment_for(profile, COMPOSE_DIR)

    def read() -> tuple[str, list[str]]:
        try:
            container = serving.server_container(deployment)
            if container is None:
                return "no server container", []
            state = docker_for(profile).container.inspect(container.id).state
            text = str(docker_for(profile).container.logs(container.id, tail=LOG_TAIL_LINES))
        except Exception as exc:  # best effort: the state is evidence, the death is already known
            return f"container state unknown ({type(exc).__name__}: {exc})", []
        if state.running:
            what = f"container {container.name} still running (status {state.status})"
        else:
            cause = "was OOM-killed" if state.oom_killed else f"exited with code {state.exit_code}"
            what = f"container {container.name} {cause}"
        return what, [line for line in text.splitlines() if line.strip()]

    return read


def cmd_stress(args: argparse.Namespace) -> int:
    if args.save_json:
        check_output_location(args.save_json)  # before the work: a bad path costs nothing
    target, profile, _, _ = server_for(args, _log)
    settings = StressSettings(
        depths_pct=args.depths or (QUICK_DEPTHS_PCT if args.quick else [25, 50, 90]),
        fills_pct=args.fills or (QUICK_FILLS_PCT if args.quick else [25, 50, 90]),
        seed=args.seed if args.seed is not None else secrets.randbelow(2**31), max_tokens=args.max_tokens,
        timeout_s=args.timeout_s, ctx_per_slot=args.ctx_per_slot, slots=args.slots)
    compose_profile = profile if profile is not None and not profile.is_api else None
    per_slot = None
    if compose_profile is not None and compose_profile.ctx_size:
        per_slot = compose_profile.ctx_size // max(compose_profile.parallel, 1)
    slots = args.slots or (compose_profile.parallel if compose_profile else None)
    with client_for(target, timeout_s=args.timeout_s, max_connections=(slots or 1) + 4, retry=NO_RETRIES) as client:
        result = run_stress(client, settings, profile_id=target.profile_id, profile_ctx_per_slot=per_slot,
                            profile_slots=slots, server_state=_server_state_reader(compose_profile), log=_log)
    print(format_stress(result))
    if args.save_json:
        print(f"saved {write_result(result, args.save_json)}")
    return min(result.exit_code, 100)


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add the `stress` verb."""
    text = ("stress a profile's server or an endpoint URL: needle-in-a-haystack grid (depth x fill of the "
            "per-slot context) and boundary probes (exact fill, one over, slots+1, cancel, malformed requests)")
    sub = verbs.add_parser("stress", parents=[common], help=text, description=text)
    sub.set_defaults(func=cmd_stress)
    sub.add_argument("target", help="profile id (started if not running) or base URL (http://host:port)")
    sub.add_argument("--depths", type=PERCENTS, help="needle depths in %% of the haystack (default 25,50,90)")
    sub.add_argument("--fills", type=PERCENTS,
                     help="prompt sizes in %% of the per-slot context less --max-tokens (default 25,50,90)")
    sub.add_argument("--quick", action="store_true",
                     help=f"a 2x2 grid (depths {QUICK_DEPTHS_PCT}, fills {QUICK_FILLS_PCT}) unless given")
    sub.add_argument("--seed", type=number(int, low=0, high=2**31 - 1),
                     help="seed of the filler and the needle (default: random, recorded in the result)")
    sub.add_argument("--max-tokens", type=number(int, low=1, high=4096), default=32,
                     help="answer budget of every grid request (default 32)")
    sub.add_argument("--ctx-per-slot", type=number(int, low=128, high=10_000_000),
                     help="per-slot context in tokens when /props cannot tell (default: /props, else profile)")
    sub.add_argument("--slots", type=number(int, low=1, high=256),
                     help="server slots when /props cannot tell (default: /props, else profile PARALLEL)")
    sub.add_argument("--timeout-s", "--timeout", dest="timeout_s", type=number(float, above=0, high=86400),
                     default=120, help="seconds one request may take (default 120)")
    add_endpoint_args(sub)
    sub.add_argument("--save-json", type=Path, help="write the StressResult JSON here (atomically)")
