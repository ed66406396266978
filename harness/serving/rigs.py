"""Rigs: the Docker engines profiles run on, named by standard Docker contexts.

A profile with ``DOCKER_CONTEXT=rig2`` has every compose and container call sent to that
context's engine (``docker context create rig2 --docker host=ssh://me@rig2``); without one it
uses this machine's engine, the rig called ``local``. Everything that asks a rig something
goes through ``docker --context NAME`` with a deadline: a rig that is switched off or
unreachable must cost seconds and a sentence, never a hang.

A server on a remote rig listens on the rig's loopback by default; the controller reaches it
through an SSH port forward over the context's host (``Tunnel``), opened and closed by the
harness. Figures measured through it include the network, and are labelled so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from python_on_whales import DockerClient, docker

from harness.errors import ServingError
from harness.serving.fingerprint import RigFingerprint
from harness.serving.profiles import Profile

LOCAL_RIG = "local"
PROBE_TIMEOUT_S = 20.0
GPU_PROBE_TIMEOUT_S = 60.0
TUNNEL_TIMEOUT_S = 20.0


def client_for(profile: Profile) -> DockerClient:
    """The docker client of the profile's rig (this machine's engine when it names none)."""
    return DockerClient(context=profile.docker_context) if profile.docker_context else docker


def _docker(context: str | None, *args: str, timeout: float = PROBE_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    argv = ["docker", *(["--context", context] if context else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def context_host(context: str | None) -> str:
    """The engine address a context points at (``unix:///var/run/docker.sock`` for the local rig),
    user:password@ stripped; "" when the context is unknown."""
    if not context:
        return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        done = _docker(None, "context", "inspect", context, "--format", "{{json .Endpoints.docker.Host}}")
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if done.returncode != 0:
        return ""
    try:
        host = str(json.loads(done.stdout))
    except ValueError:
        return ""
    return re.sub(r"//[^/@]*:[^/@]*@", "//", host)  # a password in the URL is never recorded


def is_remote(host: str) -> bool:
    """True when the engine at host is another machine (so its loopback is not ours)."""
    parts = urlsplit(host)
    if parts.scheme in ("unix", "npipe", ""):
        return False
    return parts.hostname not in ("localhost", "127.0.0.1", "::1")


def rig_problem(context: str | None) -> str | None:
    """None when the rig's engine answers; otherwise why not, in one line."""
    where = f"rig {context or LOCAL_RIG}"
    try:
        done = _docker(context, "version", "--format", "{{.Server.Version}}")
    except subprocess.TimeoutExpired:
        return f"{where}: the engine did not answer within {PROBE_TIMEOUT_S:.0f}s"
    except OSError as exc:
        return f"{where}: cannot run the docker CLI ({exc.strerror or exc})"
    if done.returncode != 0 or not done.stdout.strip():
        if context and "context not found" in done.stderr:
            return (f"{where}: no Docker context named {context} (create it: docker context create {context} "
                    "--docker host=ssh://USER@HOST)")
        return f"{where}: {_last_line(done.stderr) or f'docker version exited {done.returncode}'}"
    return None


def fingerprint(context: str | None, *, gpu_image: str | None = None) -> RigFingerprint:
    """The rig as its engine describes itself: engine version, OS, CPUs, memory, and GPUs with the driver
    when the engine has the NVIDIA runtime (read by nvidia-smi in a throwaway container of gpu_image)."""
    record = RigFingerprint(rig=context or LOCAL_RIG, endpoint=context_host(context))
    problem = rig_problem(context)
    if problem:
        record.reachable, record.note = False, problem
        return record
    try:
        done = _docker(context, "info", "--format", "{{json .}}")
        info = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        record.note = f"docker info unreadable: {exc}"
        return record
    record.engine_version = info.get("ServerVersion")
    record.os, record.kernel = info.get("OperatingSystem"), info.get("KernelVersion")
    record.cpus, record.memory_bytes = info.get("NCPU"), info.get("MemTotal")
    if "nvidia" not in (info.get("Runtimes") or {}):
        record.gpu_note = "no NVIDIA runtime on this engine"
        return record
    if not gpu_image:
        record.gpu_note = "NVIDIA runtime present; GPUs not read (no image to run nvidia-smi in)"
        return record
    record.gpus, record.gpu_driver, record.gpu_note = _gpus(context, gpu_image)
    return record


def _gpus(context: str | None, image: str) -> tuple[list[str], str | None, str]:
    query = "--query-gpu=name,memory.total,driver_version"
    try:
        done = _docker(context, "run", "--rm", "--gpus", "all", "--entrypoint", "nvidia-smi", image, query,
                       "--format=csv,noheader", timeout=GPU_PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], None, f"nvidia-smi did not answer: {exc}"
    if done.returncode != 0:
        return [], None, f"nvidia-smi failed: {_last_line(done.stderr)}"
    return parse_gpu_query(done.stdout)


def parse_gpu_query(text: str) -> tuple[list[str], str | None, str]:
    """(["NVIDIA GeForce RTX 3090, 24576 MiB", ...], driver, note) from nvidia-smi's csv,noheader lines."""
    gpus, drivers = [], set()
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 3 and fields[0]:
            gpus.append(f"{fields[0]}, {fields[1]}")
            drivers.add(fields[2])
    if not gpus:
        return [], None, f"nvidia-smi printed no GPU line ({_last_line(text) or 'nothing'})"
    return gpus, ", ".join(sorted(drivers)), ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Tunnel:
    """An SSH port forward from a free controller port to the rig's loopback port, for one profile."""

    context: str
    remote_port: int
    local_port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def needs_tunnel(profile: Profile) -> bool:
    """A server on a remote rig, bound to that rig's loopback: only an SSH forward reaches it."""
    if profile.is_api or not profile.docker_context:
        return False
    return profile.bind_address.startswith("127.") and is_remote(context_host(profile.docker_context))


def ssh_forward_argv(host: str, local_port: int, remote_port: int) -> list[str]:
    """The ssh command line forwarding 127.0.0.1:local_port to the rig's 127.0.0.1:remote_port."""
    parts = urlsplit(host)
    if parts.scheme != "ssh" or not parts.hostname:
        raise ServingError(f"cannot tunnel to {host or 'an unknown host'}: only ssh:// contexts can be tunnelled; "
                           "bind the server to a LAN address (BIND_ADDRESS) to reach it directly")
    target = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
    argv = ["ssh", "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
            "-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"]
    if parts.port:
        argv += ["-p", str(parts.port)]
    return [*argv, target]


def open_tunnel(profile: Profile) -> Tunnel:
    """Open the forward and wait until its local end accepts connections (or ssh gives up)."""
    if shutil.which("ssh") is None:
        raise ServingError(f"[{profile.id}] needs an SSH tunnel to rig {profile.rig}, but ssh is not installed")
    assert profile.docker_context is not None
    local_port = _free_port()
    argv = ssh_forward_argv(context_host(profile.docker_context), local_port, profile.server_port)
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + TUNNEL_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = _last_line(process.stderr.read().decode(errors="replace")) if process.stderr else ""
            raise ServingError(f"[{profile.id}] SSH tunnel to rig {profile.rig} failed: {said or 'ssh exited'}")
        try:
            with socket.create_connection(("127.0.0.1", local_port), timeout=1):
                return Tunnel(profile.docker_context, profile.server_port, local_port, process)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise ServingError(f"[{profile.id}] SSH tunnel to rig {profile.rig} did not open within {TUNNEL_TIMEOUT_S:.0f}s")


def nvidia_smi_on_rig(profile: Profile, container_id: str) -> tuple[list[str] | None, str]:
    """(command prefix, note): nvidia-smi run inside the profile's server container on its rig, so the
    figures are the rig's GPUs and not the controller's; None with the reason when it is not there."""
    assert profile.docker_context is not None
    prefix = ["docker", "--context", profile.docker_context, "exec", container_id, "nvidia-smi"]
    try:
        done = subprocess.run([*prefix, "-L"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0:
        return None, f"no nvidia-smi in the server container on rig {profile.rig}"
    return prefix, ""
