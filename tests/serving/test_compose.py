"""Integration: the real Docker engine and the real embedded llama-server."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from python_on_whales import docker

from harness.endpoint import verify
from harness.endpoint.client import EndpointClient
from harness.errors import ServerDied, ServingError
from harness.serving import compose as serving
from harness.serving.envfile import project_name
from harness.serving.profiles import get_profile
from tests.conftest import COMPOSE_DIR, embedded_conf_text, free_port

pytestmark = [pytest.mark.docker, pytest.mark.server]


def _deployment(tmp_path, profile_id: str, *, models_dir, image, port: int | None = None, extra: str = ""):
    conf = tmp_path / "models.conf"
    conf.write_text(embedded_conf_text(profile_id, port or free_port(), models_dir=models_dir, image=image,
                                       extra=extra))
    profile = get_profile(conf, profile_id)
    return serving.Deployment(profile, COMPOSE_DIR, tmp_path / f".env.{profile_id}")


def _project_leftovers(name: str) -> tuple[list, list]:
    containers = docker.container.list(all=True, filters=[("label", f"com.docker.compose.project={name}")])
    networks = docker.network.list(filters=[("label", f"com.docker.compose.project={name}")])
    return containers, networks


def test_embedded_server_answers_a_real_completion(embedded_server):
    reply = httpx.post(f"{embedded_server.base_url}/v1/chat/completions", timeout=60, json={
        "messages": [{"role": "system", "content": verify.FACT_SYSTEM},
                     {"role": "user", "content": verify.FACT_QUESTION}],
        "temperature": 0, "max_tokens": 16})
    assert reply.status_code == 200
    body = reply.json()
    assert "paris" in body["choices"][0]["message"]["content"].lower()
    assert body["usage"]["completion_tokens"] > 0


def test_verify_passes_every_server_check(embedded_server):
    with EndpointClient(embedded_server.base_url + "/v1/") as client:  # the OpenAI form of the URL works too
        checks = verify.run_checks(client, embedded_server.profile)
    server = [c for c in checks if c.kind == "server"]
    assert len(server) >= 6 and verify.failure_count(checks) == 0, verify.format_checks(checks)
    tool = next(c for c in checks if "tool" in c.name)
    # SmolLM2's template has no tools: a capability result, not a server failure.
    assert tool.kind == "capability" and not tool.passed and "no tool support" in tool.detail
    assert verify.failure_count(checks, strict=True) == 1


def test_up_then_down_leaves_nothing_behind(embedded_assets, tmp_path):
    image, models_dir = embedded_assets
    deployment = _deployment(tmp_path, f"test-lifecycle-{free_port()}", models_dir=models_dir, image=image)
    name = project_name(deployment.profile)
    try:
        seconds = serving.up(deployment)
        assert seconds >= 0
        assert httpx.get(f"{deployment.base_url}/health", timeout=5).status_code == 200
        containers, networks = _project_leftovers(name)
        assert len(containers) == 1 and containers[0].state.running and networks
        # the models dir is mounted read-only and the port is bound to loopback only
        mounts = containers[0].mounts
        assert any(m.destination == "/models" and not m.rw for m in mounts)
        assert serving.up(deployment) >= 0  # idempotent: already running, just waits
    finally:
        serving.down(deployment)
    containers, networks = _project_leftovers(name)
    assert containers == [] and networks == []
    serving.down(deployment)  # down twice is fine


def test_corrupt_model_fails_fast_with_log_tail(embedded_assets, tmp_path):
    image, _ = embedded_assets
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    from harness.serving.images import SMOLLM2_MODEL_FILE
    (models_dir / SMOLLM2_MODEL_FILE).write_bytes(b"this is not a gguf file" * 100)
    deployment = _deployment(tmp_path, f"test-corrupt-{free_port()}", models_dir=models_dir, image=image)
    started = time.monotonic()
    try:
        with pytest.raises(ServerDied) as caught:
            serving.up(deployment)
    finally:
        serving.down(deployment)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "exited with code" in message and "last" in message and "log lines" in message
    assert "gguf" in message.lower() or "model" in message.lower()  # the server's own words are in the tail
    assert elapsed < deployment.profile.health_timeout_s / 2, f"took {elapsed:.1f}s: did not fail fast"


def test_port_clash_is_reported_before_up(embedded_assets, tmp_path):
    image, models_dir = embedded_assets
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        deployment = _deployment(tmp_path, f"test-clash-{port}", models_dir=models_dir, image=image, port=port)
        with pytest.raises(ServingError, match=rf"port {port} on 127.0.0.1 is already in use by another process"):
            serving.up(deployment)
    containers, _ = _project_leftovers(project_name(deployment.profile))
    assert containers == []


def test_bad_server_flag_fails_fast(embedded_assets, tmp_path):
    image, models_dir = embedded_assets
    deployment = _deployment(tmp_path, f"test-badflag-{free_port()}", models_dir=models_dir, image=image)
    deployment = serving.Deployment(deployment.profile.model_copy(update={"extra_args": "--no-such-flag"}),
                                    deployment.compose_dir, deployment.env_path)
    try:
        with pytest.raises(ServerDied, match="no-such-flag"):
            serving.up(deployment)
    finally:
        serving.down(deployment)


def test_missing_image_is_reported(embedded_assets, tmp_path):
    _, models_dir = embedded_assets
    deployment = _deployment(tmp_path, f"test-noimage-{free_port()}", models_dir=models_dir,
                             image="benchwright/does-not-exist:0")
    with pytest.raises(ServingError, match="image benchwright/does-not-exist:0 is not built; run `make images`"):
        serving.up(deployment)
