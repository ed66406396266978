"""A second Docker engine on this machine, so tests can run two rigs for real.

``SecondEngine`` starts another dockerd beside the machine's own, sharing nothing with it: its own
data root, exec root, pidfile, unix socket, Linux bridge (no iptables rules), cgroup parent,
containerd namespace and address pool. It is registered as a Docker context, so the harness
reaches it exactly as it would reach a remote rig (``docker --context NAME``); ports its
containers publish on 127.0.0.1 answer on this machine.

``kill()`` simulates losing the rig: dockerd, its containerd, the containerd shims and every
process of its containers are SIGKILLed at once, so no orphan keeps running or holds a port, and
``docker --context NAME`` fails at once (connection refused). ``restart()`` brings the engine back
on the same data root: images stay, containers that were running are shown exited.

Everything lives under ``/tmp/bw-rig2/<name>/`` (short: unix socket paths are limited to 107 bytes).
The owning process holds a lock on that folder while the engine lives, so ``start()`` can tell
a live engine of another test session from the leftovers of a killed one, and clean the latter
(processes, mounts, bridge, context, cgroups). ``stop()`` is idempotent; ``start()`` registers
it with atexit.

Needs root, ``dockerd``, ``docker`` and ``ip``; without them ``start()`` raises
``SecondEngineUnavailable`` (the fixture skips with its message).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

BASE_DIR = Path("/tmp/bw-rig2")
BRIDGE_PREFIX = "bwr2"  # Linux interface names are at most 15 characters
START_TIMEOUT_S = 30.0
KILL_TIMEOUT_S = 10.0
DOCKER_CLI_TIMEOUT_S = 30.0
LOAD_TIMEOUT_S = 600.0
_LOG_TAIL_LINES = 25
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
_ENGINE_COMMANDS = ("dockerd", "containerd")  # comm of dockerd, containerd and containerd-shim*


class SecondEngineError(RuntimeError):
    """The second engine could not be started, reached or torn down."""


class SecondEngineUnavailable(SecondEngineError):
    """This machine cannot run a second engine (not root, or dockerd/docker/ip missing)."""


def _run(argv: Sequence[str], *, timeout_s: float = DOCKER_CLI_TIMEOUT_S,
         check: bool = False) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise SecondEngineError(f"{' '.join(argv)}: no answer within {timeout_s:.0f}s") from exc
    if check and done.returncode != 0:
        raise SecondEngineError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return done


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def _with_descendants(roots: Iterable[int]) -> set[int]:
    parents = _parents()
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def _bridge_addresses(name: str) -> list[str] | None:
    """The IPv4 addresses (CIDR) of a network interface; None when there is no such interface."""
    done = _run(["ip", "-j", "addr", "show", "dev", name])
    if done.returncode != 0:
        return None
    links = json.loads(done.stdout or "[]")
    return [f"{a['local']}/{a['prefixlen']}" for link in links for a in link.get("addr_info", [])
            if a.get("family") == "inet"]


def _recreate_bridge(name: str, addresses: list[str]) -> None:
    """Put back a bridge another dockerd deleted, with its addresses, up (the first engine finds it by name)."""
    _run(["ip", "link", "add", name, "type", "bridge"], check=True)
    for address in addresses:
        _run(["ip", "addr", "add", address, "dev", name], check=True)
    _run(["ip", "link", "set", name, "up"], check=True)


def _sigkill(pids: Iterable[int]) -> None:
    """SIGKILL each, then give the kernel a moment to reap them; gone already is fine."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.05)


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, deepest first."""
    prefix = str(path).rstrip("/")
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


class SecondEngine:
    """A second dockerd on this machine, registered as the Docker context ``name``."""

    def __init__(self, name: str | None = None, *, base_dir: Path = BASE_DIR,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.name = name or f"bw-rig2-{os.getpid()}"
        if not _NAME.fullmatch(self.name):
            raise SecondEngineError(f"second engine name {self.name!r}: use 1-40 of a-z 0-9 . _ - (it names a "
                                    "context, a folder and a cgroup)")
        self.dir = base_dir / self.name
        self.base_dir = base_dir
        self.start_timeout_s = start_timeout_s
        self.bridge = BRIDGE_PREFIX + hashlib.sha256(self.name.encode()).hexdigest()[:8]
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._subnet_index: int | None = None
        self._atexit_registered = False
        self.seconds_to_start: float | None = None
        self.seconds_to_load: float | None = None

    # --- where things are -------------------------------------------------------------------

    @property
    def context(self) -> str:
        """The Docker context name (``docker --context NAME ...``; a profile's DOCKER_CONTEXT)."""
        return self.name

    @property
    def socket_path(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def host(self) -> str:
        """The engine address, as the context records it (``unix:///tmp/bw-rig2/NAME/docker.sock``)."""
        return f"unix://{self.socket_path}"

    @property
    def data_root(self) -> Path:
        return self.dir / "data"

    @property
    def exec_root(self) -> Path:
        return self.dir / "exec"

    @property
    def log_path(self) -> Path:
        return self.dir / "dockerd.log"

    @property
    def pid(self) -> int | None:
        """dockerd's pid while it runs, else None."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        return None

    @property
    def cgroup_parent(self) -> str:
        """Where its containers' cgroups go: apart from the first engine's (/docker), so they can be found."""
        return _cgroup_parent(self.name)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, images: Sequence[str] = ()) -> None:
        """Clean leftovers of killed runs, start the engine, register the context, load images
        from this machine's engine. Cleans up after itself when anything fails."""
        _check_prerequisites()
        if self._lock_fd is not None:
            raise SecondEngineError(f"second engine {self.name} is already started")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        clean_leftovers(self.base_dir)
        if self.dir.exists():  # left alone by clean_leftovers: a live process holds it
            raise SecondEngineError(f"second engine {self.name}: {self.dir} is in use by another process")
        self.dir.mkdir()
        self._lock_fd = os.open(self.dir / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            self._subnet_index = _free_subnet_index()
            state = {"name": self.name, "bridge": self.bridge, "context": self.context,
                     "cgroup_parent": self.cgroup_parent}
            (self.dir / "state.json").write_text(json.dumps(state))
            self._create_bridge()
            self.seconds_to_start = self._launch()
            _run(["docker", "context", "rm", "-f", self.context])
            _run(["docker", "context", "create", self.context, "--description", "benchwright test rig (tests/rigs.py)",
                  "--docker", f"host={self.host}"], check=True)
            started = time.monotonic()
            self.load_images(images)
            self.seconds_to_load = time.monotonic() - started
        except BaseException:
            self.stop()
            raise

    def _create_bridge(self) -> None:
        assert self._subnet_index is not None
        _run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        _run(["ip", "addr", "add", f"10.213.{self._subnet_index}.1/24", "dev", self.bridge], check=True)
        _run(["ip", "link", "set", self.bridge, "up"], check=True)

    def _dockerd_argv(self) -> list[str]:
        assert self._subnet_index is not None
        return ["dockerd", "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.dir / "dockerd.pid"), "-H", self.host, "--bridge", self.bridge,
                "--iptables=false", "--ip-forward=false", "--cgroup-parent", self.cgroup_parent,
                "--exec-opt", "native.cgroupdriver=cgroupfs",
                # its own containerd objects, even where dockerd shares a system containerd
                "--containerd-namespace", self.name, "--containerd-plugins-namespace", f"{self.name}-plugins",
                # networks compose creates there must not overlap the first engine's (172.x, 192.168.x)
                "--default-address-pool", f"base=10.{214 + self._subnet_index}.0.0/16,size=24",
                "--log-level", "warn"]

    def _launch(self) -> float:
        """Start dockerd and wait until its socket answers; seconds taken."""
        started = time.monotonic()
        # A killed engine leaves pidfiles behind. dockerd and its containerd supervisor trust any process
        # with that pid, even the zombie of the one we killed (which lingers until init reaps it): a
        # restart would then wait for a containerd that is not there.
        if self._pidfile_pid() is None:
            (self.dir / "dockerd.pid").unlink(missing_ok=True)
        containerd_pidfile = self.exec_root / "containerd" / "containerd.pid"
        try:
            if not _alive(int(containerd_pidfile.read_text().strip())):
                containerd_pidfile.unlink()
        except (OSError, ValueError):
            pass
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting dockerd\n".encode())
            log.flush()
            # its own session: a Ctrl-C at the test run does not reach it, stop() does
            self._process = subprocess.Popen(self._dockerd_argv(), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = started + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SecondEngineError(f"second engine {self.name}: dockerd exited {self._process.returncode} "
                                        f"while starting; {self._log_tail()}")
            if self.ping():
                return time.monotonic() - started
            time.sleep(0.1)
        raise SecondEngineError(f"second engine {self.name}: {self.socket_path} did not answer within "
                                f"{self.start_timeout_s:.0f}s; {self._log_tail()}")

    def ping(self, timeout_s: float = 1.0) -> bool:
        """True when the engine answers /_ping on its socket within timeout_s."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout_s)
                sock.connect(str(self.socket_path))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                reply = sock.recv(4096)
        except OSError:
            return False
        return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        except OSError:
            return f"no log at {self.log_path}"
        return f"last lines of {self.log_path}:\n" + "\n".join(lines)

    def docker(self, *args: str, timeout_s: float = DOCKER_CLI_TIMEOUT_S,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``docker --context NAME ARGS`` with a deadline."""
        return _run(["docker", "--context", self.context, *args], timeout_s=timeout_s, check=check)

    def load_images(self, images: Iterable[str]) -> list[str]:
        """Copy images from this machine's engine (one ``docker save | docker load`` stream, so shared
        layers travel once); those already there with the same id are skipped. Returns the loaded tags."""
        wanted = []
        for tag in dict.fromkeys(images):
            local = _run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], check=True).stdout.strip()
            there = self.docker("image", "inspect", "--format", "{{.Id}}", tag, check=False)
            if there.returncode != 0 or there.stdout.strip() != local:
                wanted.append(tag)
        if not wanted:
            return []
        with subprocess.Popen(["docker", "save", *wanted], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL) as save:
            try:
                load = subprocess.run(["docker", "-H", self.host, "load", "-q"], stdin=save.stdout,
                                      capture_output=True, text=True, timeout=LOAD_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired as exc:
                save.kill()
                raise SecondEngineError(f"loading {', '.join(wanted)} into {self.name}: not done within "
                                        f"{LOAD_TIMEOUT_S:.0f}s") from exc
            assert save.stdout is not None and save.stderr is not None
            save.stdout.close()
            save_error = save.stderr.read().decode(errors="replace")
        if save.returncode != 0 or load.returncode != 0:
            raise SecondEngineError(f"loading {', '.join(wanted)} into {self.name} failed: "
                                    f"{(save_error + load.stderr).strip()[-500:]}")
        return wanted

    def kill(self) -> None:
        """Lose the rig: SIGKILL dockerd, its containerd, shims and container processes at once; return once
        they are gone. Its containers' published ports stop answering; the context stays (unreachable)."""
        victims = self.processes()
        dockerd = self.pid or self._pidfile_pid()
        for pid in ([dockerd] if dockerd else []) + sorted(victims - {dockerd}):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._process is not None:
            self._process.wait(timeout=KILL_TIMEOUT_S)
        deadline = time.monotonic() + KILL_TIMEOUT_S
        left = victims
        while time.monotonic() < deadline:
            left = {pid for pid in left if _alive(pid)} | self.processes()
            if not left:
                return
            _sigkill(left)
        raise SecondEngineError(f"second engine {self.name}: processes {sorted(left)} survived SIGKILL")

    def restart(self) -> float:
        """Bring the engine back on the same data root (killing it first if it runs); seconds to answer."""
        if self._lock_fd is None:
            raise SecondEngineError(f"second engine {self.name} was never started")
        if self.pid is not None:
            self.kill()
        # dockerd 20.10 started again on a data root deletes the stale default "bridge" network in its store,
        # and with --bridge naming our own bridge that deletion removes this machine's docker0 (the first
        # engine then cannot start a container). A real rig has its own docker0; here we put ours back.
        docker0 = _bridge_addresses("docker0")
        seconds = self._launch()
        if docker0 is not None and _bridge_addresses("docker0") is None:
            _recreate_bridge("docker0", docker0)
        return seconds

    def stop(self) -> None:
        """Stop the engine and remove everything it made: processes, context, mounts, folders, bridge,
        cgroups. Idempotent; safe on an engine that never started."""
        if self._lock_fd is None:
            return
        # No graceful shutdown: everything it holds is deleted next, and SIGTERM costs seconds per container.
        self.kill()
        _remove_instance(self.dir)
        self._process = None
        os.close(self._lock_fd)
        self._lock_fd = None

    # --- what belongs to this engine ----------------------------------------------------------

    def _pidfile_pid(self) -> int | None:
        return _pid_from_file(self.dir / "dockerd.pid", self.dir)

    def processes(self) -> set[int]:
        """Pids of everything the engine runs: dockerd, containerd, shims, docker-proxy, containers."""
        return _instance_processes(self.dir, self.cgroup_parent)


def _check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise SecondEngineUnavailable("a second Docker engine needs root (CI runs as root)")
    for tool in ("dockerd", "docker", "ip"):
        if shutil.which(tool) is None:
            raise SecondEngineUnavailable(f"a second Docker engine needs {tool} on PATH")


def _free_subnet_index() -> int:
    """k such that 10.213.k.0/24 (bridge) and 10.(214+k).0.0/16 (address pool) overlap no route here."""
    taken = []
    for line in _run(["ip", "-4", "route", "show", "table", "all"], check=True).stdout.splitlines():
        for word in line.split()[:2]:  # "10.0.0.0/8 dev ..." or "local 127.0.0.0/8 dev ..."
            try:
                taken.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                continue
    for k in range(32):
        mine = [ipaddress.ip_network(f"10.213.{k}.0/24"), ipaddress.ip_network(f"10.{214 + k}.0.0/16")]
        if not any(a.overlaps(b) for a in mine for b in taken if b.prefixlen > 0):
            return k
    raise SecondEngineError("no free 10.213.k.0/24 subnet for a second engine's bridge")


def _pid_from_file(path: Path, instance_dir: Path) -> int | None:
    """The pid in a dockerd pidfile, when that process is alive and is this instance's dockerd."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and f"--exec-root {instance_dir}/exec" in _cmdline(pid) else None


def _cgroup_parent(name: str) -> str:
    return f"/bw-rig2.{name}"


def _cgroup_dirs(cgroup_parent: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    dirs = [root / cgroup_parent.lstrip("/")]
    if root.is_dir():
        dirs += [entry / cgroup_parent.lstrip("/") for entry in root.iterdir() if entry.is_dir()]
    return [d for d in dirs if d.is_dir()]


def _instance_processes(instance_dir: Path, cgroup_parent: str) -> set[int]:
    """dockerd, containerd and shims of this instance (their command lines name its folder), their
    descendants (docker-proxy, container processes), and whatever sits in its containers' cgroups."""
    me = {os.getpid(), os.getppid()}
    marker = f"{instance_dir}/"
    roots = {pid for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
             if pid not in me and _comm(pid).startswith(_ENGINE_COMMANDS) and marker in _cmdline(pid)}
    found = _with_descendants(roots)
    for cgroup in _cgroup_dirs(cgroup_parent):
        for procs in cgroup.rglob("cgroup.procs"):
            try:
                found |= {int(pid) for pid in procs.read_text().split()}
            except (OSError, ValueError):
                continue
    return {pid for pid in found - me if _alive(pid)}


def _remove_instance(instance_dir: Path) -> None:
    """Kill what is left of an instance and remove its context, mounts, folder, bridge and cgroups."""
    state_path = instance_dir / "state.json"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {"name": instance_dir.name, "context": instance_dir.name,
                 "bridge": BRIDGE_PREFIX + hashlib.sha256(instance_dir.name.encode()).hexdigest()[:8],
                 "cgroup_parent": _cgroup_parent(instance_dir.name)}
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while True:
        left = _instance_processes(instance_dir, state["cgroup_parent"])
        if not left:
            break
        if time.monotonic() > deadline:
            raise SecondEngineError(f"{instance_dir}: processes {sorted(left)} survived SIGKILL")
        _sigkill(left)
    _remove_context(state["context"], instance_dir)
    for point in _mounts_under(instance_dir):
        _run(["umount", "-l", point])
    if _mounts_under(instance_dir):
        raise SecondEngineError(f"{instance_dir}: still mounted after umount: {_mounts_under(instance_dir)[:3]}; "
                                "not removing it")
    shutil.rmtree(instance_dir, ignore_errors=True)
    if instance_dir.exists():
        raise SecondEngineError(f"{instance_dir}: could not be removed")
    if Path(f"/sys/class/net/{state['bridge']}").exists():
        _run(["ip", "link", "del", state["bridge"]], check=True)
    for cgroup in _cgroup_dirs(state["cgroup_parent"]):
        for sub in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                sub.rmdir()
            except OSError:
                pass
        try:
            cgroup.rmdir()
        except OSError:
            pass


def _remove_context(context: str, instance_dir: Path) -> None:
    """Remove the context, only when it points into instance_dir (never someone's real rig)."""
    done = _run(["docker", "context", "inspect", context, "--format", "{{.Endpoints.docker.Host}}"])
    if done.returncode == 0 and done.stdout.strip().startswith(f"unix://{instance_dir}/"):
        _run(["docker", "context", "rm", "-f", context], check=True)


def _held(lock_path: Path) -> bool:
    """True when a live process holds the instance's lock."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def clean_leftovers(base_dir: Path = BASE_DIR) -> list[str]:
    """Remove instances under base_dir whose owner died (a killed test run): their processes, mounts,
    folders, bridges, cgroups and contexts. Instances of live test sessions are left alone.
    Returns the names cleaned."""
    cleaned = []
    live = set()
    if base_dir.is_dir():
        for instance in sorted(p for p in base_dir.iterdir() if p.is_dir()):
            if _held(instance / "lock"):
                live.add(instance.name)
                continue
            _remove_instance(instance)
            cleaned.append(instance.name)
    # contexts and bridges whose folder is already gone
    listing = _run(["docker", "context", "ls", "--format", "{{.Name}}\t{{.DockerEndpoint}}"]).stdout
    for line in listing.splitlines():
        name, _, host = line.partition("\t")
        if host.startswith(f"unix://{base_dir}/") and Path(host[len("unix://"):]).parent.name not in live:
            _run(["docker", "context", "rm", "-f", name])
            cleaned.append(name)
    live_bridges = {BRIDGE_PREFIX + hashlib.sha256(name.encode()).hexdigest()[:8] for name in live}
    for link in Path("/sys/class/net").iterdir() if Path("/sys/class/net").is_dir() else []:
        if link.name.startswith(BRIDGE_PREFIX) and (link / "bridge").is_dir() and link.name not in live_bridges:
            _run(["ip", "link", "del", link.name])
            cleaned.append(link.name)
    return cleaned
