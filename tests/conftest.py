"""Shared fixtures.

* ``write_conf``: a scratch models.conf with a tiny model file beside it (unit tests).
* ``embedded_server``: the real embedded default — llama-server built from source in its
  Docker image, serving SmolLM2-135M — started once per test session on a free port under
  a per-process compose project, and taken down at the end. Builds the image and extracts
  the model when missing (first run on a fresh machine: several minutes).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = REPO_ROOT / "compose"

GOOD_PROFILE = """\
[DEFAULT]
GPUS=none

[bench-tiny]
NAME=Tiny
MODEL=tiny.gguf
IMAGE=img:1
CTX_SIZE=1024
PORT=18500
"""


@pytest.fixture
def write_conf(tmp_path: Path):
    """Write a models.conf (and an empty models/tiny.gguf) and return its path."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.gguf").write_bytes(b"GGUF")

    def _write(text: str) -> Path:
        path = tmp_path / "models.conf"
        path.write_text(text)
        return path

    return _write


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class EmbeddedServer:
    """A running real llama-server: where it answers and the profile it runs."""

    base_url: str
    profile: object  # harness.serving.profiles.Profile
    config_path: Path
    seconds_to_healthy: float


def embedded_conf_text(profile_id: str, port: int, *, models_dir: Path, image: str, parallel: int = 2,
                       ctx_size: int = 2048, extra: str = "") -> str:
    """models.conf text for a profile serving the embedded model."""
    from harness.serving.images import SMOLLM2_MODEL_FILE

    return (f"[{profile_id}]\nNAME=SmolLM2 test\nMODEL={SMOLLM2_MODEL_FILE}\nMODELS_DIR={models_dir}\n"
            f"IMAGE={image}\nCTX_SIZE={ctx_size}\nPARALLEL={parallel}\nPORT={port}\nHEALTH_TIMEOUT_S=120\n"
            f"EXTRA_ARGS=--jinja --threads 2 --no-webui\n{extra}")


@pytest.fixture(scope="session")
def embedded_assets() -> tuple[str, Path]:
    """(image tag, models dir) of the embedded default, built/extracted when missing."""
    from harness.serving import images

    if not images.image_exists(images.LLAMA_SERVER_CPU_IMAGE):
        images.build_llama_server_cpu(REPO_ROOT, REPO_ROOT / ".cache", None)
    models_dir = REPO_ROOT / "models"
    images.extract_embedded_model(models_dir, REPO_ROOT / ".cache")
    return images.LLAMA_SERVER_CPU_IMAGE, models_dir


@pytest.fixture(scope="session")
def embedded_server(embedded_assets, tmp_path_factory) -> EmbeddedServer:
    """The real embedded llama-server, up for the whole session."""
    from harness.serving import compose as serving
    from harness.serving.profiles import get_profile

    image, models_dir = embedded_assets
    profile_id = f"test-embedded-{os.getpid()}"
    config_path = tmp_path_factory.mktemp("embedded") / "models.conf"
    config_path.write_text(embedded_conf_text(profile_id, free_port(), models_dir=models_dir, image=image))
    profile = get_profile(config_path, profile_id)
    deployment = serving.Deployment(profile, COMPOSE_DIR, config_path.parent / f".env.{profile_id}")
    try:
        seconds = serving.up(deployment)
        yield EmbeddedServer(deployment.base_url, profile, config_path, seconds)
    finally:
        serving.down(deployment)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A test that uses ``second_engine`` needs Docker: mark it docker (before -m selects), so unit-test
    runs (-m 'not docker') never start a second engine."""
    for item in items:
        if "second_engine" in getattr(item, "fixturenames", ()) and item.get_closest_marker("docker") is None:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def second_engine():
    """A second Docker engine on this machine, registered as a Docker context (tests/rigs.py), up for
    the whole session, with this machine's base and llama-server images loaded (those built).
    Skipped where one cannot run (not root, no dockerd); torn down at the end."""
    from harness.serving import images
    from tests.rigs import SecondEngine, SecondEngineUnavailable

    engine = SecondEngine()
    preload = [tag for tag in (images.LOCAL_BASE_IMAGE, images.LLAMA_SERVER_CPU_IMAGE) if images.image_exists(tag)]
    try:
        engine.start(preload)
    except SecondEngineUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield engine
    finally:
        engine.stop()
