"""What a long run watches on the server container: memory use, running state and restarts.

Read through the docker client of the profile's rig (``rigs.client_for``), never by scraping logs.
A restart shows as ``RestartCount`` going up (a restart policy brought it back) or as a new
``StartedAt`` (someone or something restarted it); ``restarts_between`` counts either.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from python_on_whales import DockerClient, DockerException

MIB = 1024 * 1024


class ContainerSnapshot(BaseModel):
    """The server container at one instant; None figures say what could not be read (see ``note``)."""

    container: str = Field(description="container name")
    running: bool
    status: str = Field(description="docker's state: running, restarting, exited, ...")
    restart_count: int
    started_at: str | None
    exit_code: int | None = None
    oom_killed: bool = False
    mem_mib: float | None = Field(default=None, description="docker stats memory usage (cgroup, cache excluded)")
    mem_limit_mib: float | None = None
    cpu_percent: float | None = None
    note: str | None = None


def _last_line(exc: DockerException) -> str:
    lines = (exc.stderr or str(exc)).strip().splitlines()
    return lines[-1][:200] if lines else f"exit {exc.return_code}"


def snapshot(engine: DockerClient, container: str) -> ContainerSnapshot:
    """Inspect and (when it runs) ``docker stats`` one container; raises DockerException if it is gone."""
    info = engine.container.inspect(container)
    state = info.state
    started = state.started_at.isoformat() if state.started_at else None
    record = ContainerSnapshot(container=str(info.name).lstrip("/"), running=bool(state.running),
                               status=str(state.status), restart_count=int(info.restart_count or 0),
                               started_at=started, exit_code=state.exit_code, oom_killed=bool(state.oom_killed))
    if not record.running:
        record.note = "not running: no memory figure"
        return record
    try:
        stats = engine.container.stats(containers=[info.id])
    except DockerException as exc:
        record.note = f"docker stats failed: {_last_line(exc)}"
        return record
    if stats:
        record.mem_mib = stats[0].memory_used / MIB
        record.mem_limit_mib = stats[0].memory_limit / MIB
        record.cpu_percent = stats[0].cpu_percentage
    return record


def restarts_between(before: ContainerSnapshot, after: ContainerSnapshot) -> int:
    """Restarts of one container between two snapshots: the RestartCount rise, or 1 for a new start time."""
    rise = max(0, after.restart_count - before.restart_count)
    if rise == 0 and after.started_at and before.started_at and after.started_at != before.started_at:
        return 1
    return rise


def log_tail(engine: DockerClient, container: str, lines: int = 30) -> str:
    """The last lines the container printed; a sentence instead when docker cannot say."""
    try:
        text = engine.container.logs(container, tail=lines)
    except DockerException as exc:
        return f"(logs unavailable: {_last_line(exc)})"
    return text if isinstance(text, str) else ""
