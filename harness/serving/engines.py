"""The serving engines a compose profile picks with ``ENGINE``, and what differs between them.

All three speak the OpenAI chat API, so the client, verify, throughput, packs and EvalPlus need
not know which one answers. What differs is kept here, one ``EngineSpec`` each: the compose file
and its service, the port inside the container, the path that says "ready", the flags the harness
sets from profile keys (EXTRA_ARGS may not set them again), and how to ask a running server what
it loaded, read into one ``LoadedModel``.

* llama.cpp (``llama-server``): a GGUF file; ``/health``; ``/props`` says context and slots.
* vLLM (``vllm serve``): a Hugging Face model folder (or a GGUF file); ``/health`` answers once
  the engine is up (before that nothing listens); ``/v1/models`` gives ``max_model_len``.
* SGLang (``sglang.launch_server``): a model folder; ``/health_generate`` answers 200 only
  once a token can be generated (plain ``/health`` is process liveness in older releases);
  ``/get_model_info`` and ``/get_server_info`` say what was loaded and with which settings.

profiles.py reads the flag tables from here, so this module knows nothing of profiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import httpx
from pydantic import BaseModel, ConfigDict

from harness.errors import EndpointError

Engine = Literal["llama.cpp", "vllm", "sglang"]
ENGINES: tuple[str, ...] = get_args(Engine)
MODELS_MOUNT = "/models"  # where every compose file mounts MODELS_DIR, read-only


class EngineSpec(BaseModel):
    """What the harness must know to serve, wait for and question one engine."""

    model_config = ConfigDict(frozen=True)

    name: Engine
    label: str  # as the engine's own docs spell it, for messages
    compose_file: str  # under compose/; the GPU overlay is <stem>.gpu.yml beside it
    service: str  # the compose service that runs the server
    container_port: int
    health_path: str
    owned_flags: dict[str, str]  # flag -> the profile key the harness sets it from
    model_folder_ok: bool  # MODEL may name a folder (Hugging Face layout), not only a file
    # vLLM reads --max_model_len as --max-model-len; SGLang refuses it, so refusing it there is harmless
    flags_take_underscores: bool


_SERVER_FLAGS = {"--host": "BIND_ADDRESS", "--port": "PORT"}
ENGINE_SPECS: dict[str, EngineSpec] = {
    "llama.cpp": EngineSpec(
        name="llama.cpp", label="llama.cpp", compose_file="llama-cpp.yml", service="llama-server",
        container_port=8080, health_path="/health", model_folder_ok=False, flags_take_underscores=False,
        owned_flags={
            "-m": "MODEL", "--model": "MODEL",
            "-c": "CTX_SIZE", "--ctx-size": "CTX_SIZE",
            "-ngl": "N_GPU_LAYERS", "--n-gpu-layers": "N_GPU_LAYERS", "--gpu-layers": "N_GPU_LAYERS",
            "-np": "PARALLEL", "--parallel": "PARALLEL",
            **_SERVER_FLAGS,
        },
    ),
    "vllm": EngineSpec(
        name="vllm", label="vLLM", compose_file="vllm.yml", service="vllm-server",
        container_port=8000, health_path="/health", model_folder_ok=True, flags_take_underscores=True,
        owned_flags={
            "--model": "MODEL", "--served-model-name": "MODEL_ID",
            "--max-model-len": "CTX_SIZE",
            "--max-num-seqs": "PARALLEL",
            "-tp": "GPUS", "--tensor-parallel-size": "GPUS",
            **_SERVER_FLAGS,
        },
    ),
    "sglang": EngineSpec(
        name="sglang", label="SGLang", compose_file="sglang.yml", service="sglang-server",
        container_port=30000, health_path="/health_generate", model_folder_ok=True, flags_take_underscores=True,
        owned_flags={
            "--model-path": "MODEL", "--model": "MODEL", "--served-model-name": "MODEL_ID",
            "--context-length": "CTX_SIZE",
            "--max-running-requests": "PARALLEL",
            "--tp": "GPUS", "--tp-size": "GPUS", "--tensor-parallel-size": "GPUS",
            **_SERVER_FLAGS,
        },
    ),
}
# Profile keys that mean something to one engine only, with what to do instead elsewhere.
LLAMA_CPP_ONLY_KEYS = {
    "N_GPU_LAYERS": "it is llama.cpp's layer offload; {label} keeps every layer on the GPUs it is given "
                    "(remove the key, or set ENGINE=llama.cpp)",
}


def engine_spec(engine: str) -> EngineSpec:
    """The spec of a validated ENGINE value."""
    return ENGINE_SPECS[engine]


def owned_flag(engine: str, word: str) -> tuple[str, str] | None:
    """(flag, profile key) when an EXTRA_ARGS word sets a flag the harness owns for this engine."""
    spec = engine_spec(engine)
    flag = word.split("=", 1)[0]
    if spec.flags_take_underscores and flag.startswith("--"):
        flag = "--" + flag[2:].replace("_", "-")
    key = spec.owned_flags.get(flag)
    return (word.split("=", 1)[0], key) if key else None


def tensor_parallel_size(gpus: str) -> int:
    """GPUs the model is split over: one per listed id (GPUS=0,1 -> 2); 1 without GPUs."""
    if gpus in ("none", "all"):
        return 1
    return len(gpus.split(","))


def served_model_name(model: str, model_id: str | None) -> str:
    """The id vLLM and SGLang serve under, so requests know it: MODEL_ID when set, else MODEL as written."""
    return model_id or model.rstrip("/")


def health_url(base_url: str, engine: str) -> str:
    """The URL that answers 200 once a server of this engine at ``base_url`` can serve."""
    return base_url.rstrip("/") + engine_spec(engine).health_path


class LoadedModel(BaseModel):
    """What a running server says it loaded, in one shape for every engine (None: not reported)."""

    model_config = ConfigDict(frozen=True)

    engine: Engine
    source: str  # the paths asked, e.g. "/get_model_info + /get_server_info"
    model: str | None  # the id it serves under
    model_path: str | None  # where it read the weights, inside the container
    context_tokens: int | None  # per request: CTX_SIZE as the engine understood it
    slots: int | None  # requests decoded at once


Getter = Callable[[str], httpx.Response]


def ask_loaded(engine: str, get: Getter) -> LoadedModel:
    """Ask a running server what it loaded (``get`` fetches a server-root path, e.g. ``EndpointClient.get``).

    Raises EndpointError naming the path when the engine's own endpoint is missing or answers nonsense
    (a server of another engine, say)."""
    if engine == "vllm":
        return parse_vllm_models(_get_json(get, "/v1/models"))
    if engine == "sglang":
        return parse_sglang_info(_get_json(get, "/get_model_info"), _get_json(get, "/get_server_info"))
    return parse_llama_cpp_props(_get_json(get, "/props"), _get_json(get, "/v1/models"))


def _get_json(get: Getter, path: str) -> dict[str, Any]:
    response = get(path)
    if response.status_code != 200:
        raise EndpointError(f"{path}: HTTP {response.status_code} {' '.join(response.text.split())[:80]!r}")
    try:
        body = response.json()
    except ValueError:  # json.JSONDecodeError included
        raise EndpointError(f"{path}: not JSON: {' '.join(response.text.split())[:80]!r}") from None
    if not isinstance(body, dict):
        raise EndpointError(f"{path}: expected a JSON object, got {type(body).__name__}")
    return body


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_model(models: dict[str, Any]) -> dict[str, Any]:
    data = models.get("data")
    first = data[0] if isinstance(data, list) and data else {}
    return first if isinstance(first, dict) else {}


def parse_llama_cpp_props(props: dict[str, Any], models: dict[str, Any]) -> LoadedModel:
    """llama-server's ``/props`` (context per slot, slots, model path) and ``/v1/models`` (the id)."""
    settings = props.get("default_generation_settings")
    settings = settings if isinstance(settings, dict) else {}
    return LoadedModel(engine="llama.cpp", source="/props + /v1/models", model=_str(_first_model(models).get("id")),
                       model_path=_str(props.get("model_path")), context_tokens=_int(settings.get("n_ctx")),
                       slots=_int(props.get("total_slots")))


def parse_vllm_models(models: dict[str, Any]) -> LoadedModel:
    """vLLM's ``/v1/models``: id (the served name), root (the weights) and max_model_len; slots are not told."""
    card = _first_model(models)
    return LoadedModel(engine="vllm", source="/v1/models", model=_str(card.get("id")),
                       model_path=_str(card.get("root")), context_tokens=_int(card.get("max_model_len")), slots=None)


def parse_sglang_info(model_info: dict[str, Any], server_info: dict[str, Any]) -> LoadedModel:
    """SGLang's ``/get_model_info`` (model_path) and ``/get_server_info`` (its launch settings)."""
    return LoadedModel(engine="sglang", source="/get_model_info + /get_server_info",
                       model=_str(server_info.get("served_model_name")),
                       model_path=_str(model_info.get("model_path")) or _str(server_info.get("model_path")),
                       context_tokens=_int(server_info.get("context_length")),
                       slots=_int(server_info.get("max_running_requests")))
