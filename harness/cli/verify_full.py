"""CLI verb `verify-full PROFILE|URL`: the smoke checks plus the functional checks a benchmark
relies on (history, max_tokens, stop, stream = non-stream, JSON/grammar, tool arguments,
/tokenize, usage, two requests at once). Exit status = failed server checks, as with `verify`."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_check_args, client_for
from harness.cli.throughput import server_for
from harness.endpoint.verify import failure_count
from harness.endpoint.verify_full import format_result, run_full_checks, write_result
from harness.files import check_output_location


def _log(message: str) -> None:
    print(f"[verify-full] {message}", file=sys.stderr, flush=True)


def cmd_verify_full(args: argparse.Namespace) -> int:
    if args.save_json:
        check_output_location(args.save_json)  # before any request: a bad path costs no work
    target, profile, _load_s, _note = server_for(args, _log)
    label = f"[{profile.id}] at {target.display_url}" if profile else target.display_url
    with client_for(target, timeout_s=args.timeout_s) as client:
        result = run_full_checks(client, profile, log=_log)
    print(f"Verify (full) {label}: {result.model or '(no model)'}, {result.seconds:.1f} s")
    print(format_result(result))
    if args.save_json:
        print(f"saved {write_result(result, args.save_json)}")
    return failure_count(list(result.checks), strict=args.strict)


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add the `verify-full` verb."""
    text = ("functional checks of a profile's server or an endpoint URL beyond `verify`: history, max_tokens, "
            "stop, stream = non-stream, JSON mode/schema/grammar, tool arguments, /tokenize, usage, concurrency; "
            "exit = failed server checks")
    sub = verbs.add_parser("verify-full", parents=[common], help=text, description=text)
    sub.set_defaults(func=cmd_verify_full)
    sub.add_argument("target", help="profile id (started if not running) or base URL (http://host:port)")
    add_check_args(sub, "VerifyFullResult, written atomically")
