"""Diff hygiene and reproducibility asserts of the sandbox verifier, over hand-made evidence (no Docker).

The same asserts run for real in ``test_repo_chores.py``; here each rule is pinned on its own.
"""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from harness.packs.schema import FileState, ProbeResult, Reply, SandboxEvidence, Scenario
from harness.packs.verifiers import judge
from harness.packs.verifiers.sandbox_state import SandboxAssert

TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\nclass TestEdge:\n" \
        "    def test_zero(self):\n        assert add(0, 0) == 0\n"
CODE = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


def _file(text: str) -> FileState:
    return FileState(kind="file", mode=0o644, size=len(text), sha256=hashlib.sha256(text.encode()).hexdigest(),
                     text=text)


def _verdict(asserts: list[dict], after: dict[str, str], probes: list[ProbeResult] = ()):
    before = {"calc.py": _file(CODE), "tests": FileState(kind="dir", mode=0o755), "tests/test_calc.py": _file(TESTS)}
    evidence = SandboxEvidence(before=before, after={**{k: v for k, v in before.items() if v.kind == "dir"},
                                                     **{k: _file(v) for k, v in after.items()}},
                               probes=list(probes), status="done", answer="done")
    scenario = Scenario(id="s", messages=[{"role": "user", "content": "x"}],
                        verifier={"type": "sandbox", "asserts": asserts})
    return judge(scenario, Reply(content="done", sandbox=evidence))


FIXED = CODE.replace("return a - b", "return a + b", 1)


def test_diff_counts_changed_lines_and_catches_reformatting():
    rule = [{"check": "diff", "path": "calc.py", "max_changed_lines": 2}]
    assert _verdict(rule, {"calc.py": FIXED, "tests/test_calc.py": TESTS}).score == 100
    reformatted = FIXED.replace("(a, b)", "( a, b )").replace("\n\n\n", "\n\n")
    verdict = _verdict(rule, {"calc.py": reformatted, "tests/test_calc.py": TESTS})
    assert verdict.score == 0 and "lines changed, at most 2 allowed" in verdict.checks[0].detail


def test_diff_over_a_folder_counts_deleted_files_in_full():
    rule = [{"check": "diff", "path": "tests/", "max_changed_lines": 3}]
    verdict = _verdict(rule, {"calc.py": FIXED})
    assert verdict.score == 0 and verdict.checks[0].detail.startswith(f"{len(TESTS.splitlines())} lines changed")


def test_tests_kept_catches_deleted_and_renamed_tests_but_allows_new_ones():
    rule = [{"check": "tests_kept", "path": "tests/"}]
    grown = TESTS + "\n\ndef test_more():\n    assert add(1, 1) == 2\n"
    assert _verdict(rule, {"calc.py": FIXED, "tests/test_calc.py": grown}).score == 100
    renamed = TESTS.replace("def test_zero", "def skip_zero")
    verdict = _verdict(rule, {"calc.py": FIXED, "tests/test_calc.py": renamed})
    assert verdict.score == 0 and "tests/test_calc.py::TestEdge.test_zero" in verdict.checks[0].detail
    moved = _verdict(rule, {"calc.py": FIXED, "tests/test_other.py": TESTS})
    assert moved.score == 0 and "missing" in moved.checks[0].detail  # moving a test file loses its tests here


def test_a_repeated_command_passes_only_when_every_run_passes():
    rule = [{"check": "command", "run": "pytest", "exit_code": 0, "fresh_clone": True, "repeat": 2}]
    ok = ProbeResult(assert_index=0, exit_code=0, stdout="1 passed", stderr="")
    flaky = ProbeResult(assert_index=0, exit_code=1, stdout="1 failed", stderr="state left by run 1")
    assert _verdict(rule, {"calc.py": FIXED}, [ok, ok]).score == 100
    verdict = _verdict(rule, {"calc.py": FIXED}, [ok, flaky])
    assert verdict.score == 0 and verdict.checks[0].detail.startswith("run 2 of 2: exit 1, wanted 0")
    assert "ran 1 of 2 times" in _verdict(rule, {"calc.py": FIXED}, [ok]).checks[0].detail


@pytest.mark.parametrize("bad, why", [
    ({"check": "diff", "path": "a.py"}, "diff assert needs path and max_changed_lines"),
    ({"check": "tests_kept"}, "tests_kept assert needs path"),
    ({"check": "command", "run": "x", "repeat": 2}, "repeat needs fresh_clone"),
    ({"check": "file", "path": "a", "exists": True, "fresh_clone": True}, "belong to command asserts"),
])
def test_misused_fields_are_refused_at_load_time(bad, why):
    with pytest.raises(ValidationError, match=why):
        SandboxAssert.model_validate(bad)
