"""The harness's error hierarchy.

    HarnessError            anything the CLI reports as one line and a non-zero exit
    ├── ProfileError        models.conf: file, line and key named
    ├── ServingError        compose up/down, health-wait, port clashes
    │   └── ServerDied      the server container exited or was OOM-killed
    ├── EndpointError       an HTTP endpoint did not answer as expected (URL named)
    ├── ImageError          building or finding images and their inputs
    ├── SandboxError        running untrusted code in a container
    ├── ComparisonError     unusable outcome/baseline files, or a regression gate refused
    ├── PackError           quality packs and result files: file, line and field named
    └── Interrupted         Ctrl-C: says what finished work is kept and how to resume

Lower-level errors are mapped into this tree with ``raise ... from``.
"""

from pydantic import ValidationError


class HarnessError(Exception):
    """Base of every error the CLI turns into a one-line message."""


class ProfileError(HarnessError):
    """A models.conf problem; the message names file, line and key."""


class ServingError(HarnessError):
    """The server could not be brought up, waited for, or taken down."""


class ServerDied(ServingError):
    """The server container stopped while we waited for it to become healthy."""


class EndpointError(HarnessError):
    """An HTTP endpoint was unreachable or answered with something unusable."""


class ImageError(HarnessError):
    """An image or one of its offline inputs is missing or failed to build."""


class SandboxError(HarnessError):
    """Sandboxed execution could not be carried out."""


class ComparisonError(HarnessError):
    """An outcome or baseline file is unusable, or a comparison cannot gate (non-canonical run)."""


class PackError(HarnessError):
    """A pack or result file is malformed; the message names file, line and field."""


class Interrupted(HarnessError):
    """The user pressed Ctrl-C; the message says what is kept and how to resume."""


def describe_validation_error(exc: ValidationError, top: str = "(top level)") -> str:
    """The first problem of a pydantic error as ``field.path: message``: one line, without
    pydantic's ``[type=…]`` and documentation-link noise."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or top
    return f"{where}: {str(first['msg']).removeprefix('Value error, ')}"
