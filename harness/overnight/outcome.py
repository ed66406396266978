"""How a step ended, as data: the record a ``python -m harness <verb>`` step leaves for the runner.

When ``BENCHWRIGHT_STEP_OUTCOME`` names a path, the CLI's error boundary writes
``{"exit_code": N}`` there, plus ``"error"`` (the one-line message) and ``"error_type"`` (the
exception class) when the verb failed. all-bench sets the variable per step and reads why a
step failed from this file instead of grepping the step's log.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from harness.files import write_json_atomic

STEP_OUTCOME_ENV = "BENCHWRIGHT_STEP_OUTCOME"


class StepOutcome(BaseModel):
    """What one step process reported about its own end."""

    exit_code: int
    error: str = ""  # the one-line message the CLI printed after "error: "
    error_type: str = ""  # the exception class, e.g. ServerDied


def one_line(message: str) -> str:
    """A message's first line; a message that goes on (a server's log tail) says how much more the log has."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0].strip() if lines else ""
    return f"{lines[0].rstrip().rstrip(':')} (+{len(lines) - 1} lines in the log)"


def write_step_outcome(path: Path, exit_code: int, error: str = "", error_type: str = "") -> None:
    """Write the outcome record atomically; error fields only when there was an error."""
    document: dict[str, int | str] = {"exit_code": exit_code}
    if error or error_type:
        document.update(error=one_line(error), error_type=error_type)
    write_json_atomic(path, document)


def read_step_outcome(path: Path) -> StepOutcome | None:
    """The outcome a step left, or None when it left none (killed, crashed) or an unreadable one."""
    try:
        return StepOutcome.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: pydantic's ValidationError, bad UTF-8
        return None
