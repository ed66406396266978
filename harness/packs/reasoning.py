"""The reasoning suite's dataset packs: scenarios built from a dataset file the user has.

A dataset pack is a folder ``packs/<id>/`` with ``dataset.json``: the pack's metadata (as in
``pack.json``) and where its data comes from. Its scenarios are built at run time from the
file, so nothing of the dataset is copied into this repository:

- ``humaneval``: the first ``limit`` HumanEval+ tasks, EvalPlus's prompt, judged in the EvalPlus
  sandbox (``harness.packs.codejudge``) with the verdicts of ``evaluate``;
- ``livecodebench``: LiveCodeBench "code generation lite" JSONL rows (stdin/stdout and functional
  tests), verifier ``livecodebench``, each program run against its tests in the agent sandbox
  (``harness.packs.codejudge.LiveCodeBenchJudge``);
- ``gpqa``: the gated GPQA CSV, four shuffled choices, an ``ANSWER: <letter>`` line.

Without the file the pack is reported as ``dataset-unavailable`` with the variable to set,
not as an error. A malformed file is one PackError naming file, line and field.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import pickle
import random
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError, PackError, describe_validation_error
from harness.evalplus import codegen
from harness.evalplus.datasets import Dataset, load_dataset
from harness.files import read_text
from harness.packs.codejudge import EvalPlusJudge, LiveCodeBenchJudge, SandboxJudge
from harness.packs.loader import read_json_file, read_json_lines
from harness.packs.schema import Pack, PackMeta, Scenario, UnavailablePack, VerifierSpec

DATASET_FILE = "dataset.json"
MODE = "reasoning"


class DatasetSource(BaseModel):
    """Where a dataset pack's data comes from."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["humaneval", "livecodebench", "gpqa"]
    name: str = Field(default="", description="EvalPlus dataset name (humaneval)")
    env: str = Field(description="environment variable holding the file's path")
    default_path: str = Field(description="the file under the data dir when the variable is unset")
    limit: int | None = Field(default=None, gt=0, description="only the first N items")
    how_to_get: str = ""


class DatasetPack(BaseModel):
    """``dataset.json``: the pack's metadata and its data source."""

    model_config = ConfigDict(extra="forbid")

    pack: PackMeta
    dataset: DatasetSource


def load_dataset_pack(directory: Path) -> DatasetPack:
    path = directory / DATASET_FILE
    data = read_json_file(path)
    try:
        found = DatasetPack.model_validate(data)
    except ValidationError as exc:
        raise PackError(f"{path}: field {describe_validation_error(exc, '(root)')}") from None
    if found.pack.id != directory.name:
        raise PackError(f"{path}: field pack.id: {found.pack.id!r} must match the folder name {directory.name!r}")
    return found


def discover_dataset_packs(packs_dir: Path) -> dict[str, DatasetPack]:
    """Every dataset pack folder under packs_dir, by id, in name order."""
    if not packs_dir.is_dir():
        return {}
    return {d.name: load_dataset_pack(d) for d in sorted(packs_dir.iterdir()) if (d / DATASET_FILE).is_file()}


def data_path(source: DatasetSource, env: Mapping[str, str], data_dir: Path) -> Path:
    """The variable's path if set, else the default file under the data dir."""
    return Path(env[source.env]) if env.get(source.env) else data_dir / source.default_path


def _unavailable(spec: DatasetPack, path: Path, why: str) -> UnavailablePack:
    how = f"set {spec.dataset.env}=/path/to/file (or put it at {path})"
    return UnavailablePack(pack_id=spec.pack.id, reason=f"{why}: {path}",
                           how_to_enable=how + (f"; {spec.dataset.how_to_get}" if spec.dataset.how_to_get else ""))


def _scenario(place: str, data: dict[str, Any]) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise PackError(f"{place}: field {describe_validation_error(exc, '(root)')}") from None


# --- HumanEval+ --------------------------------------------------------------------------------

def humaneval_scenarios(dataset: Dataset, limit: int | None) -> list[Scenario]:
    """EvalPlus's chat prompt per task; the verdict comes from the sandbox (verifier ``evalplus``)."""
    return [Scenario(id=task.task_id.replace("/", "-"), category="humaneval",
                     messages=[{"role": "system", "content": codegen.SYSTEM_PROMPT},
                               {"role": "user", "content": codegen.user_message(task)}],
                     verifier=VerifierSpec.model_validate({"type": "evalplus", "task_id": task.task_id,
                                                           "entry_point": task.entry_point}))
            for task in dataset.subset(limit)]


# --- LiveCodeBench -----------------------------------------------------------------------------

class _NoGlobals(pickle.Unpickler):
    """Private tests come pickled; only plain data may come out (never a class or a function)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _tests(value: Any, place: str, field: str) -> list[dict[str, str]]:
    """A test-case field: a JSON list, or LiveCodeBench's base64(zlib(pickle(JSON))) encoding."""
    if isinstance(value, list):
        cases = value
    elif isinstance(value, str):
        try:
            cases = json.loads(value) if value.lstrip().startswith("[") or not value.strip() else json.loads(
                _NoGlobals(io.BytesIO(zlib.decompress(base64.b64decode(value, validate=True)))).load())
        except (ValueError, zlib.error, pickle.UnpicklingError, EOFError, TypeError) as exc:
            raise PackError(f"{place}: field {field}: not JSON test cases nor their compressed form "
                            f"({type(exc).__name__})") from None
    else:
        raise PackError(f"{place}: field {field}: expected a list of test cases")
    if not isinstance(cases, list):
        raise PackError(f"{place}: field {field}: expected a list of test cases")
    out = []
    for index, case in enumerate(cases):
        if not (isinstance(case, dict) and isinstance(case.get("input"), str) and isinstance(case.get("output"), str)
                and case.get("testtype") in ("stdin", "functional")):
            raise PackError(f"{place}: field {field}[{index}]: needs input, output (strings) and testtype "
                            "stdin|functional")
        out.append({"input": case["input"], "output": case["output"], "testtype": case["testtype"]})
    return out


LCB_SYSTEM = "You are an expert Python programmer. Answer with one complete solution in a ```python code block."


def _lcb_prompt(question: str, starter_code: str) -> str:
    if starter_code.strip():
        return (f"{question}\n\nComplete this starter code; keep its class and method signature and return the "
                f"answer from the method (do not read input or print):\n```python\n{starter_code.rstrip()}\n```")
    return (f"{question}\n\nWrite a Python program that reads the input from standard input and prints the answer "
            "to standard output.")


def livecodebench_scenarios(path: Path, limit: int | None = None) -> list[Scenario]:
    """Scenarios from a LiveCodeBench code-generation-lite JSONL file."""
    scenarios: list[Scenario] = []
    for number, row in read_json_lines(path, "a LiveCodeBench file"):
        place = f"{path}:{number}"
        for name in ("question_id", "question_content"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise PackError(f"{place}: field {name}: required (a non-empty string)")
        starter = row.get("starter_code") or ""
        if not isinstance(starter, str):
            raise PackError(f"{place}: field starter_code: expected a string")
        tests = _tests(row.get("public_test_cases", "[]"), place, "public_test_cases") + \
            _tests(row.get("private_test_cases", "[]"), place, "private_test_cases")
        if not tests:
            raise PackError(f"{place}: field public_test_cases: no test cases")
        metadata = row.get("metadata") or {}
        try:
            metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
        except ValueError:
            raise PackError(f"{place}: field metadata: not JSON") from None
        functional = any(t["testtype"] == "functional" for t in tests)
        func_name = metadata.get("func_name") if isinstance(metadata, dict) else None
        if functional and not isinstance(func_name, str):
            raise PackError(f"{place}: field metadata.func_name: required for functional tests")
        scenarios.append(_scenario(place, {
            "id": f"lcb-{row['question_id']}", "category": str(row.get("difficulty") or "unknown"),
            "description": str(row.get("question_title") or ""),
            "messages": [{"role": "system", "content": LCB_SYSTEM},
                         {"role": "user", "content": _lcb_prompt(row["question_content"], starter)}],
            "verifier": {"type": "livecodebench", "tests": tests, "func_name": func_name,
                         "platform": row.get("platform"), "contest_date": row.get("contest_date")}}))
        if limit and len(scenarios) >= limit:
            break
    if not scenarios:
        raise PackError(f"{path}: no problems")
    return scenarios


# --- GPQA --------------------------------------------------------------------------------------

GPQA_SYSTEM = ("Answer the multiple-choice question. Think it through, then end with one final line of the form "
               "'ANSWER: <letter>'.")
_GPQA_COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def gpqa_scenarios(path: Path, limit: int | None = None, seed: int = 0) -> list[Scenario]:
    """Scenarios from the GPQA CSV; the choices' order is shuffled per question from ``seed``."""
    try:
        rows = list(csv.DictReader(io.StringIO(read_text(path))))
    except (OSError, ValueError, csv.Error) as exc:
        raise PackError(f"{path}: cannot read as CSV ({exc})") from None
    missing = [c for c in _GPQA_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise PackError(f"{path}:1: field {missing[0] if missing else 'Question'}: missing (a GPQA CSV has "
                        f"{', '.join(_GPQA_COLUMNS)})")
    scenarios = []
    for index, row in enumerate(rows[:limit] if limit else rows):
        choices = [row[c].strip() for c in _GPQA_COLUMNS[1:]]
        order = list(range(4))
        random.Random(f"{seed}-{index}").shuffle(order)
        letters = "ABCD"
        listing = "\n".join(f"{letters[i]}) {choices[k]}" for i, k in enumerate(order))
        scenarios.append(_scenario(f"{path}:{index + 2}", {
            "id": str(row.get("Record ID") or f"q{index + 1}"), "category": str(row.get("High-level domain") or ""),
            "messages": [{"role": "system", "content": GPQA_SYSTEM},
                         {"role": "user", "content": f"{row['Question'].strip()}\n\n{listing}"}],
            "verifier": {"type": "reason_math", "answer": letters[order.index(0)]}}))
    return scenarios


# --- building the packs of a run ---------------------------------------------------------------

class Materialized(BaseModel):
    """What the dataset packs of a run became: packs to run, packs without data, sandbox judges."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    packs: list[Pack] = []
    unavailable: list[UnavailablePack] = []
    judges: dict[str, SandboxJudge] = {}


def materialize(specs: list[DatasetPack], *, env: Mapping[str, str], data_dir: Path, cache_dir: Path) -> Materialized:
    """Build each dataset pack from its file, or record it as dataset-unavailable."""
    out = Materialized()
    for spec in specs:
        source = spec.dataset
        path = data_path(source, env, data_dir)
        if not path.is_file():
            out.unavailable.append(_unavailable(spec, path, "no dataset file" if env.get(source.env) or
                                                not path.exists() else "not a file"))
            continue
        if source.kind == "humaneval":
            try:
                dataset = load_dataset(source.name or "humaneval", path)
            except HarnessError as exc:
                raise PackError(f"{spec.pack.id}: {exc}") from None
            scenarios = humaneval_scenarios(dataset, source.limit)
            out.judges["evalplus"] = EvalPlusJudge(dataset=dataset, cache_dir=cache_dir)
        elif source.kind == "livecodebench":
            scenarios = livecodebench_scenarios(path, source.limit)
            out.judges["livecodebench"] = LiveCodeBenchJudge()
        else:
            scenarios = gpqa_scenarios(path, source.limit)
        out.packs.append(Pack(meta=spec.pack, scenarios=scenarios, source=str(path)))
    return out
