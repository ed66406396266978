"""Concurrent, resumable code generation against an OpenAI-compatible chat endpoint.

We use EvalPlus's prompt and samples format but our own httpx client, so we control how
many requests are in flight (the server's slots), max_tokens, thinking, timeouts and
resume. Every finished task is appended to the samples journal at once (flushed and
fsynced); a rerun skips finished tasks, redoes failed requests, and finally rewrites the
file in dataset order, so an interrupted-and-resumed run gives the same file as an
uninterrupted one. A request error is recorded as data (status "error"), never as text.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field

from harness.errors import EndpointError
from harness.evalplus.datasets import Task
from harness.evalplus.sanitize import extract_solution

# EvalPlus 0.3.1's chat prompt (its OpenAI provider): system message and instruction prefix.
SYSTEM_PROMPT = "You are a helpful assistant good at coding."
INSTRUCTION_PREFIX = ("Please provide a self-contained Python script that solves the following problem "
                      "in a markdown code block:")
DEFAULT_MAX_TOKENS = 4096


class CodegenConfig(BaseModel):
    """Everything that shapes the requests; recorded beside the samples."""

    model_config = ConfigDict(frozen=True)

    base_url: str
    model: str
    parallel: int = Field(default=1, ge=1)
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, gt=0)
    sampling_from_server: bool = False
    thinking: bool | None = None
    reasoning_effort: str | None = None
    request_timeout_s: float = Field(default=600, gt=0)
    retries: int = Field(default=2, ge=0)

    @property
    def canonical(self) -> bool:
        return not self.sampling_from_server


class SampleRecord(BaseModel):
    """One journal line: an evalplus sample ({task_id, solution}) plus how it was produced."""

    task_id: str
    solution: str
    provenance: dict[str, Any]


class CodegenSummary(BaseModel):
    samples_path: Path
    n_tasks: int
    generated: int
    resumed: int
    empty: int
    truncated: int
    recovered_from_reasoning: int
    errors: int
    completion_tokens: int
    wall_s: float
    canonical: bool
    server_sampling: dict[str, Any] | None = None


def user_message(task: Task) -> str:
    return f"{INSTRUCTION_PREFIX}\n```python\n{task.prompt.strip()}\n```"


def request_body(task: Task, config: CodegenConfig) -> dict[str, Any]:
    """The chat-completions body for one task (greedy unless the server's sampling is asked for)."""
    body: dict[str, Any] = {
        "model": config.model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_message(task)}],
        "max_tokens": config.max_tokens,
    }
    if not config.sampling_from_server:
        body["temperature"] = 0.0
    if config.thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": config.thinking}
    if config.reasoning_effort:
        body["reasoning_effort"] = config.reasoning_effort
    return body


def api_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


def raw_path_for(samples_path: Path) -> Path:
    return samples_path.with_name(samples_path.name.removesuffix(".jsonl") + ".raw.jsonl")


def _cut_torn_line(path: Path) -> bytes:
    """The file's complete lines; a torn last line (killed mid-write) is cut off the file."""
    if not path.is_file():
        return b""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with path.open("r+b") as handle:
            handle.truncate(len(data))
    return data


def read_journal(path: Path) -> list[SampleRecord]:
    """Finished lines of a samples journal."""
    data = _cut_torn_line(path)
    records = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            records.append(SampleRecord.model_validate_json(line))
    return records


def _append_line(path: Path, document: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(document) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _rewrite_in_order(path: Path, records: list[dict[str, Any]], order: dict[str, int]) -> None:
    latest = {r["task_id"]: r for r in records}  # a redone task keeps its newest line
    ordered = sorted(latest.values(), key=lambda r: order.get(r["task_id"], len(order)))
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(json.dumps(r) + "\n" for r in ordered), encoding="utf-8")
    partial.replace(path)


def _format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class _Progress:
    def __init__(self, total: int, already: int, emit: Callable[[str], None]):
        self.total, self.done, self.already, self.emit = total, already, already, emit
        self.started = time.monotonic()

    def finished(self, record: SampleRecord) -> None:
        self.done += 1
        p = record.provenance
        elapsed = time.monotonic() - self.started
        rate = (self.done - self.already) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        state = p["status"] if p["status"] != "ok" else (
            "empty" if not record.solution.strip() else "truncated" if p.get("finish_reason") == "length"
            else "recovered" if p.get("recovered_from_reasoning") else "ok")
        self.emit(f"[{self.done}/{self.total}] {record.task_id} {state} {p.get('completion_tokens') or 0} tok "
                  f"{p.get('latency_s', 0):.1f}s | {rate * 60:.1f} tasks/min, ETA {_format_duration(eta)}")


async def _ask(client: httpx.AsyncClient, url: str, body: dict[str, Any], config: CodegenConfig
               ) -> tuple[dict[str, Any] | None, str | None]:
    """POST with bounded retries: (response json, None) or (None, error). Raises when unreachable."""
    error = ""
    for attempt in range(config.retries + 1):
        if attempt:
            await asyncio.sleep(min(2 ** attempt, 10))
        try:
            response = await client.post(url, json=body, timeout=config.request_timeout_s)
        except httpx.ConnectError as exc:
            error = f"cannot connect to {url}: {exc}"
            continue
        except httpx.TimeoutException:
            error = f"no answer within {config.request_timeout_s:.0f}s"
            continue
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code >= 500:
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            continue
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}: {response.text[:200]}"
        try:
            return response.json(), None
        except ValueError:
            return None, f"response is not JSON: {response.text[:200]}"
    if error.startswith("cannot connect"):
        raise EndpointError(error)
    return None, error


def _parse_reply(reply: dict[str, Any]) -> tuple[str | None, str | None, str | None, int | None]:
    choice = (reply.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    usage = reply.get("usage") or {}
    return message.get("content"), reasoning, choice.get("finish_reason"), usage.get("completion_tokens")


async def _generate(tasks: list[Task], config: CodegenConfig, samples_path: Path, progress: _Progress,
                    pool: ProcessPoolExecutor) -> None:
    url = f"{api_root(config.base_url)}/v1/chat/completions"
    slots = asyncio.Semaphore(config.parallel)
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=config.parallel, max_keepalive_connections=config.parallel)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one(task: Task) -> None:
            async with slots:  # a slot is held only while the server works on the request
                started = time.monotonic()
                reply, error = await _ask(client, url, request_body(task, config), config)
                latency_s = round(time.monotonic() - started, 3)
            provenance: dict[str, Any] = {"status": "ok" if error is None else "error", "latency_s": latency_s}
            solution, raw = "", None
            if error is not None:
                provenance["error"] = error
            else:
                content, reasoning, finish_reason, tokens = _parse_reply(reply)
                extracted = await loop.run_in_executor(pool, extract_solution, content, reasoning, task.entry_point)
                solution, raw = extracted.solution, content
                provenance.update(finish_reason=finish_reason, completion_tokens=tokens,
                                  content_chars=len(content or ""), reasoning_chars=len(reasoning or ""),
                                  recovered_from_reasoning=extracted.recovered_from_reasoning)
                _append_line(raw_path_for(samples_path), {"task_id": task.task_id, "solution": raw or "",
                                                          "reasoning": reasoning or ""})
            record = SampleRecord(task_id=task.task_id, solution=solution, provenance=provenance)
            _append_line(samples_path, record.model_dump())
            progress.finished(record)

        await asyncio.gather(*(one(task) for task in tasks))


def server_sampling_defaults(base_url: str, timeout_s: float = 10) -> dict[str, Any] | None:
    """The server's default sampling settings from llama.cpp's /props (None when absent)."""
    try:
        response = httpx.get(f"{api_root(base_url)}/props", timeout=timeout_s)
        response.raise_for_status()
        settings = response.json().get("default_generation_settings") or {}
    except (httpx.HTTPError, ValueError):
        return None
    params = settings.get("params", settings)
    keys = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "presence_penalty", "seed")
    return {k: params[k] for k in keys if k in params} or None


def run_codegen(tasks: list[Task], config: CodegenConfig, samples_path: Path, *,
                emit: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
                ) -> CodegenSummary:
    """Generate a sample for every task not already finished in the journal at samples_path."""
    samples_path.parent.mkdir(parents=True, exist_ok=True)
    _cut_torn_line(raw_path_for(samples_path))
    finished = {r.task_id for r in read_journal(samples_path) if r.provenance.get("status") == "ok"}
    todo = [t for t in tasks if t.task_id not in finished]
    resumed = len(tasks) - len(todo)
    if resumed:
        emit(f"resuming: {resumed} of {len(tasks)} tasks already in {samples_path}")
    sampling = server_sampling_defaults(config.base_url) if config.sampling_from_server else None
    started = time.monotonic()
    progress = _Progress(len(tasks), resumed, emit)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            asyncio.run(_generate(todo, config, samples_path, progress, pool))
        finally:
            order = {t.task_id: i for i, t in enumerate(tasks)}
            _rewrite_in_order(samples_path, [r.model_dump() for r in read_journal(samples_path)], order)
            raw = [json.loads(line) for line in _cut_torn_line(raw_path_for(samples_path)).decode().splitlines()
                   if line.strip()]
            _rewrite_in_order(raw_path_for(samples_path), raw, order)
    wanted = {t.task_id for t in tasks}
    records = [r for r in read_journal(samples_path) if r.task_id in wanted]
    return CodegenSummary(
        samples_path=samples_path, n_tasks=len(tasks), generated=len(todo), resumed=resumed,
        empty=sum(1 for r in records if r.provenance.get("status") == "ok" and not r.solution.strip()),
        truncated=sum(1 for r in records if r.provenance.get("finish_reason") == "length"),
        recovered_from_reasoning=sum(1 for r in records if r.provenance.get("recovered_from_reasoning")),
        errors=sum(1 for r in records if r.provenance.get("status") == "error"),
        completion_tokens=sum(r.provenance.get("completion_tokens") or 0 for r in records),
        wall_s=round(time.monotonic() - started, 3), canonical=config.canonical, server_sampling=sampling)
