"""Bringing a profile's server up and down with docker compose (via python-on-whales).

Every compose verb goes through ``compose_client``, which scopes the project name (one per
profile), the env file and the compose files (plus the GPU overlay when the profile asks
for GPUs).
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import Container, DockerClient, DockerException

from harness.errors import ProfileError, ServingError
from harness.serving.engines import health_url
from harness.serving.envfile import project_name, write_env
from harness.serving.health import ContainerState, wait_until_healthy
from harness.serving.profiles import Profile, key_line
from harness.serving.rigs import client_for, context_host, is_remote, needs_tunnel, open_tunnel, rig_problem

GPU_OVERLAY_SUFFIX = ".gpu.yml"
OUR_IMAGE_PREFIX = "benchwright/"  # images `make images` builds; everything else is pulled


@dataclass(frozen=True)
class Deployment:
    """Where a profile's compose project lives on disk."""

    profile: Profile
    compose_dir: Path
    env_path: Path

    @property
    def base_url(self) -> str:
        return self.profile.base_url

    @property
    def compose_files(self) -> list[Path]:
        main = self.compose_dir / self.profile.compose
        files = [main]
        overlay = main.with_name(main.name.rsplit(".", 1)[0] + GPU_OVERLAY_SUFFIX)
        if self.profile.uses_gpus and overlay.is_file():
            files.append(overlay)
        return files


def deployment_for(profile: Profile, compose_dir: Path) -> Deployment:
    """The deployment of a compose profile, its env file kept beside the compose files."""
    if profile.is_api:
        raise ProfileError(f"{profile.source}: [{profile.id}] is an API profile (PROVIDER={profile.provider}): "
                           "it has no compose server to bring up")
    if not (compose_dir / profile.compose).is_file():
        known = ", ".join(sorted(p.name for p in compose_dir.glob("*.yml"))) or "none"
        raise ProfileError(f"{profile.source}:{key_line(profile, 'COMPOSE')}: [{profile.id}] COMPOSE: no compose file "
                           f"{profile.compose} in {compose_dir} (there: {known})")
    return Deployment(profile, compose_dir, compose_dir / f".env.{profile.id}")


def compose_client(deployment: Deployment) -> DockerClient:
    """A docker client scoped to this profile's compose project."""
    for path in deployment.compose_files:
        if not path.is_file():
            raise ServingError(f"compose file not found: {path} (COMPOSE in [{deployment.profile.id}])")
    # list(...) re-types list[Path] as the list[str | Path] python-on-whales declares (list is invariant)
    return DockerClient(compose_files=list(deployment.compose_files), compose_env_files=[deployment.env_path],
                        compose_project_name=project_name(deployment.profile),
                        compose_project_directory=deployment.compose_dir,
                        context=deployment.profile.docker_context)


def _log(message: str) -> None:
    print(f"[serve] {message}", file=sys.stderr, flush=True)


def server_container(deployment: Deployment) -> Container | None:
    """The profile's server container, running or not, if compose created one."""
    if not deployment.env_path.is_file():
        return None
    containers = compose_client(deployment).compose.ps(all=True)
    return containers[0] if containers else None


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (checked by binding it).

    SO_REUSEADDR as the engine's port proxy uses it: closed connections still in TIME_WAIT
    on that port (a killed run's, say) must not read as a listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _port_holder(engine: DockerClient, port: int) -> str:
    try:
        users = engine.container.list(filters=[("publish", str(port))])
    except DockerException:
        users = []
    if users:
        return f"container {users[0].name}"
    return "another process"


def _check_rig(profile: Profile) -> None:
    """A missing context or a dead rig in one line, before any compose call prints docker's own."""
    problem = rig_problem(profile.docker_context) if profile.docker_context else None
    if problem:
        raise ServingError(f"[{profile.id}] {problem} (DOCKER_CONTEXT in {profile.source})")


def up(deployment: Deployment) -> float:
    """Start the profile's server detached and wait until healthy; returns seconds to healthy."""
    profile = deployment.profile
    _check_rig(profile)
    existing = server_container(deployment)
    if existing is not None and existing.state.running:
        _log(f"[{profile.id}] already running as {existing.name}; waiting for health")
        return wait(deployment)
    host = "0.0.0.0" if profile.bind_address in ("0.0.0.0", "") else profile.bind_address
    port, image = profile.server_port, profile.server_image
    engine = client_for(profile)
    on_rig = f" on rig {profile.rig}" if profile.docker_context else ""
    # the port check binds here: it says something only when the rig's ports are this machine's
    if not is_remote(context_host(profile.docker_context)) and not port_is_free(host, port):
        raise ServingError(f"port {port} on {host} is already in use by {_port_holder(engine, port)}; "
                           f"stop it or change PORT in [{profile.id}] ({profile.source})")
    if profile.engine == "llama.cpp" and image.startswith(OUR_IMAGE_PREFIX) and not engine.image.exists(image):
        # ours is built, never pulled; other engines' images (vllm/vllm-openai, ...) compose pulls on up
        if not profile.docker_context:
            raise ServingError(f"image {image} is not built; run `make images` (IMAGE in [{profile.id}])")
        raise ServingError(f"image {image} is not on rig {profile.rig}; copy it there: docker save {image} | "
                           f"docker --context {profile.docker_context} load (IMAGE in [{profile.id}])")
    write_env(profile, deployment.env_path)
    _log(f"[{profile.id}] starting {image}{on_rig} on {deployment.base_url}")
    try:
        compose_client(deployment).compose.up(detach=True, quiet=True)
    except DockerException as exc:
        raise ServingError(f"docker compose up failed for [{profile.id}]: {_stderr_tail(exc)}") from exc
    return wait(deployment)


def wait(deployment: Deployment) -> float:
    """Wait for an already started server; fails fast if its container dies."""
    _check_rig(deployment.profile)
    container = server_container(deployment)
    if container is None:
        raise ServingError(f"[{deployment.profile.id}] is not up (no container); run `make up PROFILE=...` first")
    engine = client_for(deployment.profile)

    def state() -> ContainerState:
        info = engine.container.inspect(container.id).state  # fresh at every poll
        return ContainerState(running=bool(info.running), status=str(info.status),
                              exit_code=info.exit_code, oom_killed=bool(info.oom_killed))

    def logs() -> str:
        text = engine.container.logs(container.id, tail=60)
        assert isinstance(text, str)  # not streamed, so python-on-whales returns the text itself
        return text

    profile = deployment.profile
    # a remote rig's loopback server, outside all-bench (which holds its own tunnel): one just for the wait
    tunnel = open_tunnel(profile) if needs_tunnel(profile) and deployment.base_url == profile.base_url_direct \
        else None
    try:
        base_url = tunnel.url if tunnel else deployment.base_url
        seconds = wait_until_healthy(health_url(base_url, profile.engine), container_state=state, container_logs=logs,
                                     timeout_s=profile.health_timeout_s, on_progress=_log)
    finally:
        if tunnel is not None:
            tunnel.close()
    _log(f"[{deployment.profile.id}] healthy after {seconds:.1f}s")
    return seconds


def down(deployment: Deployment) -> None:
    """Stop and remove the profile's containers and network (idempotent)."""
    _check_rig(deployment.profile)
    if not deployment.env_path.is_file():  # compose needs the env file to parse the project
        write_env(deployment.profile, deployment.env_path)
    try:
        compose_client(deployment).compose.down(remove_orphans=True, volumes=True, quiet=True)
    except DockerException as exc:
        raise ServingError(f"docker compose down failed for [{deployment.profile.id}]: {_stderr_tail(exc)}") from exc
    _log(f"[{deployment.profile.id}] down")


def _stderr_tail(exc: DockerException) -> str:
    text = (exc.stderr or str(exc)).strip().splitlines()
    return " / ".join(text[-3:]) if text else f"exit {exc.return_code}"
