"""What a run ran, recorded when it starts: the harness checkout, and per profile the profile as
resolved, its compose ``.env``, the image the local engine has for it and the model file's sha256.

Everything here is best effort: a missing image, git or model file becomes a note in the record,
never an error, because provenance must not stop a run. Nothing here reads the working directory
or the environment: the checkout and the image inspector are passed in.
"""

from __future__ import annotations

import platform
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import NoSuchImage

from harness import __version__
from harness.overnight.manifest import ProfileProvenance, RunProvenance
from harness.serving.envfile import render_env
from harness.serving.images import sha256_of
from harness.serving.profiles import Profile
from harness.serving.rigs import client_for, context_host, is_remote

ImageInspector = Callable[[str], tuple[str, list[str]]]  # image -> (id, repo digests); raises when absent
GIT_TIMEOUT_S = 10
NOT_BUILT = "not built yet"


def _git(repo_root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo_root, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or [f"git {args[0]} exited {done.returncode}"])[-1])
    return done.stdout


def run_provenance(repo_root: Path) -> RunProvenance:
    """The harness version, git commit and dirty flag of repo_root, Python version and hostname."""
    record = RunProvenance(harness_version=__version__, python_version=platform.python_version(),
                           hostname=socket.gethostname())
    try:
        record.git_commit = _git(repo_root, "rev-parse", "HEAD").strip()
        record.git_dirty = bool(_git(repo_root, "status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.TimeoutExpired, RuntimeError) as exc:
        record.git_note = f"git in {repo_root}: {exc}"
    return record


def engine_inspector(engine: DockerClient) -> ImageInspector:
    """Inspect images on one rig's engine."""
    def inspect(image: str) -> tuple[str, list[str]]:
        info = engine.image.inspect(image)
        return str(info.id), [str(digest) for digest in (info.repo_digests or [])]
    return inspect




def image_identity(image: str, inspect_image: ImageInspector | None = None) -> tuple[str | None, list[str], str]:
    """(id, repo digests, note) of the image the local engine has under that name; a note instead when none."""
    try:
        image_id, digests = (inspect_image or engine_inspector(DockerClient()))(image)
    except NoSuchImage:
        return None, [], NOT_BUILT
    except Exception as exc:  # best effort: an engine that cannot answer is recorded, not raised
        detail = [line.strip() for line in (getattr(exc, "stderr", None) or str(exc)).splitlines() if line.strip()]
        return None, [], f"cannot inspect the image: {detail[-1] if detail else type(exc).__name__}"
    return image_id, digests, ""


def model_checksum(model_path: Path) -> tuple[str | None, str, float | None, str]:
    """(sha256, source, seconds spent hashing, note): from ``<model>.sha256`` beside the file, else computed."""
    recorded = model_path.with_name(model_path.name + ".sha256")
    try:
        if recorded.is_file():
            words = recorded.read_text(encoding="utf-8").split()
            if words:
                return words[0], f"{recorded.name} file", None, ""
        if not model_path.is_file():
            return None, "", None, f"model file not found: {model_path}"
        started = time.monotonic()
        digest = sha256_of(model_path)  # 1 MiB streamed reads: models can be many GB
        return digest, "computed", round(time.monotonic() - started, 2), ""
    except (OSError, UnicodeDecodeError) as exc:
        return None, "", None, f"cannot read {model_path}: {exc}"


def profile_provenance(profile: Profile, inspect_image: ImageInspector | None = None) -> ProfileProvenance:
    """One profile as this run uses it. API profiles have no compose .env, image or model file."""
    is_api = bool(getattr(profile, "is_api", False))
    record = ProfileProvenance(resolved=profile.model_dump(mode="json", by_alias=True), is_api=is_api)
    if is_api:
        return record
    record.compose_env = render_env(profile)
    record.image = profile.image
    if profile.image:
        inspector = inspect_image or engine_inspector(client_for(profile))  # the image on the profile's rig
        record.image_id, record.image_digests, record.image_note = image_identity(profile.image, inspector)
    record.model_path = str(profile.model_path)
    if profile.docker_context and is_remote(context_host(profile.docker_context)):
        record.model_note = f"on rig {profile.rig}: not hashed from the controller"
        return record
    if profile.model_path.is_file():
        record.model_bytes = profile.model_path.stat().st_size
    (record.model_sha256, record.model_sha256_source, record.model_sha256_seconds,
     record.model_note) = model_checksum(profile.model_path)
    return record


def profile_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``KEY: old → new`` for every key whose resolved value differs (added and removed keys too)."""
    def shown(values: dict[str, Any], key: str) -> str:
        return repr(values[key]) if key in values else "(unset)"

    return [f"{key}: {shown(before, key)} → {shown(after, key)}" for key in sorted(set(before) | set(after))
            if key not in before or key not in after or before[key] != after[key]]
