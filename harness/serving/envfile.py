"""The compose `.env` written from a profile.

Compose reads values raw, expands ``$`` in unquoted and double-quoted values, and cuts an
unquoted value at `` #``. Values are therefore written single-quoted (literal) unless they
contain a single quote, in which case they are double-quoted with ``\\``, ``"`` and ``$``
escaped. EXTRA_ARGS is re-joined with shell quoting so that compose's own split of the
``command:`` string yields exactly the words ``shlex.split`` gave us.

Each engine's compose file reads its own set (``env_values``); llama.cpp's is unchanged since
vLLM and SGLang arrived, so an existing profile's .env stays byte for byte the same.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path

from harness.files import write_text_atomic
from harness.serving.engines import served_model_name, tensor_parallel_size
from harness.serving.profiles import Profile

PROJECT_PREFIX = "bw-"


def project_name(profile: Profile) -> str:
    """Compose project name for a profile: one per profile so two profiles never clash."""
    return f"{PROJECT_PREFIX}{profile.id}".replace(".", "-")


def env_values(profile: Profile) -> dict[str, str]:
    """The non-empty variables the profile's compose files read, in a stable order."""
    if profile.engine == "llama.cpp":
        values = {
            "COMPOSE_PROJECT_NAME": project_name(profile),
            "PROFILE": profile.id,
            "NAME": profile.name,
            "IMAGE": profile.server_image,
            "MODELS_DIR": str(profile.models_dir.resolve()),
            "MODEL": profile.server_model,
            "CTX_SIZE": str(profile.server_ctx_size),
            "N_GPU_LAYERS": str(profile.n_gpu_layers),
            "PARALLEL": str(profile.parallel),
            "PORT": str(profile.server_port),
            "BIND_ADDRESS": profile.bind_address,
            "EXTRA_ARGS": shlex.join(profile.extra_args_list),
            "GPUS": profile.gpus if profile.uses_gpus else "",
        }
    else:
        # vllm.yml / sglang.yml: MODEL and SERVED_MODEL_NAME sit in the command string too, so they are
        # shell-quoted like EXTRA_ARGS (a no-op for ordinary names)
        values = {
            "COMPOSE_PROJECT_NAME": project_name(profile),
            "PROFILE": profile.id,
            "NAME": profile.name,
            "ENGINE": profile.engine,
            "IMAGE": profile.server_image,
            "MODELS_DIR": str(profile.models_dir.resolve()),
            "MODEL": shlex.quote(profile.server_model.rstrip("/")),
            "SERVED_MODEL_NAME": shlex.quote(served_model_name(profile.server_model, profile.model_id)),
            "CTX_SIZE": str(profile.server_ctx_size),
            "PARALLEL": str(profile.parallel),
            "TENSOR_PARALLEL_SIZE": str(tensor_parallel_size(profile.gpus)),
            "PORT": str(profile.server_port),
            "BIND_ADDRESS": profile.bind_address,
            "EXTRA_ARGS": shlex.join(profile.extra_args_list),
            "GPUS": profile.gpus if profile.uses_gpus else "",
        }
    return {key: value for key, value in values.items() if value != ""}


def quote_env_value(value: str) -> str:
    """Quote a value so compose's .env parser reads it back unchanged."""
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("\n", "\\n")
    return f'"{escaped}"'


def render_env(profile: Profile, *, now: datetime | None = None) -> str:
    """Text of the .env for a profile, with a header saying which profile and when."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"# Written by benchwright for profile [{profile.id}] from {profile.source} at {stamp}.",
        "# Regenerated on every `python -m harness env|up`; edit models.conf instead.",
    ]
    lines += [f"{key}={quote_env_value(value)}" for key, value in env_values(profile).items()]
    return "\n".join(lines) + "\n"


def write_env(profile: Profile, path: Path) -> Path:
    """Write the .env atomically (never a half-written file) and return its path."""
    return write_text_atomic(path, render_env(profile))
