"""CLI verb `sweep PROFILE|URL`: latency and throughput as the load rises, up to saturation.

A closed-loop concurrency sweep (1, 2, 4 … 2 × slots), then an open-loop Poisson rate sweep
sized from it; each stops where the server saturates. See harness.endpoint.sweep for what is
measured and how. Given a PROFILE, its server is brought up when it is not running and left
running.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import add_endpoint_args, client_for, number, number_list
from harness.cli.throughput import gpu_sampler, server_for
from harness.endpoint.sweep import SweepSettings, format_sweep, parse_slo, run_sweep, write_sweep
from harness.errors import HarnessError
from harness.files import check_output_location


def _log(message: str) -> None:
    print(f"[sweep] {message}", file=sys.stderr, flush=True)


def _slo(text: str) -> dict[str, float]:
    try:
        return parse_slo(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.save_json:
        check_output_location(args.save_json)  # before the measurement: a bad path costs no work
    if args.sweeps == "rate" and not args.rates:
        raise HarnessError("--sweeps rate needs --rates (the default rates come from the concurrency sweep)")
    target, profile, _, _ = server_for(args, _log)
    settings = SweepSettings(
        max_tokens=args.max_tokens, concurrency=args.concurrency, rates=args.rates, sweeps=args.sweeps,
        requests_per_point=args.requests_per_point, point_seconds=args.point_seconds,
        max_in_flight=args.max_in_flight, seed=args.seed, slots=args.slots, timeout_s=args.timeout_s,
        ignore_eos=args.ignore_eos, slo=args.slo or {}, overhead_check=not args.no_overhead_check)
    notes = []
    if profile is not None and profile.is_api:
        notes.append("API endpoint: every latency includes the network from this machine")

    def connect(max_connections: int):
        return client_for(target, timeout_s=args.timeout_s, max_connections=max_connections)

    nvidia_smi, absent = gpu_sampler(profile)
    result = run_sweep(connect, settings, model=target.model_id, profile_id=target.profile_id,
                       profile_slots=profile.parallel if profile else None, log=_log, notes=notes,
                       nvidia_smi=nvidia_smi, gpu_absent_note=absent)
    print(format_sweep(result))
    if args.save_json:
        print(f"saved {write_sweep(result, args.save_json)}")
    return 0


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add the `sweep` verb."""
    text = ("load sweep of a profile's server or an endpoint URL: concurrency and request-rate ladders up to "
            "saturation, with TTFT/ITL/TPOT/E2E percentiles, throughput and goodput")
    sub = verbs.add_parser("sweep", parents=[common], help=text, description=text)
    sub.set_defaults(func=cmd_sweep)
    sub.add_argument("target", help="profile id (started if not running) or base URL (http://host:port)")
    sub.add_argument("--slots", type=number(int, low=1, high=4096),
                     help="server slots when /props cannot tell (default: profile PARALLEL)")
    sub.add_argument("--max-tokens", type=number(int, low=2, high=1_000_000), default=128,
                     help="tokens per request (default 128)")
    sub.add_argument("--ignore-eos", choices=["auto", "on", "off"], default="auto",
                     help="send ignore_eos so every request decodes max_tokens (auto: when the server is llama.cpp)")
    sub.add_argument("--concurrency", type=number_list(int, low=1, high=4096, what="stream counts"),
                     help="concurrency levels, comma-separated (default 1, 2, 4 … 2 × slots)")
    sub.add_argument("--rates", type=number_list(float, above=0, high=100_000, what="rates in req/s"),
                     help="offered rates in req/s, comma-separated (default 0.25 … 1.25 × the best req/s "
                          "of the concurrency sweep)")
    sub.add_argument("--sweeps", choices=["both", "concurrency", "rate"], default="both",
                     help="which sweeps to run (default both; rate alone needs --rates)")
    sub.add_argument("--requests-per-point", type=number(int, low=1, high=100_000),
                     help="requests per load level (default max(8, 3k); rate: max(8, 3 × top k))")
    sub.add_argument("--point-seconds", type=number(float, above=0, high=86400),
                     help="time budget per load level (with --requests-per-point: whichever ends first)")
    sub.add_argument("--max-in-flight", type=number(int, low=1, high=1024),
                     help="rate sweep: most requests in flight at once (default: no cap); queued requests "
                          "are still timed from their scheduled instant")
    sub.add_argument("--slo", type=_slo, metavar="KEY=MS,…",
                     help="service-level objectives for goodput: ttft_ms, itl_ms (a request's longest gap), "
                          "tpot_ms, e2e_ms, e.g. ttft_ms=500,itl_ms=50")
    sub.add_argument("--seed", type=number(int, low=0, high=2**32 - 1), default=1,
                     help="seed of the Poisson arrivals (default 1: the same schedule for every server)")
    sub.add_argument("--timeout-s", "--timeout", dest="timeout_s", type=number(float, above=0, high=86400),
                     default=120, help="seconds one request may take in total (default 120)")
    sub.add_argument("--no-overhead-check", action="store_true",
                     help="skip timing the client against the instant in-process server")
    add_endpoint_args(sub)
    sub.add_argument("--save-json", type=Path, help="write the SweepResult JSON here (atomically)")
