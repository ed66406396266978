"""models.conf: server and benchmark profiles.

The file is INI-shaped: ``[profile-id]`` sections of ``KEY=value`` lines, full-line ``#`` or
``;`` comments, no interpolation, case-sensitive keys. A ``[DEFAULT]`` section supplies
values every profile inherits. We parse it line by line (rather than with configparser) so
every error can name the file, the line and the key.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import ProfileError

DEFAULT_SECTION = "DEFAULT"
BENCH_PREFIX = "bench-"
_SECTION_RE = re.compile(r"^\[(?P<name>[^\]]*)\]$")
_PROFILE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Flags the harness sets itself from profile keys; EXTRA_ARGS must not fight them.
_OWNED_FLAGS = {
    "-m": "MODEL", "--model": "MODEL",
    "-c": "CTX_SIZE", "--ctx-size": "CTX_SIZE",
    "-ngl": "N_GPU_LAYERS", "--n-gpu-layers": "N_GPU_LAYERS", "--gpu-layers": "N_GPU_LAYERS",
    "-np": "PARALLEL", "--parallel": "PARALLEL",
    "--port": "PORT", "--host": "BIND_ADDRESS",
}


class Profile(BaseModel):
    """One validated ``[section]`` of models.conf (DEFAULT values merged in)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str
    source: Path = Field(description="the models.conf this profile came from")
    name: str = Field(alias="NAME", min_length=1)
    model: str = Field(alias="MODEL", min_length=1)
    models_dir: Path = Field(alias="MODELS_DIR", default=Path("models"))
    ctx_size: int = Field(alias="CTX_SIZE", gt=0)
    n_gpu_layers: int = Field(alias="N_GPU_LAYERS", default=0, ge=-1)
    extra_args: str = Field(alias="EXTRA_ARGS", default="")
    image: str = Field(alias="IMAGE", min_length=1)
    port: int = Field(alias="PORT", ge=1, le=65535)
    bind_address: str = Field(alias="BIND_ADDRESS", default="127.0.0.1")
    parallel: int = Field(alias="PARALLEL", default=1, ge=1, le=256)
    gpus: str = Field(alias="GPUS", default="none")
    health_timeout_s: float = Field(alias="HEALTH_TIMEOUT_S", default=300, gt=0)
    compose: str = Field(alias="COMPOSE", default="llama-cpp.yml")
    max_tokens: int | None = Field(alias="MAX_TOKENS", default=None, gt=0)
    # Requests the harness keeps in flight in packs and codegen (default: PARALLEL). 1 makes greedy
    # answers repeat exactly: batched decoding over several slots changes the float sums.
    bench_parallel: int | None = Field(alias="BENCH_PARALLEL", default=None, ge=1, le=256)

    @property
    def is_bench(self) -> bool:
        return self.id.startswith(BENCH_PREFIX)

    @property
    def requests_in_flight(self) -> int:
        return self.bench_parallel or self.parallel

    @property
    def model_path(self) -> Path:
        return self.models_dir / self.model

    @property
    def extra_args_list(self) -> list[str]:
        return shlex.split(self.extra_args)

    @property
    def uses_gpus(self) -> bool:
        return self.gpus != "none"

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: str) -> str:
        if value in ("none", "all") or re.fullmatch(r"\d+(,\d+)*", value):
            return value
        raise ValueError("expected none, all, or comma-separated GPU ids such as 0,1")

    @field_validator("extra_args")
    @classmethod
    def _check_extra_args(cls, value: str) -> str:
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split like a shell command line ({exc})") from None
        for word in words:
            flag = word.split("=", 1)[0]
            if flag in _OWNED_FLAGS:
                raise ValueError(f"sets {flag}, which the profile sets through {_OWNED_FLAGS[flag]}")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("must be a path inside MODELS_DIR (no leading / and no '..')")
        return value

    @field_validator("compose")
    @classmethod
    def _check_compose(cls, value: str) -> str:
        if "/" in value or not value.endswith((".yml", ".yaml")):
            raise ValueError("must be the file name of a compose file under compose/")
        return value


PROFILE_KEYS = tuple(
    f.alias for f in Profile.model_fields.values() if f.alias is not None
)


@dataclass
class _Section:
    name: str
    line: int
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


def _fail(path: Path, line: int, message: str) -> ProfileError:
    return ProfileError(f"{path}:{line}: {message}")


def _parse_sections(path: Path, text: str) -> list[_Section]:
    sections: list[_Section] = []
    seen: dict[str, int] = {}
    current: _Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            match = _SECTION_RE.match(line)
            if not match:
                raise _fail(path, number, f"malformed section header {line!r} (expected [profile-id])")
            name = match.group("name").strip()
            if name != DEFAULT_SECTION and not _PROFILE_ID_RE.match(name):
                raise _fail(path, number, f"[{name}]: profile id must be lowercase letters, digits, "
                                          "'.', '-' or '_' (it names the compose project)")
            if name in seen:
                raise _fail(path, number, f"[{name}]: duplicate section (first defined on line {seen[name]})")
            seen[name] = number
            current = _Section(name, number)
            sections.append(current)
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            raise _fail(path, number, f"malformed line {line!r} (expected KEY=value, [section] or # comment)")
        if current is None:
            raise _fail(path, number, f"{key}: key outside any [section]")
        where = f"[{current.name}] {key or '(empty key)'}"
        if not _KEY_RE.match(key):
            raise _fail(path, number, f"{where}: malformed key (keys are UPPER_CASE, e.g. CTX_SIZE)")
        if key not in PROFILE_KEYS:
            hint = difflib.get_close_matches(key, PROFILE_KEYS, n=1)
            suggestion = f"; did you mean {hint[0]}?" if hint else ""
            raise _fail(path, number, f"{where}: unknown key{suggestion} (known: {', '.join(PROFILE_KEYS)})")
        if key in current.values:
            raise _fail(path, number, f"{where}: duplicate key (first set on line {current.lines[key]})")
        current.values[key] = value.strip()
        current.lines[key] = number
    return sections


def _validate(path: Path, section: _Section, defaults: _Section | None) -> Profile:
    values = dict(defaults.values) if defaults else {}
    lines = dict(defaults.lines) if defaults else {}
    values.update(section.values)
    lines.update(section.lines)
    if "MODELS_DIR" in values:
        models_dir = Path(values["MODELS_DIR"])
        values["MODELS_DIR"] = str(models_dir if models_dir.is_absolute() else path.parent / models_dir)
    else:
        values["MODELS_DIR"] = str(path.parent / "models")
    try:
        return Profile(id=section.name, source=path, **values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "?"
        line = lines.get(key, section.line)
        if error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] in ("int_parsing", "float_parsing"):
            message = f"expected a {'whole ' if error['type'] == 'int_parsing' else ''}number, got {values.get(key)!r}"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            if key in values:
                message += f" (got {values[key]!r})"
        raise _fail(path, line, f"[{section.name}] {key}: {message}") from None


def load_profiles(path: Path) -> dict[str, Profile]:
    """Parse and validate every profile in a models.conf, in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: config file not found (pass --config PATH)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read config file ({exc})") from None
    sections = _parse_sections(path, text)
    defaults = next((s for s in sections if s.name == DEFAULT_SECTION), None)
    profiles = {s.name: _validate(path, s, defaults) for s in sections if s.name != DEFAULT_SECTION}
    if not profiles:
        raise ProfileError(f"{path}: no profiles defined (add a [profile-id] section)")
    return profiles


def get_profile(path: Path, profile_id: str, *, require_model: bool = True) -> Profile:
    """Load one profile by id; optionally insist that its model file exists."""
    profiles = load_profiles(path)
    if profile_id not in profiles:
        hint = difflib.get_close_matches(profile_id, profiles, n=1)
        suggestion = f"; did you mean {hint[0]}?" if hint else ""
        raise ProfileError(f"{path}: no profile [{profile_id}]{suggestion} (known: {', '.join(profiles)})")
    profile = profiles[profile_id]
    if require_model:
        check_model_file(profile)
    return profile


def check_model_file(profile: Profile) -> None:
    """Raise a ProfileError naming the MODEL line when the model file is missing."""
    line = _key_line(profile, "MODEL")
    where = f"{profile.source}:{line}: [{profile.id}] MODEL"
    if not profile.model_path.is_file():
        raise ProfileError(f"{where}: model file not found: {profile.model_path}")
    resolved, root = profile.model_path.resolve(), profile.models_dir.resolve()
    if not resolved.is_relative_to(root):
        # only MODELS_DIR is mounted: the container cannot follow a link that leaves it
        raise ProfileError(f"{where}: {profile.model_path} links to {resolved}, outside MODELS_DIR {root}; "
                           "the container only sees MODELS_DIR (copy or hard-link the file, or change MODELS_DIR)")


def _key_line(profile: Profile, key: str) -> int:
    sections = _parse_sections(profile.source, profile.source.read_text(encoding="utf-8"))
    for wanted in (profile.id, DEFAULT_SECTION):
        for section in sections:
            if section.name == wanted and key in section.lines:
                return section.lines[key]
    return next(s.line for s in sections if s.name == profile.id)
