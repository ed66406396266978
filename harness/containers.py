"""The one way the sandboxes reach Docker: the Docker SDK for Python, over the engine's socket.

Compose and image builds go through python-on-whales (they are CLI features). Sandboxes need
something else: long-lived containers, many short ``exec`` calls each with its own deadline,
stdin streamed in, stdout and stderr kept apart and capped while they stream. The SDK speaks
the engine API directly, so an ``exec`` costs one HTTP round trip instead of a CLI process,
and the hijacked socket lets us read with a deadline and half-close stdin. Both sandboxes
(EvalPlus and the agent one) use this module and nothing else.

Containers started here are registered and force-removed at exit (``remove_leftovers``, also
called by the CLI's Ctrl-C exit), and labelled with the harness's pid, so a run killed outright
has its sandboxes reaped by the next one (``reap_orphans``).
"""

from __future__ import annotations

import atexit
import os
import secrets
import select
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import SandboxError

_FRAME_HEADER = struct.Struct(">BxxxI")
_READ_CHUNK = 65536
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()
_CLIENT: Any = None
_REMOVER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-remove")
_CLIENT_LOCK = threading.Lock()


class Limits(BaseModel):
    """Resource caps of one sandbox container."""

    model_config = ConfigDict(frozen=True)

    memory: str = "512m"
    cpus: float = Field(default=1.0, gt=0)
    pids: int = Field(default=128, gt=16)
    nofile: int = Field(default=1024, gt=16)


@dataclass
class ExecResult:
    """What a command did: exit code (None when it was killed at its deadline) and its output,
    each stream cut at the caller's cap with the full byte count kept."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    stdout_bytes: int
    stderr_bytes: int
    timed_out: bool
    duration_ms: float


def engine() -> Any:
    """The Docker SDK client (one per process, thread-safe for our use)."""
    global _CLIENT
    with _CLIENT_LOCK:
        if _CLIENT is None:
            try:
                import docker  # imported here: only sandbox users pay for it
                client = docker.from_env(timeout=120)
                client.ping()
            except Exception as exc:  # noqa: BLE001 - any failure means the same to the user
                raise SandboxError(f"the Docker engine does not answer ({str(exc).splitlines()[0][:200]}); "
                                   "start it (`make provision`) or set DOCKER_HOST") from None
            _CLIENT = client
        return _CLIENT


def image_present(tag: str) -> bool:
    import docker.errors
    try:
        engine().api.inspect_image(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _api_error(what: str, exc: Exception) -> SandboxError:
    explanation = getattr(exc, "explanation", None) or str(exc)
    return SandboxError(f"{what}: {str(explanation).splitlines()[0][:300]}")


# Run as the user: kill(-1) spares only the caller; loop until no process of the user but PID 1
# and this shell is left in /proc (zombies count until reaped). Builtins only: no fork needed.
_KILL_ALL = """while :; do
  kill -9 -1 2>/dev/null
  left=0
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/1 ] || [ "$p" = "/proc/$$" ] || { [ -O "$p" ] && left=1 && break; }
  done
  [ "$left" = 0 ] && exit 0
  [ "$SECONDS" -ge 5 ] && exit 1
done"""


class Container:
    """A started sandbox container; use as a context manager so it is always removed."""

    def __init__(self, container_id: str, name: str):
        self.id = container_id
        self.name = name

    @classmethod
    def create(cls, image: str, *, name_prefix: str, user: str, limits: Limits, command: list[str] | None = None,
               tmpfs: dict[str, str] | None = None, env: dict[str, str] | None = None,
               labels: dict[str, str] | None = None, workdir: str | None = None, read_only: bool = True,
               binds: dict[str, dict[str, str]] | None = None, stdin_open: bool = False) -> Container:
        """Create (not start) a locked-down container: no network, no capabilities,
        no-new-privileges, read-only root, capped memory (no swap), CPUs, PIDs and open files."""
        import docker.errors
        from docker.types import Ulimit
        api = engine().api
        name = f"{name_prefix}-{secrets.token_hex(4)}"
        host_config = api.create_host_config(
            network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=read_only,
            tmpfs=tmpfs or {}, mem_limit=limits.memory, memswap_limit=limits.memory,
            nano_cpus=int(limits.cpus * 1e9), pids_limit=limits.pids, binds=binds or {},
            ulimits=[Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile)])
        try:
            owner = {"benchwright.pid": str(os.getpid()), "benchwright.host": socket.gethostname()}
            created = api.create_container(image, command=command, user=user, name=name, environment=env or {},
                                           labels={**(labels or {}), **owner}, working_dir=workdir,
                                           network_disabled=True, stdin_open=stdin_open, detach=not stdin_open,
                                           host_config=host_config)
        except docker.errors.ImageNotFound:
            raise SandboxError(f"sandbox image {image} is not built; run `make sandboxes`") from None
        except docker.errors.DockerException as exc:
            raise _api_error(f"creating a sandbox from {image}", exc) from None
        with _LIVE_LOCK:
            _LIVE.add(created["Id"])
        return cls(created["Id"], name)

    def start(self) -> None:
        import docker.errors
        try:
            engine().api.start(self.id)
        except docker.errors.DockerException as exc:
            raise _api_error(f"starting sandbox {self.name}", exc) from None

    def exec(self, cmd: list[str], *, user: str | None = None, workdir: str | None = None,
             env: dict[str, str] | None = None, stdin: bytes | None = None, timeout_s: float = 30,
             max_output: int = 1 << 20) -> ExecResult:
        """Run cmd in the container with a deadline. At the deadline every process of that user
        is killed (``kill -9 -1`` as the user: it also takes background children with it)."""
        import docker.errors
        api = engine().api
        started = time.monotonic()
        try:
            exec_id = api.exec_create(self.id, cmd, stdin=stdin is not None, stdout=True, stderr=True,
                                      user=user or "", workdir=workdir, environment=env)["Id"]
            hijacked = api.exec_start(exec_id, socket=True)
        except docker.errors.DockerException as exc:
            raise _api_error(f"running a command in sandbox {self.name}", exc) from None
        streams, timed_out = _pump(hijacked, stdin, started + timeout_s, max_output)
        exit_code = None
        if timed_out:
            self.kill_processes(user)
        else:
            exit_code = _exec_exit_code(api, exec_id)
        return ExecResult(exit_code=exit_code, stdout=bytes(streams[1].kept), stderr=bytes(streams[2].kept),
                          stdout_bytes=streams[1].total, stderr_bytes=streams[2].total, timed_out=timed_out,
                          duration_ms=round((time.monotonic() - started) * 1000, 1))

    def kill_processes(self, user: str | None) -> None:
        """Kill every process the user owns in the container (PID 1 is immune inside its namespace),
        and wait (up to 5 s) until they are gone and reaped: a fork bomb still forking, or zombies
        not yet reaped, would otherwise hold the PIDs cap and fail the next command."""
        import docker.errors
        api = engine().api
        try:
            exec_id = api.exec_create(self.id, ["bash", "--noprofile", "--norc", "-c", _KILL_ALL],
                                      user=user or "")["Id"]
            _pump(api.exec_start(exec_id, socket=True), None, time.monotonic() + 10, 4096)
        except docker.errors.DockerException:
            pass  # the container may already be gone; remove() follows

    def run_attached(self, stdin: bytes, wall_s: float, max_output: int = 1 << 30) -> ExecResult:
        """Start the container with stdin streamed to its main process and collect its output
        (``docker run -i`` semantics) under a wall-clock cap; on expiry the container is killed."""
        import docker.errors
        api = engine().api
        started = time.monotonic()
        try:
            hijacked = api.attach_socket(self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            api.start(self.id)
        except docker.errors.DockerException as exc:
            raise _api_error(f"starting sandbox {self.name}", exc) from None
        streams, timed_out = _pump(hijacked, stdin, started + wall_s, max_output)
        exit_code = None
        if timed_out:
            try:
                api.kill(self.id)
            except docker.errors.DockerException:
                pass
        else:
            try:
                exit_code = int(api.wait(self.id, timeout=60)["StatusCode"])
            except Exception as exc:  # noqa: BLE001 - the engine or the socket gave up: report, not crash
                raise _api_error(f"waiting for sandbox {self.name}", exc) from None
        return ExecResult(exit_code=exit_code, stdout=bytes(streams[1].kept), stderr=bytes(streams[2].kept),
                          stdout_bytes=streams[1].total, stderr_bytes=streams[2].total, timed_out=timed_out,
                          duration_ms=round((time.monotonic() - started) * 1000, 1))

    def running(self) -> bool:
        import docker.errors
        try:
            return bool(engine().api.inspect_container(self.id)["State"]["Running"])
        except docker.errors.DockerException:
            return False

    def remove(self, *, background: bool = False) -> None:
        """Force-remove the container; in the background when nobody waits for it (the next
        scenario need not pay for this one's teardown). Pending removals finish before exit."""
        if background:
            _REMOVER.submit(remove_container, self.id)
        else:
            remove_container(self.id)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def remove_container(container_id: str) -> None:
    import docker.errors
    try:
        engine().api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.DockerException:
        return  # still registered: atexit tries again
    with _LIVE_LOCK:
        _LIVE.discard(container_id)


@atexit.register
def remove_leftovers() -> None:
    """Force-remove every container this process started and has not removed yet."""
    for container_id in list(_LIVE):
        remove_container(container_id)


def reap_orphans(label: str) -> int:
    """Remove containers carrying ``label`` (``key=value``) whose harness process on this host is
    gone (a run killed with SIGKILL cannot clean up); returns how many were removed."""
    import docker.errors
    host = socket.gethostname()
    removed = 0
    try:
        found = engine().api.containers(all=True, filters={"label": label})
    except docker.errors.DockerException:
        return 0
    for item in found:
        labels = item.get("Labels") or {}
        pid = labels.get("benchwright.pid", "")
        if labels.get("benchwright.host") != host or not pid.isdigit() or _alive(int(pid)):
            continue
        remove_container(item["Id"])
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Stream:
    __slots__ = ("kept", "total")

    def __init__(self) -> None:
        self.kept = bytearray()
        self.total = 0


def _close(hijacked: Any, raw: socket.socket) -> None:
    """Really end a hijacked connection: shut the socket down (the SDK's wrapper and its HTTP
    response keep it referenced, so close() alone leaves the engine's stream open until garbage
    collection, and a later exec on the container can wait on it forever), then close all three."""
    try:
        raw.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    for thing in (raw, hijacked, getattr(hijacked, "_response", None)):
        try:
            if thing is not None:
                thing.close()
        except (OSError, ValueError):  # already closed underneath (the response flushes a closed file)
            pass


def _pump(hijacked: Any, stdin: bytes | None, deadline: float, max_output: int
          ) -> tuple[dict[int, _Stream], bool]:
    """Send stdin (then half-close), and demultiplex the engine's framed output until EOF or
    the deadline. Returns the streams (1 stdout, 2 stderr) and whether the deadline hit."""
    raw: socket.socket = getattr(hijacked, "_sock", hijacked)  # the plain socket under the SDK's wrapper
    streams = {1: _Stream(), 2: _Stream()}
    pending = memoryview(stdin) if stdin else None
    if stdin is not None and not stdin:
        _half_close(raw)
    buffer = bytearray()
    timed_out = False
    raw.setblocking(False)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            readable, writable, _ = select.select([raw], [raw] if pending is not None else [], [],
                                                  min(remaining, 1.0))
            if writable and pending is not None:
                try:
                    sent = raw.send(pending[:_READ_CHUNK])
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:  # the process exited without reading all of stdin
                    pending = None
                    sent = 0
                if pending is not None:
                    pending = pending[sent:]
                    if not len(pending):
                        pending = None
                        _half_close(raw)
            if readable:
                try:
                    chunk = raw.recv(_READ_CHUNK)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                buffer += chunk
                _drain_frames(buffer, streams, max_output)
    finally:
        _close(hijacked, raw)
    return streams, timed_out


def _half_close(raw: socket.socket) -> None:
    try:
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _drain_frames(buffer: bytearray, streams: dict[int, _Stream], max_output: int) -> None:
    while len(buffer) >= _FRAME_HEADER.size:
        kind, size = _FRAME_HEADER.unpack_from(buffer)
        if len(buffer) < _FRAME_HEADER.size + size:
            return
        payload = bytes(buffer[_FRAME_HEADER.size:_FRAME_HEADER.size + size])
        del buffer[:_FRAME_HEADER.size + size]
        stream = streams.get(kind, streams[2])
        stream.total += len(payload)
        room = max_output - len(stream.kept)
        if room > 0:
            stream.kept += payload[:room]


def _exec_exit_code(api: Any, exec_id: str) -> int | None:
    """The exit code once the engine has it (the stream can close a moment before)."""
    for _ in range(50):
        state = api.exec_inspect(exec_id)
        if not state.get("Running") and state.get("ExitCode") is not None:
            return int(state["ExitCode"])
        time.sleep(0.01)
    return None
