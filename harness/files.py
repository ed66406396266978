"""Every file the harness writes goes through here, so a reader never sees half of one.

* ``atomic_output`` / ``write_text_atomic`` / ``write_bytes_atomic`` / ``write_json_atomic``: write ``x.partial``,
  fsync, then rename onto ``x``. A target that exists but is not a regular file (a device node,
  a directory, a symlink) is refused: renaming onto ``/dev/null`` would replace it.
* ``append_json_line``: one journal line, flushed and fsynced before returning.
* ``complete_lines``: a journal's finished lines; a line torn by a kill is cut off the file.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

from harness.errors import HarnessError


class OutputPathError(HarnessError):
    """A result cannot be written where it was asked to go."""


def check_output_path(path: Path) -> Path:
    """Raise OutputPathError unless ``path`` is absent or a regular file (symlinks are not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
        raise OutputPathError(f"{path}: is {kind}; give the path of a file to write")
    return path


def check_writable_folder(folder: Path) -> None:
    """Before long work: a file can be created in ``folder`` (read-only mounts and full disks say so
    here, not after the work). A folder that does not exist yet is created later, and checked then."""
    if not folder.is_dir():
        return
    probe = folder / f".benchwright-write-test-{os.getpid()}"
    try:
        with probe.open("wb") as handle:
            handle.write(b"x")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise OutputPathError(f"{folder}: cannot write here ({exc.strerror or exc})") from None
    finally:
        with suppress(OSError):  # on a read-only mount even removing nothing fails
            probe.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: Path, check: Callable[[Path], None] | None = None) -> Iterator[BinaryIO]:
    """A binary handle on ``path.partial``: on a clean exit it is fsynced, ``check``ed (which may
    raise to refuse it) and renamed onto ``path``; on any failure the partial file is removed."""
    check_output_path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(partial)
        partial.replace(path)
    except OSError as exc:
        _remove(partial)
        raise OutputPathError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _remove(partial)
        raise


def _remove(path: Path) -> None:
    """Remove a partial file if there is one; where even that fails (read-only), there is none."""
    with suppress(OSError):
        path.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write bytes via a sibling ``.partial`` file and an atomic rename; returns path."""
    with atomic_output(path) as handle:
        handle.write(data)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically; returns path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, document: Any, indent: int = 1) -> Path:
    """Write a JSON document atomically; returns path."""
    return write_text_atomic(path, json.dumps(document, indent=indent) + "\n")


def append_json_line(path: Path, document: Any) -> None:
    """Append one JSON line and fsync it: a finished piece of work survives a kill right after."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(document) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def complete_lines(path: Path) -> list[str]:
    """The finished lines of a journal; a torn last line (killed mid-write) is cut off the file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with path.open("r+b") as handle:
            handle.truncate(len(data))
    return [line for line in data.decode("utf-8").splitlines() if line.strip()]


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` whose every failure is a ValueError, absurd nesting included (json raises
    RecursionError for it), so readers of user files have one error to turn into one line."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_text(path: Path) -> str:
    """A file's UTF-8 text; OSError as usual, and a binary file as a ValueError that says so."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None


def check_output_location(path: Path) -> Path:
    """Everything about where a result will go that can be known before the work: a plain file
    (or none yet) in a folder we can write."""
    check_output_path(path)
    check_writable_folder(path.parent)
    return path
