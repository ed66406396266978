"""Dataset packs of the reasoning suite: LiveCodeBench and GPQA files, unavailable data, and
humaneval-plus-30 judged in the EvalPlus sandbox (never on the host)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import PackError
from harness.evalplus.datasets import load_dataset
from harness.packs import reasoning
from harness.packs.runner import RunOptions, run_packs
from harness.paths import default_data_dir
from tests.doubles.scripted_chat import ScriptedServer, chat_reply

REPO_ROOT = Path(__file__).resolve().parents[2]
LCB = REPO_ROOT / "tests" / "data" / "livecodebench" / "sample.jsonl"
SPECS = reasoning.discover_dataset_packs(REPO_ROOT / "packs")
HUMANEVAL = default_data_dir() / "humanevalplus" / "HumanEvalPlus-v0.1.10.jsonl"


def test_livecodebench_rows_become_scenarios_with_stdin_and_functional_tests():
    stdin, functional = reasoning.livecodebench_scenarios(LCB)
    assert stdin.id == "lcb-bw001" and functional.id == "lcb-bw002"
    tests = stdin.verifier.model_extra["tests"]
    assert [t["input"] for t in tests] == ["3\n1 2 3\n", "1\n-5\n", "4\n10 20 30 40\n"]  # compressed ones decoded
    assert "standard input" in stdin.messages[-1]["content"]
    assert functional.verifier.model_extra["func_name"] == "countVowels"
    assert "class Solution" in functional.messages[-1]["content"]


@pytest.mark.parametrize(("row", "message"), [
    ({"question_id": "x", "question_content": "q", "public_test_cases": "[{\"input\": 1}]"},
     ":1: field public_test_cases[0]: needs input"),
    ({"question_content": "q"}, ":1: field question_id: required"),
    ({"question_id": "x", "question_content": "q", "private_test_cases": "bm90IHppcA=="},
     ":1: field private_test_cases: not JSON test cases"),
    ({"question_id": "x", "question_content": "q",
      "public_test_cases": json.dumps([{"input": "1", "output": "1", "testtype": "functional"}])},
     ":1: field metadata.func_name: required"),
])
def test_bad_livecodebench_lines_name_file_line_and_field(tmp_path, row, message):
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(PackError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        reasoning.livecodebench_scenarios(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_pickled_private_tests_cannot_name_a_class(tmp_path):
    import base64
    import pickle
    import zlib

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))
    blob = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps({"question_id": "x", "question_content": "q", "private_test_cases": blob}) + "\n")
    with pytest.raises(PackError, match="private_test_cases"):
        reasoning.livecodebench_scenarios(path)


def test_without_files_livecodebench_and_gpqa_are_unavailable_and_with_them_they_load(tmp_path):
    specs = [SPECS["livecodebench"], SPECS["gpqa"]]
    none = reasoning.materialize(specs, env={}, data_dir=tmp_path, cache_dir=tmp_path)
    assert none.packs == [] and [u.pack_id for u in none.unavailable] == ["livecodebench", "gpqa"]
    assert all(u.status == "dataset-unavailable" for u in none.unavailable)
    csv = tmp_path / "gpqa.csv"
    csv.write_text("Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n"
                   "Which gas is a noble gas?,Argon,Nitrogen,Oxygen,Chlorine\n")
    built = reasoning.materialize(specs, env={"LIVECODEBENCH_PATH": str(LCB), "GPQA_PATH": str(csv)},
                                  data_dir=tmp_path, cache_dir=tmp_path)
    assert built.unavailable == [] and [len(p.scenarios) for p in built.packs] == [2, 1]
    question = built.packs[1].scenarios[0]
    letter = question.verifier.model_extra["answer"]
    assert f"{letter}) Argon" in question.messages[-1]["content"]


def test_a_gpqa_file_without_its_columns_is_one_line(tmp_path):
    bad = tmp_path / "gpqa.csv"
    bad.write_text("Question,Answer\nq,a\n")
    with pytest.raises(PackError, match=r"gpqa.csv:1: field Correct Answer: missing"):
        reasoning.gpqa_scenarios(bad)


def _canonical(task: dict) -> str:
    return f"```python\n{task['prompt']}{task['canonical_solution']}\n```"


@pytest.mark.docker
def test_humaneval_plus_30_is_judged_in_the_evalplus_sandbox(tmp_path):
    if not HUMANEVAL.is_file():
        pytest.skip(f"dataset not found: {HUMANEVAL}")
    from harness.evalplus import sandbox
    from harness.packs.codejudge import EvalPlusJudge
    if not sandbox.image_present(sandbox.SANDBOX_IMAGE):
        pytest.skip("sandbox image not built (make sandboxes)")
    built = reasoning.materialize([SPECS["humaneval-plus-30"]], env={"HUMANEVAL_OVERRIDE_PATH": str(HUMANEVAL)},
                                  data_dir=tmp_path, cache_dir=REPO_ROOT / ".cache")
    [pack] = built.packs
    assert len(pack.scenarios) == 30 and isinstance(built.judges["evalplus"], EvalPlusJudge)
    pack = pack.model_copy(update={"scenarios": pack.scenarios[:4]})
    tasks = {json.loads(line)["task_id"]: json.loads(line) for line in HUMANEVAL.read_text().splitlines()[:4]}
    by_prompt = {s.messages[-1]["content"]: s.verifier.model_extra["task_id"] for s in pack.scenarios}
    # HumanEval/0 and /2: the dataset's own solution; /1: wrong code; /3: prose, which `evaluate` runs as the
    # solution too (the sanitizer keeps what it cannot parse) and so fails, as it does there
    answers = {"HumanEval/0": _canonical(tasks["HumanEval/0"]), "HumanEval/2": _canonical(tasks["HumanEval/2"]),
               "HumanEval/1": "```python\ndef separate_paren_groups(paren_string):\n    return []\n```",
               "HumanEval/3": "I cannot help with that."}

    def reply(body):
        task_id = by_prompt.get(body["messages"][-1]["content"])
        return 200, chat_reply(answers[task_id] if task_id else "probe", reasoning="plan" if task_id else None)
    server = ScriptedServer(reply).start()
    try:
        result = run_packs([pack], RunOptions(base_url=server.base_url, timeout_override_s=30),
                           sandbox_judges=built.judges)
    finally:
        server.stop()
    verdicts = {s.scenario_id: (s.failure_mode, [c.ok for c in s.checks]) for s in result.packs[0].scenarios}
    assert verdicts == {"HumanEval-0": ("passed", [True, True]), "HumanEval-2": ("passed", [True, True]),
                        "HumanEval-1": ("verifier_fail", [False, False]),
                        "HumanEval-3": ("verifier_fail", [False, False])}
    assert result.packs[0].passed == 2 and result.thinking_validity == "valid"
    assert load_dataset("humaneval", HUMANEVAL).md5 == "fe585eb4df8c88d844eeb463ea4d0302"
