"""What every verb that talks to a model shares: the target (profile or URL), the key option,
and the client built from them. One flag name per concept across verbs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.endpoint.client import EndpointClient, RetryPolicy
from harness.endpoint.spend import SPEND_LEDGER_ENV
from harness.endpoint.target import Target, looks_like_url, open_client, target_from_profile, target_from_url
from harness.serving.profiles import Profile, get_profile


def add_endpoint_args(sub: argparse.ArgumentParser, *, model_flag: bool = True) -> None:
    """--api-key-env, --provider and --model, the same on every verb that sends requests."""
    sub.add_argument("--api-key-env", metavar="NAME",
                     help="environment variable holding the API key (default: the profile's API_KEY_ENV)")
    sub.add_argument("--provider", choices=["openai-compatible", "anthropic"], default=None,
                     help="wire format of a URL target (default openai-compatible; profiles set PROVIDER)")
    if model_flag:
        sub.add_argument("--model", help="model id to send (default: the profile's MODEL_ID, else /v1/models)")


def resolve_target(args: argparse.Namespace, text: str, config: Path) -> tuple[Target, Profile | None]:
    """A URL (http/https) or a profile id from --config; anything URL-like but broken is one line."""
    model = getattr(args, "model", None)
    if looks_like_url(text):
        return target_from_url(text, provider=args.provider or "openai-compatible", model_id=model,
                               api_key_env=args.api_key_env), None
    profile = get_profile(config, text, require_model=False)
    return target_from_profile(profile, api_key_env=args.api_key_env, model_id=model), profile


def client_for(target: Target, *, timeout_s: float = 120, max_connections: int = 8,
               retry: RetryPolicy | None = None) -> EndpointClient:
    """The endpoint client for a target, its key read from this process's environment.

    An overnight run names a spend ledger per profile in $BENCHWRIGHT_SPEND_LEDGER, so the
    steps of one profile share one budget.
    """
    options: dict = {"timeout_s": timeout_s, "max_connections": max_connections}
    if retry is not None:
        options["retry"] = retry
    ledger = os.environ.get(SPEND_LEDGER_ENV)
    return open_client(target, os.environ, spend_ledger=Path(ledger) if ledger else None, **options)


def number(kind: type = int, *, low: float | None = None, high: float | None = None, above: float | None = None):
    """An argparse type for a finite number in range; the message states the range.

    ``low``/``high`` are inclusive bounds, ``above`` an exclusive lower bound.
    """
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        lower = f"> {above:g}" if above is not None else f">= {low:g}" if low is not None else ""
        upper = f"<= {high:g}" if high is not None else ""
        allowed = " and ".join(part for part in (lower, upper) if part) or "finite"
        if (value != value or value in (float("inf"), float("-inf"))
                or (above is not None and not value > above) or (low is not None and value < low)
                or (high is not None and value > high)):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def number_list(kind: type = int, *, low: float | None = None, high: float | None = None,
                above: float | None = None, what: str = "numbers"):
    """An argparse type for a comma-separated list of ``number``s: the message names the item at fault."""
    one = number(kind, low=low, high=high, above=above)

    def parse(text: str) -> list:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        try:
            return [one(part) for part in parts]
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}: {exc}") from None

    parse.__name__ = f"{kind.__name__} list"
    return parse


def add_check_args(sub: argparse.ArgumentParser, result: str) -> None:
    """The flags of the check-list verbs (verify, verify-full), then the endpoint flags."""
    sub.add_argument("--strict", action="store_true", help="count model-capability misses as failures")
    sub.add_argument("--timeout-s", "--timeout", dest="timeout_s", type=number(float, above=0, high=86400), default=60,
                     help="seconds per request, the whole request (default 60)")
    sub.add_argument("--save-json", type=Path, help=f"write the checks as JSON here ({result})")
    add_endpoint_args(sub)
