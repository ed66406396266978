"""Evaluate a samples file in the sandbox and write both result files beside it.

    <name>.jsonl                  samples (evalplus format + our provenance)
    <name>_eval_results.json      evalplus-compatible verdicts
    <name>.result.json            our result: verdicts, provenance, pass@1, answer counts
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.evalplus import sandbox
from harness.evalplus.datasets import Dataset, DatasetError
from harness.evalplus.results import EvalRunResult, build_result, evalplus_eval_results
from harness.files import parse_json, read_text, write_json_atomic


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Samples of a jsonl file: evalplus `solution` or `completion` lines (one per task)."""
    try:
        lines = read_text(path).splitlines()
    except FileNotFoundError:
        raise DatasetError(f"samples file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read samples ({exc})") from None
    samples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            sample = parse_json(line)
            sample["task_id"]
        except (ValueError, KeyError, TypeError):
            raise DatasetError(f"{path}:{number}: not an evalplus sample (needs task_id and solution)") from None
        if "solution" not in sample and "completion" not in sample:
            raise DatasetError(f"{path}:{number}: sample has neither solution nor completion")
        samples.append(sample)
    return samples


def _with_solutions(samples: list[dict[str, Any]], dataset: Dataset) -> list[dict[str, Any]]:
    prompts = {t.task_id: t.prompt for t in dataset.tasks}
    out = []
    for sample in samples:
        if "solution" not in sample:
            sample = {**sample, "solution": prompts.get(sample["task_id"], "") + sample["completion"]}
        out.append(sample)
    return out


def result_paths(samples_path: Path) -> tuple[Path, Path]:
    stem = samples_path.name.removesuffix(".jsonl")
    return samples_path.with_name(f"{stem}_eval_results.json"), samples_path.with_name(f"{stem}.result.json")


def evaluate_file(dataset: Dataset, samples_path: Path, cache_dir: Path, *, options: sandbox.CheckOptions,
                  limits: sandbox.SandboxLimits, image: str = sandbox.SANDBOX_IMAGE) -> EvalRunResult:
    """Sandbox-evaluate every sample in the file; write the two result files atomically."""
    samples = _with_solutions(read_samples(samples_path), dataset)
    known = {t.task_id for t in dataset.tasks}
    unknown = [s["task_id"] for s in samples if s["task_id"] not in known]
    if unknown:
        raise DatasetError(f"{samples_path}: task {unknown[0]} is not in {dataset.path}")
    groundtruth = sandbox.ensure_groundtruth(dataset, cache_dir, image=image, limits=limits)
    verdicts = sandbox.evaluate_samples(dataset, samples, groundtruth, options=options, limits=limits, image=image)
    result = build_result(dataset=dataset.name, dataset_path=dataset.path, dataset_md5=dataset.md5,
                          samples_path=samples_path, samples=samples, verdicts=verdicts,
                          evalplus_version=sandbox.EVALPLUS_VERSION, sandbox_image=image,
                          min_time_limit_s=options.min_time_limit_s,
                          gt_time_limit_factor=options.gt_time_limit_factor)
    evalplus_path, result_path = result_paths(samples_path)
    write_json_atomic(evalplus_path, evalplus_eval_results(result, samples))
    write_json_atomic(result_path, result.model_dump(mode="json"))
    return result
