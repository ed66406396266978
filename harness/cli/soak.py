"""CLI verb `soak PROFILE|URL`: mixed traffic for --minutes, watched window by window.

Given a PROFILE the server is brought up when it is not running (and left running), and its
container is watched: memory, running state, restarts. `--mode fresh` restarts it (compose down/up)
every --fresh-every windows, so only a PROFILE can have it. The result is saved even when the
server dies or Ctrl-C stops the soak: the windows measured so far are the finding.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import add_endpoint_args, client_for, number
from harness.cli.throughput import gpu_sampler, server_for
from harness.endpoint.client import RetryPolicy
from harness.endpoint.soak import DEFAULT_MIX, ServerControl, SoakSettings, format_soak, run_soak, write_soak
from harness.endpoint.target import looks_like_url
from harness.errors import HarnessError, Interrupted, ServingError
from harness.files import check_output_location
from harness.paths import COMPOSE_DIR
from harness.serving import compose as serving
from harness.serving import stats
from harness.serving.compose import Deployment
from harness.serving.rigs import client_for as engine_for

EXIT_ENDED_EARLY = 1


def _log(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def server_control(deployment: Deployment) -> ServerControl:
    """Watch (and for fresh mode restart) a compose-served server through its rig's docker client.

    The container is found by name, which compose keeps across down/up, so a fresh restart is followed.
    """
    container = serving.server_container(deployment)
    if container is None:
        raise ServingError(f"[{deployment.profile.id}] has no server container to watch")
    engine, name = engine_for(deployment.profile), container.name

    def restart() -> float:
        serving.down(deployment)
        return serving.up(deployment)

    return ServerControl(snapshot=lambda: stats.snapshot(engine, name), log_tail=lambda: stats.log_tail(engine, name),
                         restart=restart)


def _mix(text: str) -> list[str]:
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [kind for kind in kinds if kind not in DEFAULT_MIX]
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(DEFAULT_MIX)}, got {text!r}")
    return kinds


def cmd_soak(args: argparse.Namespace) -> int:
    if args.save_json:
        check_output_location(args.save_json)  # before the soak: a bad path costs no work
    if args.mode == "fresh" and looks_like_url(args.target):
        raise HarnessError("--mode fresh restarts the server between windows, so it needs a PROFILE, not a URL")
    minutes = args.seconds / 60 if args.seconds is not None else args.minutes
    settings = SoakSettings(minutes=minutes, window_s=args.window_s, mode=args.mode,
                            fresh_every_windows=args.fresh_every, concurrency=args.concurrency, mix=args.mix,
                            max_tokens=args.max_tokens,
                            long_prompt_tokens=args.long_prompt_tokens, timeout_s=args.timeout_s)
    target, profile, _, _ = server_for(args, _log)
    if args.mode == "fresh" and (profile is None or profile.is_api):
        raise HarnessError(f"--mode fresh needs a compose PROFILE; [{args.target}] is an API endpoint")
    server = None
    if profile is not None and not profile.is_api:
        server = server_control(serving.deployment_for(profile, COMPOSE_DIR))
    nvidia_smi, absent = gpu_sampler(profile)
    workers = args.concurrency or (profile.parallel if profile else None) or 16
    # no retries: a soak counts every failed request; a retry would hide the flakiness it is looking for
    with client_for(target, timeout_s=args.timeout_s, max_connections=workers + 2,
                    retry=RetryPolicy(max_retries=0)) as client:
        result = run_soak(client, settings, model=target.model_id, profile_id=target.profile_id, server=server,
                          nvidia_smi=nvidia_smi, gpu_absent_note=absent, log=_log,
                          notes=["requests are not retried: every failure counts"])
    print(format_soak(result))
    saved = write_soak(result, args.save_json) if args.save_json else None
    if saved:
        print(f"saved {saved}")
    if result.ended_early and result.ended_early.startswith("interrupted"):
        kept = f"saved to {saved}" if saved else "not saved (no --save-json)"
        raise Interrupted(f"soak interrupted after {len(result.windows)} window(s); the result is {kept}")
    return EXIT_ENDED_EARLY if result.ended_early else 0


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add the `soak` verb."""
    text = "soak a profile's server or an endpoint URL with mixed traffic; report drift, errors and restarts"
    sub = verbs.add_parser("soak", parents=[common], help=text, description=text)
    sub.set_defaults(func=cmd_soak)
    sub.add_argument("target", help="profile id (started if not running) or base URL (http://host:port)")
    length = sub.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=number(float, above=0, high=10_080), default=30,
                        help="how long to soak (default 30)")
    length.add_argument("--seconds", type=number(float, above=0, high=604_800), help="how long, in seconds")
    sub.add_argument("--window-s", type=number(float, above=0, high=86_400), default=30,
                     help="seconds per measurement window (default 30)")
    sub.add_argument("--mode", choices=["continuous", "fresh"], default="continuous",
                     help="continuous: one server throughout (default); fresh: restart it every --fresh-every "
                          "windows (PROFILE only)")
    sub.add_argument("--fresh-every", type=number(int, low=1, high=100_000), default=1,
                     help="fresh mode: windows between restarts (default 1)")
    sub.add_argument("--concurrency", type=number(int, low=1, high=256),
                     help="simultaneous requests (default: the server's slots)")
    sub.add_argument("--mix", type=_mix, default=list(DEFAULT_MIX),
                     help=f"request kinds in rotation (default {','.join(DEFAULT_MIX)})")
    sub.add_argument("--max-tokens", type=number(int, low=2, high=1_000_000), default=128,
                     help="tokens per decode request (default 128)")
    sub.add_argument("--long-prompt-tokens", type=number(int, low=8, high=10_000_000),
                     help="long-prompt size in tokens (default: half the per-slot context)")
    sub.add_argument("--timeout-s", "--timeout", dest="timeout_s", type=number(float, above=0, high=86_400),
                     default=120, help="seconds one request may take (default 120)")
    add_endpoint_args(sub)
    sub.add_argument("--save-json", type=Path, help="write the SoakResult JSON here (atomically), also when it ends "
                                                    "early")
