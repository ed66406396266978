"""Verdicts and results of an EvalPlus evaluation (pydantic models, pure helpers).

`TaskVerdict` is what the sandbox reports for one sample; `EvalRunResult` is our result
JSON (verdicts + sample provenance + pass@1); `evalplus_eval_results` renders the
evalplus-compatible `<samples>_eval_results.json`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["pass", "fail", "timeout", "error"]


class TestSetVerdict(BaseModel):
    """Verdict of one test set (base or plus) for one sample."""

    status: Status
    passed_tests: int = 0
    total_tests: int = 0
    detail: str = ""
    fail_input: Any = None


class TaskVerdict(BaseModel):
    """Base and plus verdicts of one sample."""

    task_id: str
    base: TestSetVerdict
    plus: TestSetVerdict
    seconds: float = 0.0

    @property
    def base_pass(self) -> bool:
        return self.base.status == "pass"

    @property
    def plus_pass(self) -> bool:
        return self.base.status == "pass" and self.plus.status == "pass"

    @classmethod
    def from_checker(cls, payload: dict[str, Any]) -> TaskVerdict:
        if "error" in payload:
            return cls.from_error(payload["task_id"], payload["error"])
        return cls(task_id=payload["task_id"], base=TestSetVerdict(**payload["base"]),
                   plus=TestSetVerdict(**payload["plus"]), seconds=payload.get("seconds", 0.0))

    @classmethod
    def from_error(cls, task_id: str, reason: str) -> TaskVerdict:
        failed = TestSetVerdict(status="error", detail=reason)
        return cls(task_id=task_id, base=failed, plus=failed)


class SampleProvenance(BaseModel):
    """How the sample was produced (copied from the codegen journal when present)."""

    finish_reason: str | None = None
    recovered_from_reasoning: bool = False
    content_chars: int | None = None
    reasoning_chars: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    status: str | None = None


class TaskResult(BaseModel):
    task_id: str
    base_pass: bool
    plus_pass: bool
    verdict: TaskVerdict
    provenance: SampleProvenance
    evalplus_difference: str | None = Field(default=None, description="why EvalPlus 0.3.1 would judge differently")


class EvalRunResult(BaseModel):
    """Our result JSON for one evaluated samples file."""

    kind: Literal["evalplus"] = "evalplus"
    dataset: str
    dataset_path: str
    dataset_md5: str
    samples_path: str
    evaluated_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    evalplus_version: str
    sandbox_image: str
    min_time_limit_s: float
    gt_time_limit_factor: float
    n_tasks: int
    pass_at_1_base: float
    pass_at_1_plus: float
    counts: dict[str, int]
    tasks: list[TaskResult]


def pass_at_1(flags: list[bool]) -> float:
    """pass@1 with one greedy sample per task: the fraction passed."""
    return sum(flags) / len(flags) if flags else 0.0


# EvalPlus 0.3.1 never records a pass for HumanEval/32's special check (fixed upstream).
_FIND_ZERO_TASK = "HumanEval/32"


def evalplus_difference(verdict: TaskVerdict) -> str | None:
    """Where EvalPlus 0.3.1 is known to judge this sample differently, and why."""
    if verdict.task_id == _FIND_ZERO_TASK and verdict.base_pass:
        return "EvalPlus 0.3.1 never records a pass for HumanEval/32 (find_zero special check); fixed upstream"
    return None


def build_result(*, dataset: str, dataset_path: Path, dataset_md5: str, samples_path: Path,
                 samples: list[dict[str, Any]], verdicts: list[TaskVerdict], evalplus_version: str,
                 sandbox_image: str, min_time_limit_s: float, gt_time_limit_factor: float) -> EvalRunResult:
    """Join verdicts with sample provenance and compute pass@1 and the answer counts."""
    tasks = []
    for sample, verdict in zip(samples, verdicts, strict=False):
        provenance = SampleProvenance.model_validate(sample.get("provenance") or {})
        tasks.append(TaskResult(task_id=verdict.task_id, base_pass=verdict.base_pass, plus_pass=verdict.plus_pass,
                                verdict=verdict, provenance=provenance,
                                evalplus_difference=evalplus_difference(verdict)))
    counts = {
        "empty": sum(1 for s in samples if not (s.get("solution") or "").strip()),
        "truncated": sum(1 for t in tasks if t.provenance.finish_reason == "length"),
        "recovered_from_reasoning": sum(1 for t in tasks if t.provenance.recovered_from_reasoning),
        "request_errors": sum(1 for t in tasks if t.provenance.status == "error"),
        "sandbox_errors": sum(1 for t in tasks if t.verdict.base.status == "error"),
    }
    return EvalRunResult(dataset=dataset, dataset_path=str(dataset_path), dataset_md5=dataset_md5,
                         samples_path=str(samples_path), evalplus_version=evalplus_version,
                         sandbox_image=sandbox_image, min_time_limit_s=min_time_limit_s,
                         gt_time_limit_factor=gt_time_limit_factor, n_tasks=len(tasks),
                         pass_at_1_base=pass_at_1([t.base_pass for t in tasks]),
                         pass_at_1_plus=pass_at_1([t.plus_pass for t in tasks]), counts=counts, tasks=tasks)


def evalplus_eval_results(result: EvalRunResult, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The evalplus-compatible eval_results document (one sample per task, fast-check style)."""
    evals: dict[str, list[dict[str, Any]]] = {}
    for sample, task in zip(samples, result.tasks, strict=False):
        verdict = task.verdict
        evals.setdefault(task.task_id, []).append({
            "task_id": task.task_id, "solution": sample.get("solution", ""),
            "base_status": _evalplus_status(verdict.base.status), "plus_status": _evalplus_status(verdict.plus.status),
            "base_fail_tests": [] if verdict.base.fail_input is None else [verdict.base.fail_input],
            "plus_fail_tests": [] if verdict.plus.fail_input is None else [verdict.plus.fail_input],
        })
    return {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "hash": result.dataset_md5, "eval": evals}


def _evalplus_status(status: Status) -> str:
    return "fail" if status == "error" else status
