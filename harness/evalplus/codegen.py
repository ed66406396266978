"""Concurrent, resumable code generation against a chat endpoint (through the one endpoint client).

We use EvalPlus's prompt and samples format but our own client, so we control how many
requests are in flight (the server's slots), max_tokens, thinking, timeouts, keys and
resume. Every finished task is appended to the samples journal at once (flushed and
fsynced); a rerun skips finished tasks, redoes failed requests, and finally rewrites the
file in dataset order, so an interrupted-and-resumed run gives the same file as an
uninterrupted one. A request error is recorded as data (status "error"), never as text.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.endpoint.client import EndpointClient, RetryPolicy
from harness.errors import EndpointError
from harness.evalplus.datasets import Task
from harness.evalplus.sanitize import extract_solution
from harness.files import append_json_line, complete_lines, write_text_atomic

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
    retries: int = Field(default=2, ge=0, description="retries of 429/5xx/lost connections per request")

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


def raw_path_for(samples_path: Path) -> Path:
    return samples_path.with_name(samples_path.name.removesuffix(".jsonl") + ".raw.jsonl")


def read_journal(path: Path) -> list[SampleRecord]:
    """Finished lines of a samples journal (a torn last line is cut off)."""
    return [SampleRecord.model_validate_json(line) for line in complete_lines(path)]


def _rewrite_in_order(path: Path, records: list[dict[str, Any]], order: dict[str, int]) -> None:
    latest = {r["task_id"]: r for r in records}  # a redone task keeps its newest line
    ordered = sorted(latest.values(), key=lambda r: order.get(r["task_id"], len(order)))
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in ordered))


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


def _run_pool(todo: list[Task], config: CodegenConfig, client: EndpointClient, samples_path: Path,
              progress: _Progress, tasks: list[Task]) -> None:
    """Generate ``todo`` with the sanitizer in a worker process; always leave both files in dataset order."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            _generate(todo, config, client, samples_path, progress, pool)
        finally:
            order = {t.task_id: i for i, t in enumerate(tasks)}
            _rewrite_in_order(samples_path, [r.model_dump() for r in read_journal(samples_path)], order)
            raw = [json.loads(line) for line in complete_lines(raw_path_for(samples_path))]
            _rewrite_in_order(raw_path_for(samples_path), raw, order)


def _generate(tasks: list[Task], config: CodegenConfig, client: EndpointClient, samples_path: Path,
              progress: _Progress, pool: ProcessPoolExecutor) -> None:
    """Ask for every task, ``config.parallel`` requests in flight; stop early when the endpoint is gone."""
    unreachable: list[str] = []  # why the endpoint is gone, as the first request that found it so
    stop = threading.Event()  # set when the endpoint is gone or the run is stopped: queued tasks then skip

    def one(task: Task) -> None:
        if stop.is_set():
            return  # leave the rest for a resume
        outcome = client.chat(request_body(task, config), deadline=time.monotonic() + config.request_timeout_s)
        provenance: dict[str, Any] = {"status": "ok" if outcome.reply else "error",
                                      "latency_s": round(outcome.latency_ms / 1000, 3)}
        if outcome.retries:
            provenance["retries"] = [r.model_dump() for r in outcome.retries]
        solution = ""
        if outcome.reply is None:
            provenance["error"] = f"{outcome.failure}: {outcome.error}"
            if outcome.failure == "endpoint_unreachable":
                unreachable.append(outcome.error)
                stop.set()
        else:
            reply = outcome.reply
            extracted = pool.submit(extract_solution, reply.raw_content, reply.reasoning, task.entry_point).result()
            solution = extracted.solution
            provenance.update(finish_reason=reply.finish_reason, completion_tokens=reply.usage.completion_tokens,
                              content_chars=len(reply.raw_content), reasoning_chars=len(reply.reasoning),
                              recovered_from_reasoning=extracted.recovered_from_reasoning)
            append_json_line(raw_path_for(samples_path), {"task_id": task.task_id, "solution": reply.raw_content,
                                                          "reasoning": reply.reasoning})
        record = SampleRecord(task_id=task.task_id, solution=solution, provenance=provenance)
        append_json_line(samples_path, record.model_dump())
        progress.finished(record)

    requests = ThreadPoolExecutor(max_workers=config.parallel, thread_name_prefix="codegen")
    try:
        for future in [requests.submit(one, task) for task in tasks]:
            future.result()
    except BaseException:
        # Ctrl-C or the spend guard: drop queued tasks and abandon those in flight (their connections
        # are closed) rather than wait out their timeout. Finished tasks are in the journal.
        stop.set()
        requests.shutdown(wait=False, cancel_futures=True)
        client.close()
        raise
    requests.shutdown(wait=True)
    if unreachable:
        raise EndpointError(f"{unreachable[0]}; finished tasks are kept in {samples_path} (run again to resume)")


def run_codegen(tasks: list[Task], config: CodegenConfig, samples_path: Path, *, client: EndpointClient | None = None,
                emit: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
                ) -> CodegenSummary:
    """Generate a sample for every task not already finished in the journal at samples_path."""
    samples_path.parent.mkdir(parents=True, exist_ok=True)
    complete_lines(raw_path_for(samples_path))
    finished = {r.task_id for r in read_journal(samples_path) if r.provenance.get("status") == "ok"}
    todo = [t for t in tasks if t.task_id not in finished]
    resumed = len(tasks) - len(todo)
    if resumed:
        emit(f"resuming: {resumed} of {len(tasks)} tasks already in {samples_path}")
    started = time.monotonic()
    own_client = client is None
    if client is None:  # tests and scripts: no key, the configured URL
        client = EndpointClient(config.base_url, model_id=config.model, max_connections=config.parallel,
                                retry=RetryPolicy(max_retries=config.retries))
    try:
        sampling = (client.info or client.probe()).default_sampling if config.sampling_from_server else None
        _run_pool(todo, config, client, samples_path, _Progress(len(tasks), resumed, emit), tasks)
    finally:
        if own_client:
            client.close()
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
