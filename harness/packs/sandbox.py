"""The agent sandbox: one locked container per scenario, the tools the model acts through, and
the evidence the checks are computed from.

Life of a scenario: a container starts from ``benchwright/sandbox-agent`` with no network,
no capabilities, a read-only root and small tmpfs mounts for /workspace and /tmp; the pack's
fixture is streamed in as a tar (never bind-mounted from the host) and its setup commands run;
the workspace is snapshotted (``before``). The model then acts as user ``agent`` through
``bash``/``read_file``/``write_file``/``list_dir``, each call under its own deadline. When the
episode ends every agent process is killed, the workspace is snapshotted again (``after``),
the pack's hidden files are copied in, and the check commands run. Expected values never enter
the container: the host compares, so code the model wrote cannot forge a verdict.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import tarfile
import time
from pathlib import Path
from typing import Any

from harness.containers import Container, ExecResult, Limits, image_present, reap_orphans
from harness.errors import SandboxError
from harness.packs.schema import FileState, Pack, ProbeResult, SandboxEvidence, Scenario
from harness.serving import images

AGENT_IMAGE_VERSION = "1"
AGENT_IMAGE = f"benchwright/sandbox-agent:{AGENT_IMAGE_VERSION}"
AGENT_USER = "10003:10003"
WORKSPACE = "/workspace"
CHECK_DIR = "/tmp/bw-check"  # its own tmpfs, owned by CHECK_USER: the model can neither plant nor block it
CHECK_USER = "10004:10004"
CONTAINER_PREFIX = "bw-agent"
DEFAULT_LIMITS = Limits(memory="512m", cpus=1.0, pids=128)
WORKSPACE_MB = 64
TEXT_KEPT_BYTES = 64 * 1024
SNAPSHOT_MAX_BYTES = (WORKSPACE_MB + 8) * 1024 * 1024
WRITE_MAX_BYTES = 1024 * 1024
_FIXED_MTIME = 1735732800  # 2025-01-01T12:00:00Z: fixtures look the same on every run
# A listing of the workspace (type, mode, path; NUL-separated) goes to stderr after a marker:
# it names what tar cannot read (a model can chmod 000 a file it was asked to delete).
_LISTING = ("printf '\\0bw-listing\\0' >&2; { find . -mindepth 1 -fprintf /dev/fd/3 '%y %m %P\\0' 2>/dev/null "
            "|| true; } 3>&2")
_LISTING_MARK = b"\0bw-listing\0"
# Seed: unpack the fixture (stdin), run the setup commands (their output to stderr), then write
# the workspace as a tar to stdout: the "before" snapshot.
_SEED_SCRIPT = f"""set -e
mkdir -p /tmp/home
tar -x -C {WORKSPACE} -f -
cd {WORKSPACE}
for command in "$@"; do
  bash --noprofile --norc -ec "$command" >&2 </dev/null || {{ echo "bw-setup-failed: $command" >&2; exit 97; }}
done
{_LISTING}
exec tar -C {WORKSPACE} -cf - . 2>/dev/null
"""
# Collect: the "after" snapshot. tar's exit 1/2 (a file changed or was unreadable) still leaves
# a usable snapshot; the listing says what it left out.
_COLLECT_SCRIPT = f"""cd {WORKSPACE} || exit 99
{_LISTING}
tar -C {WORKSPACE} -cf - . 2>/dev/null
"""
# A check that must pass "from a clean checkout": the final workspace is committed in a throwaway
# copy (git-ignored files stay behind) and cloned; the check runs in the clone's root. The
# agent's hooks and fsmonitor are switched off: they would run (and could fail) in our commit.
_FRESH_CLONE_SCRIPT = """mkdir -p "$HOME"
work=$(mktemp -d /tmp/bw-clone-XXXXXX) || exit 98
G="git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c commit.gpgsign=false"
{ cp -a /workspace "$work/src" 2>/dev/null; cd "$work/src" && { [ -d .git ] || $G init -q; } \
  && $G add -A && $G commit -q --no-verify --allow-empty -m bw-final-state \
  && $G clone -q "$work/src" "$work/repo"; } >/dev/null 2>"$work/git.log" \
  || { echo "bw-fresh-clone-failed: $(tail -c 300 "$work/git.log")" >&2; rm -rf "$work"; exit 98; }
cd "$work/repo" && bash --noprofile --norc -c "$1"
code=$?
cd / && rm -rf "$work"
exit $code
"""
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/home", "LANG": "C.UTF-8", "TERM": "dumb"}


def build_agent_image(repo_root: Path, cache_dir: Path, base_image: str | None) -> str:
    """Build the agent sandbox image (Debian packages only, installed by apt in the build)."""
    images.build_image(repo_root / "images" / "sandbox-agent", AGENT_IMAGE, inputs=[],
                       build_args={"BASE_IMAGE": images.resolve_base_image(base_image)},
                       staging_dir=cache_dir / "build" / "sandbox-agent")
    return AGENT_IMAGE


def require_agent_image(image: str | None = None) -> None:
    """One line naming the fix when the image is missing (checked before any scenario runs)."""
    image = image or AGENT_IMAGE
    if not image_present(image):
        raise SandboxError(f"sandbox image {image} is not built; run `make sandboxes`")
    reap_orphans("benchwright=sandbox-agent")  # sandboxes of an earlier run that was killed outright


def pack_folder(pack: Pack, kind: str, name: str) -> Path:
    """A pack's fixtures/<name> or hidden/<name> folder."""
    return Path(pack.source) / kind / name


def _tar(entries: list[tuple[str, bytes, int]]) -> bytes:
    """A tar of (path, content, mode) owned by the agent, with one fixed mtime."""
    buffer = io.BytesIO()
    uid, gid = (int(part) for part in AGENT_USER.split(":"))
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, content, mode in entries:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(content), mode, _FIXED_MTIME, uid, gid
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _folder_entries(folder: Path) -> list[tuple[str, bytes, int]]:
    if not folder.is_dir():
        raise SandboxError(f"{folder}: fixture folder not found")
    return [(str(path.relative_to(folder)), path.read_bytes(), 0o755 if path.stat().st_mode & 0o111 else 0o644)
            for path in sorted(folder.rglob("*")) if path.is_file()]


def parse_snapshot(data: bytes, listing: bytes = b"") -> dict[str, FileState]:
    """Workspace entries of a tar stream, by path relative to /workspace, plus the entries of a
    ``find -printf '%y %m %P\\0'`` listing that the tar lacks (unreadable to the agent)."""
    states: dict[str, FileState] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive:
            path = member.name[2:] if member.name.startswith("./") else member.name
            path = path.rstrip("/")
            if path in ("", "."):
                continue
            if member.isfile():
                handle = archive.extractfile(member)
                content = handle.read() if handle else b""
                try:
                    text = content.decode("utf-8") if len(content) <= TEXT_KEPT_BYTES else None
                except UnicodeDecodeError:
                    text = None
                states[path] = FileState(kind="file", mode=member.mode & 0o7777, size=len(content),
                                         sha256=hashlib.sha256(content).hexdigest(), text=text)
            elif member.isdir():
                states[path] = FileState(kind="dir", mode=member.mode & 0o7777)
            elif member.issym():
                states[path] = FileState(kind="symlink", mode=member.mode & 0o7777, target=member.linkname)
            else:
                states[path] = FileState(kind="other", mode=member.mode & 0o7777)
    for entry in listing.split(b"\0"):
        kind, _, rest = entry.decode("utf-8", errors="replace").partition(" ")
        mode, _, path = rest.partition(" ")
        if path and path not in states and mode.isdigit():
            states[path] = FileState(kind="unreadable", mode=int(mode, 8))
    return states


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _cut_note(kept: bytes, total: int, stream: str) -> str:
    body = _text(kept)
    if total > len(kept):
        body += f"\n[{stream} cut: {total - len(kept)} more bytes not shown]"
    return body


class AgentSandbox:
    """One scenario's container. ``with AgentSandbox(...) as box:`` starts it, seeds the
    workspace and takes the ``before`` snapshot; leaving the block removes the container."""

    def __init__(self, pack: Pack, scenario: Scenario, *, image: str | None = None,
                 limits: Limits = DEFAULT_LIMITS):
        if pack.meta.sandbox is None or scenario.sandbox is None:
            raise SandboxError(f"{pack.meta.id}/{scenario.id}: not a sandboxed scenario")
        self.pack, self.scenario, self.image, self.limits = pack, scenario, image or AGENT_IMAGE, limits
        self.settings = pack.meta.sandbox
        self.container: Container | None = None
        self.before: dict[str, FileState] = {}
        self.timings_ms: dict[str, float] = {}

    def _lap(self, key: str, started: float) -> float:
        now = time.monotonic()
        self.timings_ms[key] = round(self.timings_ms.get(key, 0) + (now - started) * 1000, 1)
        return now

    def __enter__(self) -> AgentSandbox:
        started = time.monotonic()
        # exec: Docker's tmpfs default is noexec, and agents run the scripts they write (./deploy.sh).
        tmpfs = {WORKSPACE: f"rw,exec,nosuid,nodev,size={WORKSPACE_MB}m,uid=10003,gid=10003,mode=0755",
                 "/tmp": "rw,exec,nosuid,nodev,size=64m,mode=1777",
                 CHECK_DIR: "rw,nosuid,nodev,size=16m,uid=10004,gid=10004,mode=0755"}
        self.container = Container.create(self.image, name_prefix=CONTAINER_PREFIX, user=AGENT_USER,
                                          limits=self.limits, tmpfs=tmpfs, env=_ENV, workdir=WORKSPACE,
                                          labels={"benchwright": "sandbox-agent",
                                                  "benchwright.scenario": f"{self.pack.meta.id}/{self.scenario.id}"})
        try:
            self.container.start()
            now = self._lap("start", started)
            spec = self.scenario.sandbox
            assert spec is not None  # checked in __init__
            entries = _folder_entries(pack_folder(self.pack, "fixtures", spec.fixture)) if spec.fixture else []
            entries += [(path, text.encode(), 0o644) for path, text in spec.files.items()]
            # One exec seeds, sets up and snapshots: each exec is an engine round trip.
            result = self._exec(["bash", "--noprofile", "--norc", "-c", _SEED_SCRIPT, "seed", *spec.setup],
                                stdin=_tar(entries), timeout_s=60 + 30 * len(spec.setup),
                                max_output=SNAPSHOT_MAX_BYTES)
            if result.exit_code not in (0, 1, 2) or _LISTING_MARK not in result.stderr:  # tar's 1/2: see collect
                stderr = _text(result.stderr).strip()
                failed = [line for line in stderr.splitlines() if line.startswith("bw-setup-failed: ")]
                what = f"setup command {failed[-1][17:]!r}" if failed else "seeding the workspace"
                reason = "timed out" if result.timed_out else f"exit {result.exit_code}"
                raise SandboxError(f"{self.pack.meta.id}/{self.scenario.id}: {what} failed ({reason}): "
                                   f"{stderr[-300:]}")
            self.before = self._parse(result)
            self._lap("seed", now)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.container is not None:
            self.container.remove(background=True)
            self.container = None

    def _box(self) -> Container:
        if self.container is None:
            raise SandboxError(f"{self.pack.meta.id}/{self.scenario.id}: the sandbox is not running")
        return self.container

    def _exec(self, cmd: list[str], *, stdin: bytes | None = None, timeout_s: float | None = None,
              max_output: int | None = None, env: dict[str, str] | None = None) -> ExecResult:
        box = self._box()
        result = box.exec(cmd, user=AGENT_USER, workdir=WORKSPACE, env=env or _ENV, stdin=stdin,
                          timeout_s=timeout_s or self.settings.command_timeout_s,
                          max_output=max_output or self.settings.output_limit_bytes)
        if result.exit_code is None and not result.timed_out and not box.running():
            raise SandboxError(f"{self.pack.meta.id}/{self.scenario.id}: the sandbox container stopped "
                               f"during {cmd[0]!r}")
        return result

    def _parse(self, result: ExecResult) -> dict[str, FileState]:
        """The workspace from a tar the sandbox wrote to stdout and its listing on stderr (read here,
        on the host): entries the listing has and tar could not read are kept as "unreadable"."""
        if result.stdout_bytes > len(result.stdout) or result.stderr_bytes > len(result.stderr):
            raise SandboxError(f"{self.pack.meta.id}/{self.scenario.id}: the workspace is larger than "
                               f"{SNAPSHOT_MAX_BYTES} bytes")
        try:
            return parse_snapshot(result.stdout, result.stderr.rpartition(_LISTING_MARK)[2])
        except tarfile.TarError as exc:
            raise SandboxError(f"{self.pack.meta.id}/{self.scenario.id}: workspace snapshot unreadable ({exc})"
                               ) from None

    # ---- the tools the model acts through -------------------------------------------------

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[str, Any]:
        """One tool call (name and arguments already checked against the tool schemas)."""
        if name == "bash":
            return self.bash(arguments["command"])
        if name == "read_file":
            return self.read_file(arguments["path"])
        if name == "write_file":
            return self.write_file(arguments["path"], arguments["content"])
        if name == "list_dir":
            return self.list_dir(arguments.get("path") or ".")
        raise SandboxError(f"{self.pack.meta.id}/{self.scenario.id}: no sandbox tool {name!r}")

    def bash(self, command: str) -> tuple[str, dict[str, Any]]:
        """Run a shell command; the model sees the exit code and both streams, cut with a note."""
        result = self._exec(["bash", "-c", command])
        if result.timed_out:
            limit = self.settings.command_timeout_s
            code_line = f"exit_code: none (killed: the command ran past its {limit:g} s limit)"
        else:
            code_line = f"exit_code: {result.exit_code}"
        text = (f"{code_line}\nstdout:\n{_cut_note(result.stdout, result.stdout_bytes, 'stdout')}\n"
                f"stderr:\n{_cut_note(result.stderr, result.stderr_bytes, 'stderr')}")
        record = {"exit_code": result.exit_code, "timed_out": result.timed_out,
                  "stdout": _text(result.stdout), "stderr": _text(result.stderr),
                  "stdout_bytes": result.stdout_bytes, "stderr_bytes": result.stderr_bytes}
        return text, record

    def read_file(self, path: str) -> tuple[str, dict[str, Any]]:
        result = self._exec(["cat", "--", path])
        if result.exit_code != 0:
            error = _text(result.stderr).strip() or f"cannot read {path}"
            return f"error: {error}", {"error": error}
        return _cut_note(result.stdout, result.stdout_bytes, "file"), {"bytes": result.stdout_bytes}

    def write_file(self, path: str, content: str) -> tuple[str, dict[str, Any]]:
        data = content.encode("utf-8")
        if len(data) > WRITE_MAX_BYTES:
            return f"error: content is {len(data)} bytes; write_file takes at most {WRITE_MAX_BYTES}", \
                {"error": "too large"}
        result = self._exec(["bash", "-c", 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"', "write_file", path],
                            stdin=data)
        if result.exit_code != 0:
            error = _text(result.stderr).strip() or f"cannot write {path}"
            return f"error: {error}", {"error": error}
        return f"wrote {len(data)} bytes to {path}", {"bytes": len(data)}

    def list_dir(self, path: str = ".") -> tuple[str, dict[str, Any]]:
        result = self._exec(["ls", "-la", "--", path])
        if result.exit_code != 0:
            error = _text(result.stderr).strip() or f"cannot list {path}"
            return f"error: {error}", {"error": error}
        return _cut_note(result.stdout, result.stdout_bytes, "listing"), {}

    # ---- after the episode ----------------------------------------------------------------

    def stop_agent(self) -> None:
        """Kill everything the model left running, before anything is read."""
        self._box().kill_processes(AGENT_USER)

    def _probe(self, index: int, spec_assert: dict[str, Any]) -> ProbeResult:
        """Run one check command as the agent with a fresh HOME (in a fresh clone when asked)."""
        home = f"/tmp/bw-home-{secrets.token_hex(4)}"
        env = {**_ENV, "HOME": home, "PYTHONNOUSERSITE": "1"}
        stdin = spec_assert.get("stdin")
        if spec_assert.get("fresh_clone"):
            cmd = ["bash", "--noprofile", "--norc", "-c", _FRESH_CLONE_SCRIPT, "fresh-clone", spec_assert["run"]]
        else:
            cmd = ["bash", "--noprofile", "--norc", "-c", f"mkdir -p {home}; {spec_assert['run']}"]
        result = self._exec(cmd, stdin=stdin.encode() if isinstance(stdin, str) else None, env=env,
                            timeout_s=float(spec_assert.get("timeout_s") or self.settings.command_timeout_s),
                            max_output=256 * 1024)
        return ProbeResult(assert_index=index, exit_code=result.exit_code, stdout=_text(result.stdout),
                           stderr=_text(result.stderr)[-4000:], timed_out=result.timed_out,
                           duration_ms=result.duration_ms)

    def finish(self, asserts: list[dict[str, Any]], *, status: str | None, answer: str) -> SandboxEvidence:
        """Stop the agent, snapshot the workspace, copy the hidden files in and run the check commands."""
        started = time.monotonic()
        self.stop_agent()
        spec = self.scenario.sandbox
        assert spec is not None  # checked in __init__
        result = self._exec(["bash", "--noprofile", "--norc", "-c", _COLLECT_SCRIPT], timeout_s=60,
                            max_output=SNAPSHOT_MAX_BYTES)
        if result.exit_code not in (0, 1, 2):
            raise SandboxError(f"{self.pack.meta.id}/{self.scenario.id}: reading the workspace failed (exit "
                               f"{result.exit_code})")
        after = self._parse(result)
        if spec.hidden:  # copied in by the check user, into the folder only it can write
            entries = _folder_entries(pack_folder(self.pack, "hidden", spec.hidden))
            copied = self._box().exec(["tar", "-x", "--no-same-owner", "-C", CHECK_DIR, "-f", "-"], user=CHECK_USER,
                                      workdir=CHECK_DIR, env=_ENV, stdin=_tar(entries), timeout_s=60,
                                      max_output=64 * 1024)
            if copied.exit_code != 0:
                raise SandboxError(f"{self.pack.meta.id}/{self.scenario.id}: copying the hidden checks in failed: "
                                   f"{_text(copied.stderr).strip()[-300:]}")
        probes = []
        for index, spec_assert in enumerate(asserts):
            if spec_assert.get("check") != "command":
                continue
            for _ in range(int(spec_assert.get("repeat") or 1)):
                probes.append(self._probe(index, spec_assert))
        self._lap("checks", started)
        return SandboxEvidence(before=self.before, after=after, probes=probes, status=status, answer=answer,
                               timings_ms=dict(self.timings_ms))
