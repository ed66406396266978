"""models.conf: server and benchmark profiles.

The file is INI-shaped: ``[profile-id]`` sections of ``KEY=value`` lines, full-line ``#`` or
``;`` comments, no interpolation, case-sensitive keys. One rule for inline comments, on every
key: `` #`` (whitespace, then ``#``) outside quotes starts a comment. A ``[DEFAULT]`` section supplies
values every profile inherits. We parse it line by line (rather than with configparser) so
every error can name the file, the line and the key.

A profile's ``PROVIDER`` says where its model answers: ``compose`` (the default) is a server
this harness brings up from a compose file; ``openai-compatible`` and ``anthropic`` are API
endpoints someone else runs, at ``BASE_URL``. Compose-only keys are refused in an API
profile's own section but ignored when inherited from ``[DEFAULT]``, so one DEFAULT can
serve both kinds. A profile never holds an API key, only ``API_KEY_ENV``, the name of the
environment variable that does.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails

from harness.errors import ProfileError
from harness.serving.engines import ENGINE_SPECS, ENGINES, LLAMA_CPP_ONLY_KEYS, Engine, engine_spec, owned_flag

DEFAULT_SECTION = "DEFAULT"
BENCH_PREFIX = "bench-"
_SECTION_RE = re.compile(r"^\[(?P<name>[^\]]*)\]$")
_PROFILE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_CONFIG_BYTES = 4 * 1024 * 1024

Provider = Literal["compose", "openai-compatible", "anthropic"]
# The compose file each engine is served with unless the profile names its own COMPOSE.
ENGINE_COMPOSE = {name: spec.compose_file for name, spec in ENGINE_SPECS.items()}
# The controller's address of a server behind an SSH tunnel, per profile id (JSON {"id": "http://127.0.0.1:P"}):
# all-bench sets it for the steps it runs while it holds the tunnel open.
ENDPOINT_OVERRIDES_ENV = "BENCHWRIGHT_ENDPOINTS"
_CONTEXT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
WireFormat = Literal["openai-compatible", "anthropic"]
PROVIDERS: tuple[str, ...] = get_args(Provider)
# Keys that only configure a server this harness brings up, with why an API profile has no use for them.
_COMPOSE_ONLY = {
    "MODEL": "a model file is served by compose profiles; name the API model with MODEL_ID",
    "MODELS_DIR": "it is the folder of model files that compose profiles serve",
    "CTX_SIZE": "the endpoint's operator sets its context size",
    "N_GPU_LAYERS": "the endpoint's operator places its layers",
    "EXTRA_ARGS": "it holds flags for a server this harness starts",
    "IMAGE": "no server image is started for an endpoint",
    "PORT": "the endpoint is BASE_URL",
    "BIND_ADDRESS": "the endpoint is BASE_URL",
    "GPUS": "no server is started here to give GPUs to",
    "HEALTH_TIMEOUT_S": "no server is started here to wait for",
    "COMPOSE": "no compose file is used for an endpoint",
    "ENGINE": "the endpoint's operator chose its serving engine",
    "DOCKER_CONTEXT": "no server is started on a rig for an endpoint",
}
# Required for compose profiles only (optional fields in the model, checked in _validate).
_COMPOSE_REQUIRED = ("MODEL", "IMAGE", "CTX_SIZE", "PORT")
_T = TypeVar("_T")
_BASE_URL_EXAMPLE = {"openai-compatible": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


class Profile(BaseModel):
    """One validated ``[section]`` of models.conf (DEFAULT values merged in)."""

    # inf and nan are never a setting: HEALTH_TIMEOUT_S=inf would wait forever
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    id: str
    source: Path = Field(description="the models.conf this profile came from")
    provider: Provider = Field(alias="PROVIDER", default="compose")
    # compose profiles: the serving engine (engines.py); declared early so later validators can read it
    engine: Engine = Field(alias="ENGINE", default="llama.cpp")
    name: str = Field(alias="NAME", min_length=1)
    # compose profiles: the server this harness brings up (required ones are checked in _validate)
    model: str | None = Field(alias="MODEL", default=None, min_length=1)
    models_dir: Path = Field(alias="MODELS_DIR", default=Path("models"))
    ctx_size: int | None = Field(alias="CTX_SIZE", default=None, gt=0, le=10_000_000)
    n_gpu_layers: int = Field(alias="N_GPU_LAYERS", default=0, ge=-1, le=100_000)
    extra_args: str = Field(alias="EXTRA_ARGS", default="")
    image: str | None = Field(alias="IMAGE", default=None, min_length=1)
    port: int | None = Field(alias="PORT", default=None, ge=1, le=65535)
    bind_address: str = Field(alias="BIND_ADDRESS", default="127.0.0.1")
    # compose: server slots (also the harness's concurrency); API profiles: requests kept in flight
    parallel: int = Field(alias="PARALLEL", default=1, ge=1, le=256)
    gpus: str = Field(alias="GPUS", default="none")
    health_timeout_s: float = Field(alias="HEALTH_TIMEOUT_S", default=300, gt=0, le=86_400)
    compose_file: str | None = Field(alias="COMPOSE", default=None, description="COMPOSE as written")
    # the rig: a Docker context (`docker context create rig2 --docker host=ssh://me@rig2`); None: this machine
    docker_context: str | None = Field(alias="DOCKER_CONTEXT", default=None)
    # API profiles: where the endpoint is, which model to ask for, which env var holds the key
    endpoint_url: str | None = Field(alias="BASE_URL", default=None, description="BASE_URL as written")
    model_id: str | None = Field(alias="MODEL_ID", default=None, min_length=1)
    api_key_env: str | None = Field(alias="API_KEY_ENV", default=None)
    max_tokens: int | None = Field(alias="MAX_TOKENS", default=None, gt=0, le=10_000_000)
    # Requests the harness keeps in flight in packs and codegen (default: PARALLEL). 1 makes greedy
    # answers repeat exactly: batched decoding over several slots changes the float sums.
    bench_parallel: int | None = Field(alias="BENCH_PARALLEL", default=None, ge=1, le=256)
    # spend guard: stop a run once it has used this many tokens / would cost more than this
    max_total_tokens: int | None = Field(alias="MAX_TOTAL_TOKENS", default=None, gt=0, le=10**12)
    max_cost_usd: float | None = Field(alias="MAX_COST_USD", default=None, gt=0, le=1_000_000)
    price_in_per_mtok: float | None = Field(alias="PRICE_IN_PER_MTOK", default=None, ge=0, le=10_000)
    price_out_per_mtok: float | None = Field(alias="PRICE_OUT_PER_MTOK", default=None, ge=0, le=10_000)

    @property
    def is_bench(self) -> bool:
        return self.id.startswith(BENCH_PREFIX)

    @property
    def is_api(self) -> bool:
        """True for an endpoint someone else runs (no compose server, no model file)."""
        return self.provider != "compose"

    @property
    def wire_format(self) -> WireFormat:
        """The request shape the endpoint speaks; compose servers speak OpenAI's."""
        return "anthropic" if self.provider == "anthropic" else "openai-compatible"

    @property
    def base_url(self) -> str:
        """API profiles: BASE_URL as written; compose: the host port the server publishes."""
        if self.is_api:
            if self.endpoint_url is None:
                raise ProfileError(f"{self.source}: [{self.id}] BASE_URL: required key is missing")
            return self.endpoint_url
        if self.docker_context and (tunnelled := _endpoint_override(self.id)):
            return tunnelled
        return self.base_url_direct

    @property
    def base_url_direct(self) -> str:
        """A compose server's address as it publishes it (on its rig's loopback when BIND_ADDRESS is)."""
        host = "127.0.0.1" if self.bind_address in ("0.0.0.0", "") else self.bind_address
        return f"http://{host}:{self.server_port}"

    @property
    def compose(self) -> str:
        """The compose file under compose/: COMPOSE, else the engine's own."""
        return self.compose_file or ENGINE_COMPOSE[self.engine]

    @property
    def rig(self) -> str:
        """Where the profile's model runs: its DOCKER_CONTEXT, "local" (this machine's engine), or "api"."""
        return "api" if self.is_api else self.docker_context or "local"

    @property
    def requests_in_flight(self) -> int:
        return self.bench_parallel or self.parallel

    @property
    def model_path(self) -> Path:
        return self.models_dir / self.server_model

    @property
    def server_model(self) -> str:
        """MODEL of a compose profile: the model file (or folder, for vLLM and SGLang), relative to MODELS_DIR."""
        return self._compose_value(self.model, "MODEL", "model file")

    @property
    def server_image(self) -> str:
        """IMAGE of a compose profile: the server image compose starts."""
        return self._compose_value(self.image, "IMAGE", "server image")

    @property
    def server_port(self) -> int:
        """PORT of a compose profile: the host port the server publishes."""
        return self._compose_value(self.port, "PORT", "port")

    @property
    def server_ctx_size(self) -> int:
        """CTX_SIZE of a compose profile: the server's context size in tokens."""
        return self._compose_value(self.ctx_size, "CTX_SIZE", "context size")

    def _compose_value(self, value: _T | None, key: str, what: str) -> _T:
        # load_profiles guarantees compose profiles have these; a Profile built by hand may not
        if self.is_api:
            raise ProfileError(f"{self.source}: [{self.id}] is an API profile (PROVIDER={self.provider}): "
                               f"it has no {what}")
        if value is None:
            raise ProfileError(f"{self.source}: [{self.id}] {key}: required key is missing")
        return value

    @property
    def extra_args_list(self) -> list[str]:
        return [word for word in shlex.split(self.extra_args) if word]

    @property
    def uses_gpus(self) -> bool:
        return self.gpus != "none"

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: str, info: ValidationInfo) -> str:
        if not (value in ("none", "all") or re.fullmatch(r"\d+(,\d+)*", value)):
            raise ValueError("expected none, all, or comma-separated GPU ids such as 0,1")
        engine = info.data.get("engine")
        if value == "all" and engine in ("vllm", "sglang"):
            # the GPU count is the tensor-parallel size, and "all" does not say how many there are
            raise ValueError(f"ENGINE={engine} splits the model over the GPUs listed (tensor-parallel size); "
                             "name them, e.g. GPUS=0 or GPUS=0,1")
        return value

    @field_validator("extra_args")
    @classmethod
    def _check_extra_args(cls, value: str, info: ValidationInfo) -> str:
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split like a shell command line ({exc})") from None
        if words == [""]:
            return ""  # EXTRA_ARGS="" means no arguments, not one empty argument
        engine = info.data.get("engine")  # absent when ENGINE itself was refused
        for word in words:
            if not word:
                raise ValueError("has an empty argument ('' or \"\"); remove it")
            owned = owned_flag(engine, word) if engine else None
            if owned:
                raise ValueError(f"sets {owned[0]}, which the profile sets through {owned[1]}")
        return value

    @field_validator("bind_address")
    @classmethod
    def _check_bind_address(cls, value: str) -> str:
        if value == "":
            return value  # compose reads an empty address as every interface, like 0.0.0.0
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("expected an IP address such as 127.0.0.1 or 0.0.0.0") from None
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("must be a path inside MODELS_DIR (no leading / and no '..')")
        return value

    @field_validator("compose_file")
    @classmethod
    def _check_compose(cls, value: str) -> str:
        if "/" in value or not value.endswith((".yml", ".yaml")):
            raise ValueError("must be the file name of a compose file under compose/")
        return value

    @field_validator("docker_context")
    @classmethod
    def _check_docker_context(cls, value: str) -> str:
        if not _CONTEXT_RE.match(value):
            raise ValueError("must be the name of a Docker context (`docker context ls`), e.g. rig2")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint_url(cls, value: str) -> str:
        # the value is never echoed back: it may carry user:password@
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError("has a port that is not a number") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host, e.g. https://api.openai.com/v1")
        if parts.query or parts.fragment:
            raise ValueError("a base URL takes no ?query or #fragment")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _check_api_key_env(cls, value: str) -> str:
        # never echoed back: a malformed value is most likely the key itself
        if not _ENV_NAME_RE.match(value):
            raise ValueError("must be the NAME of an environment variable that holds the key "
                             "(letters, digits and _, not starting with a digit), never the key itself")
        return value


def _endpoint_override(profile_id: str) -> str | None:
    try:
        overrides = json.loads(os.environ.get(ENDPOINT_OVERRIDES_ENV) or "{}")
    except ValueError:
        return None
    value = overrides.get(profile_id) if isinstance(overrides, dict) else None
    return value if isinstance(value, str) and value.startswith("http://127.0.0.1:") else None


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
        if key not in PROFILE_KEYS and _holds_a_secret(key):
            raise _fail(path, number, f"{where}: unknown key; a profile never holds an API key: set "
                                      "API_KEY_ENV to the name of an environment variable that holds it "
                                      "(e.g. API_KEY_ENV=OPENAI_API_KEY)")
        if key not in PROFILE_KEYS:
            hint = difflib.get_close_matches(key, PROFILE_KEYS, n=1)
            suggestion = f"; did you mean {hint[0]}?" if hint else ""
            raise _fail(path, number, f"{where}: unknown key{suggestion} (known: {', '.join(PROFILE_KEYS)})")
        if key in current.values:
            raise _fail(path, number, f"{where}: duplicate key (first set on line {current.lines[key]})")
        current.values[key] = _without_comment(value).strip()
        current.lines[key] = number
    return sections


def _without_comment(value: str) -> str:
    """The value before an inline comment: whitespace then ``#``, outside quotes."""
    quote = ""
    for index, char in enumerate(value):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and index > 0 and value[index - 1].isspace():
            return value[:index]
    return value


def _holds_a_secret(key: str) -> bool:
    return key.endswith(("API_KEY", "_SECRET", "_PASSWORD")) or key in ("KEY", "SECRET", "PASSWORD", "TOKEN")


def _validate(path: Path, section: _Section, defaults: _Section | None) -> Profile:
    values = dict(defaults.values) if defaults else {}
    lines = dict(defaults.lines) if defaults else {}
    values.update(section.values)
    lines.update(section.lines)
    where = f"[{section.name}]"
    provider = values.get("PROVIDER", "compose")
    if provider not in PROVIDERS:
        line = lines.get("PROVIDER", section.line)
        raise _fail(path, line, f"{where} PROVIDER: expected one of {', '.join(PROVIDERS)} (got {provider!r})")
    # (key, message) of every problem; the first in key order is reported, as pydantic would
    problems: list[tuple[str, str]] = []
    if provider == "compose":
        if "BASE_URL" in section.values:
            problems.append(("BASE_URL", "not used by PROVIDER=compose (the URL comes from BIND_ADDRESS and PORT; "
                                         "set PROVIDER=openai-compatible for an endpoint someone else runs)"))
        values.pop("BASE_URL", None)  # inherited from [DEFAULT] for the API profiles
        problems += [(key, "required key is missing") for key in _COMPOSE_REQUIRED if key not in values]
        engine = values.get("ENGINE", "llama.cpp")
        if engine in ENGINES and engine != "llama.cpp":
            # refused in the profile's own section; inherited from [DEFAULT] (for llama.cpp profiles), ignored
            label = engine_spec(engine).label
            problems += [(key, f"not used by ENGINE={engine} ({why.format(label=label)})")
                         for key, why in LLAMA_CPP_ONLY_KEYS.items() if key in section.values]
            values = {key: value for key, value in values.items() if key not in LLAMA_CPP_ONLY_KEYS}
        models_dir = Path(values.get("MODELS_DIR", "models"))
        if values.get("DOCKER_CONTEXT") and not models_dir.is_absolute():
            problems.append(("MODELS_DIR", f"must be an absolute path on the rig when DOCKER_CONTEXT is set "
                                           f"(got {str(models_dir)!r}, a path relative to this machine's "
                                           f"{path.name})"))
        values["MODELS_DIR"] = str(models_dir if models_dir.is_absolute() else path.parent / models_dir)
    else:
        problems += [(key, f"not used by PROVIDER={provider} ({why})")
                     for key, why in _COMPOSE_ONLY.items() if key in section.values]
        values = {key: value for key, value in values.items() if key not in _COMPOSE_ONLY}
        if "BASE_URL" not in values:
            problems.append(("BASE_URL", f"required key is missing for PROVIDER={provider} "
                                         f"(the endpoint's URL, e.g. {_BASE_URL_EXAMPLE[provider]})"))
        if provider == "anthropic" and "MODEL_ID" not in values:
            problems.append(("MODEL_ID", "required key is missing for PROVIDER=anthropic (the Messages API "
                                         "needs the model's id, e.g. claude-sonnet-4-5)"))
    if "MAX_COST_USD" in values and not {"PRICE_IN_PER_MTOK", "PRICE_OUT_PER_MTOK"} <= values.keys():
        problems.append(("MAX_COST_USD", "needs PRICE_IN_PER_MTOK and PRICE_OUT_PER_MTOK (USD per million "
                                         "prompt/completion tokens) to count spend"))
    profile = None
    try:
        profile = Profile.model_validate({"id": section.name, "source": path, **values})
    except ValidationError as exc:
        problems += [_describe(error, values) for error in exc.errors()]
    if profile is not None and profile.provider == "compose" and (profile.bench_parallel or 0) > profile.parallel:
        problems.append(("BENCH_PARALLEL", f"{profile.bench_parallel} requests in flight is more than the server's "
                                           f"PARALLEL {profile.parallel} slots: the extra requests would only queue"))
    if not problems and profile is not None:
        return profile
    order = {key: index for index, key in enumerate(PROFILE_KEYS)}
    key, message = min(problems, key=lambda problem: order.get(problem[0], len(order)))
    raise _fail(path, lines.get(key, section.line), f"{where} {key}: {message}")


def _describe(error: ErrorDetails, values: dict[str, str]) -> tuple[str, str]:
    key = str(error["loc"][0]) if error["loc"] else "?"
    if error["type"] == "missing":
        return key, "required key is missing"
    if error["type"] in ("int_parsing", "float_parsing"):
        return key, f"expected a {'whole ' if error['type'] == 'int_parsing' else ''}number, got {values.get(key)!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if key in values and key not in ("BASE_URL", "API_KEY_ENV"):  # those two may hold a secret
        message += f" (got {values[key]!r})"
    return key, message


def load_profiles(path: Path) -> dict[str, Profile]:
    """Parse and validate every profile in a models.conf, in file order."""
    text = _read_config(path)
    sections = _parse_sections(path, text)
    defaults = next((s for s in sections if s.name == DEFAULT_SECTION), None)
    profiles = {s.name: _validate(path, s, defaults) for s in sections if s.name != DEFAULT_SECTION}
    if not profiles:
        raise ProfileError(f"{path}: no profiles defined (add a [profile-id] section)")
    projects: dict[str, _Section] = {}
    for section in (s for s in sections if s.name != DEFAULT_SECTION):
        project = section.name.replace(".", "-")  # compose project names have no dots
        if project in projects:
            raise _fail(path, section.line, f"[{section.name}]: names the same compose project as "
                                            f"[{projects[project].name}] (line {projects[project].line}); "
                                            "'.' and '-' are the same there, so `down` of one would remove both")
        projects[project] = section
    return profiles


def _read_config(path: Path) -> str:
    """The config's text: a regular file of sane size, UTF-8, a byte-order mark skipped."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ProfileError(f"{path}: not a regular file (pass --config PATH of a models.conf)")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ProfileError(f"{path}: {info.st_size} bytes; a models.conf is at most {MAX_CONFIG_BYTES} bytes")
        return path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except FileNotFoundError:
        raise ProfileError(f"{path}: config file not found (pass --config PATH)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read config file ({exc})") from None


def get_profile(path: Path, profile_id: str, *, require_model: bool = True) -> Profile:
    """Load one profile by id; optionally insist that its model file exists (compose profiles)."""
    profiles = load_profiles(path)
    if profile_id not in profiles:
        hint = difflib.get_close_matches(profile_id, profiles, n=1)
        suggestion = f"; did you mean {hint[0]}?" if hint else ""
        known = ", ".join(list(profiles)[:20]) + (f", … ({len(profiles) - 20} more)" if len(profiles) > 20 else "")
        raise ProfileError(f"{path}: no profile [{profile_id}]{suggestion} (known: {known})")
    profile = profiles[profile_id]
    if require_model and not profile.is_api and not profile.docker_context:  # a rig's files are the rig's
        check_model_file(profile)
    return profile


def check_model_file(profile: Profile) -> None:
    """Raise a ProfileError naming the MODEL line when the model (file, or folder where the engine
    takes one) is missing or links outside MODELS_DIR."""
    line = key_line(profile, "MODEL")
    where = f"{profile.source}:{line}: [{profile.id}] MODEL"
    path, root = profile.model_path, profile.models_dir.resolve()
    spec = engine_spec(profile.engine)
    if spec.model_folder_ok and path.is_dir():
        outside = _link_leaving(path, root)
        if outside is not None:
            raise ProfileError(f"{where}: {outside} (in the model folder) links to {outside.resolve()}, outside "
                               f"MODELS_DIR {root}; the container only sees MODELS_DIR (copy the files, or set "
                               "MODELS_DIR to a folder that holds the link targets too)")
        return
    if not path.is_file():
        if spec.model_folder_ok:
            raise ProfileError(f"{where}: model not found: {path} (ENGINE={profile.engine} serves a model folder, "
                               "e.g. a Hugging Face download, or a file under MODELS_DIR)")
        raise ProfileError(f"{where}: model file not found: {path}")
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        # only MODELS_DIR is mounted: the container cannot follow a link that leaves it
        raise ProfileError(f"{where}: {path} links to {resolved}, outside MODELS_DIR {root}; "
                           "the container only sees MODELS_DIR (copy or hard-link the file, or change MODELS_DIR)")


_MAX_FOLDER_ENTRIES = 100_000  # a model folder holds tens of files; stop looking in a mistaken huge tree


def _link_leaving(folder: Path, root: Path) -> Path | None:
    """The first entry of ``folder`` (the folder itself included) whose link target lies outside ``root``.

    Hugging Face cache snapshots are folders of links into ../../blobs: fine while MODELS_DIR holds both."""
    if not folder.resolve().is_relative_to(root):
        return folder
    seen = 0
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            entry = Path(parent) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                return entry
            seen += 1
            if seen >= _MAX_FOLDER_ENTRIES:
                return None
    return None


def key_line(profile: Profile, key: str) -> int:
    """The line of models.conf that sets ``key`` for this profile (its own section, else DEFAULT)."""
    sections = _parse_sections(profile.source, _read_config(profile.source))
    for wanted in (profile.id, DEFAULT_SECTION):
        for section in sections:
            if section.name == wanted and key in section.lines:
                return section.lines[key]
    return next(s.line for s in sections if s.name == profile.id)
