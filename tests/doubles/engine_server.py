"""vLLM and SGLang as the harness meets them, on the one scripted server (``model_server``).

No GPU here, so no real vLLM or SGLang can start: ``EngineServer`` answers in the shapes those
servers send. The bodies are written for these tests from the engines' documented APIs (not
captured from a live server): vLLM's ``/v1/models`` with ``root`` and ``max_model_len``;
SGLang's ``/get_model_info`` and ``/get_server_info`` (its launch settings plus scheduler
numbers); FastAPI's ``{"detail": "Not Found"}`` for llama.cpp's ``/props``, which neither has.

While loading (``ready_after_s``), vLLM has nothing listening yet; the double hangs up before
answering, which a client sees the same way (no HTTP answer). SGLang answers 503 until its
first generation works. Chat requests must name the served model, as on both engines (404
otherwise); answers suit verify: "Paris." to the fact question, a counted stream, a
``get_weather`` call when tools are offered.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from tests.doubles.model_server import Raw, Reply, Request, Response, ScriptedModelServer, json_raw

EngineName = Literal["vllm", "sglang"]
NOT_FOUND = json_raw(404, {"detail": "Not Found"})


def vllm_models(served_name: str, model_path: str, max_model_len: int) -> dict[str, Any]:
    """``GET /v1/models`` of ``vllm serve PATH --served-model-name NAME --max-model-len N``."""
    card = {"id": served_name, "object": "model", "created": 1767225600, "owned_by": "vllm", "root": model_path,
            "parent": None, "max_model_len": max_model_len,
            "permission": [{"id": "modelperm-0a1b2c", "object": "model_permission", "created": 1767225600,
                            "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
                            "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
                            "organization": "*", "group": None, "is_blocking": False}]}
    return {"object": "list", "data": [card]}


def sglang_models(served_name: str, model_path: str, context_length: int) -> dict[str, Any]:
    """``GET /v1/models`` of an SGLang server."""
    card = {"id": served_name, "object": "model", "created": 1767225600, "owned_by": "sglang", "root": model_path,
            "max_model_len": context_length}
    return {"object": "list", "data": [card]}


def sglang_model_info(model_path: str) -> dict[str, Any]:
    """``GET /get_model_info``."""
    return {"model_path": model_path, "tokenizer_path": model_path, "is_generation": True,
            "preferred_sampling_params": None, "weight_version": "default"}


def sglang_server_info(served_name: str, model_path: str, context_length: int, max_running_requests: int,
                       tp_size: int) -> dict[str, Any]:
    """``GET /get_server_info``: the launch settings (a few of the many), scheduler numbers, version."""
    return {"model_path": model_path, "tokenizer_path": model_path, "served_model_name": served_name,
            "host": "0.0.0.0", "port": 30000, "context_length": context_length,
            "max_running_requests": max_running_requests, "tp_size": tp_size, "dp_size": 1,
            "mem_fraction_static": 0.85, "chunked_prefill_size": 8192, "schedule_policy": "fcfs",
            "tool_call_parser": "qwen25", "max_total_num_tokens": 187_264, "max_req_input_len": context_length - 5,
            "internal_states": [{"last_gen_throughput": 0.0, "avg_spec_accept_length": None}],
            "version": "0.4.10"}


def engine_reply(request: Request) -> Reply:
    """What the model says: a tool call when tools are offered, else an answer to the question."""
    body = request.json if isinstance(request.json, dict) else {}
    if body.get("tools"):
        return Reply(content=None, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"},
                                                "id": "chatcmpl-tool-7f3e"}])
    last = (body.get("messages") or [{}])[-1].get("content") or ""
    if "capital of France" in str(last):
        return Reply(content="Paris.", usage={"prompt_tokens": 24, "completion_tokens": 3, "total_tokens": 27})
    return Reply(content="1, 2, 3, 4, 5", usage={"prompt_tokens": 15, "completion_tokens": 13, "total_tokens": 28})


class EngineServer(ScriptedModelServer):
    """A vLLM- or SGLang-shaped server on ``base_url``; ``reported`` overrides what it says it loaded."""

    def __init__(self, engine: EngineName, *, served_name: str, model_path: str, context_tokens: int,
                 slots: int = 1, tp_size: int = 1, ready_after_s: float = 0.0,
                 routes: dict[str, Response] | None = None) -> None:
        self.engine = engine
        self.served_name = served_name
        self.ready_at = time.monotonic() + ready_after_s
        if engine == "vllm":
            own: dict[str, Response] = {"/health": Raw(200), "/v1/models": json_raw(
                200, vllm_models(served_name, model_path, context_tokens))}
        else:
            own = {"/health": Raw(200), "/health_generate": Raw(200),
                   "/v1/models": json_raw(200, sglang_models(served_name, model_path, context_tokens)),
                   "/get_model_info": json_raw(200, sglang_model_info(model_path)),
                   "/get_server_info": json_raw(200, sglang_server_info(served_name, model_path, context_tokens,
                                                                        slots, tp_size))}
        super().__init__(engine_reply, model_ids=[served_name], slots=None,
                         routes={"/props": NOT_FOUND, **own, **(routes or {})})

    @property
    def ready(self) -> bool:
        return time.monotonic() >= self.ready_at

    def _answer(self, request: Request) -> Response:
        if not self.ready:
            if self.engine == "vllm":  # nothing listens yet: no HTTP answer at all
                return Raw(200, b"{}", close_after_bytes=0)
            return Raw(503)
        model = request.json.get("model") if isinstance(request.json, dict) else None
        if request.wire and model is not None and model != self.served_name:
            return json_raw(404, {"error": {"message": f"The model `{model}` does not exist.", "type": "NotFoundError",
                                            "param": "model", "code": 404}})
        return super()._answer(request)
