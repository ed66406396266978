"""LiveCodeBench scenarios judged in the agent sandbox (harness.packs.codejudge.LiveCodeBenchJudge).

The sample problems of tests/data/livecodebench are ours: bw001 (stdin: sum of N integers; one
public and two compressed private tests, one of them negative) and bw002 (functional:
``Solution.countVowels``). Programs run only in real sandbox containers; the pure helpers
(extraction, comparison) are tested without Docker. Containment follows the agent sandbox's
tests: an attack prints the right answer only if it succeeded, so a pass would prove it worked,
and the host canary must be untouched afterwards.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

from harness.containers import engine, image_present
from harness.packs import codejudge, reasoning
from harness.packs.codejudge import LiveCodeBenchJudge, lcb_program, return_matches, stdout_matches
from harness.packs.runner import RunOptions, run_packs
from harness.packs.sandbox import AGENT_IMAGE
from harness.packs.schema import Reply, Scenario, ScenarioResult
from tests.doubles.scripted_chat import ScriptedServer, chat_reply
from tests.packs.test_agent_sandbox import CANARY_TEXT, host_addresses, host_listener  # noqa: F401 - a fixture

REPO_ROOT = Path(__file__).resolve().parents[2]
LCB = REPO_ROOT / "tests" / "data" / "livecodebench" / "sample.jsonl"
PACK_ID = f"lcb-test-{uuid.uuid4().hex[:8]}"  # in the container labels: this session's alone
SUM_OK = "n = int(input())\nprint(sum(map(int, input().split())))\n"
VOWELS_OK = ("class Solution:\n    def countVowels(self, word: str) -> int:\n"
             "        print('noise on stdout is not the answer')\n"
             "        return sum(c in 'aeiou' for c in word)\n")


def fenced(code: str) -> str:
    return f"Here is my solution.\n\n```python\n{code}```\n"


@pytest.fixture(scope="module")
def problems() -> dict[str, Scenario]:
    return {s.id: s for s in reasoning.livecodebench_scenarios(LCB)}


def judge(scenario: Scenario, content: str, **options: float) -> ScenarioResult:
    """One reply judged as the runner would, after the run, in a fresh sandbox."""
    placeholder = ScenarioResult(pack_id=PACK_ID, scenario_id=scenario.id, score=0, status="fail",
                                 failure_mode="verifier_fail", detail=codejudge.AWAITING_SANDBOX,
                                 reply=Reply(content=content, raw_content=content, finish_reason="stop"),
                                 scenario=scenario)
    [result] = LiveCodeBenchJudge(**options)([placeholder])  # type: ignore[arg-type]
    return result


def our_containers() -> list[dict]:
    found = engine().api.containers(all=True, filters={"label": "benchwright=sandbox-agent"})
    return [c for c in found if (c.get("Labels") or {}).get("benchwright.scenario", "").startswith(f"{PACK_ID}/")]


def assert_no_containers_left() -> None:
    deadline = time.monotonic() + 30  # removal runs in the background
    while (left := our_containers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, [c["Names"] for c in left]


@pytest.fixture
def docker_image() -> None:
    if not image_present(AGENT_IMAGE):
        pytest.skip(f"{AGENT_IMAGE} is not built (make sandboxes)")


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "canary.txt"
    path.write_text(CANARY_TEXT)
    return path


def assert_canary_untouched(canary: Path) -> None:
    assert canary.read_text() == CANARY_TEXT, "the host canary changed"
    assert sorted(p.name for p in canary.parent.iterdir()) == [canary.name], "something appeared beside the canary"


# ---- pure helpers ------------------------------------------------------------------------------

def test_the_program_is_the_last_python_block_and_sample_blocks_are_not_code():
    reply = ("<think>```python\nprint('draft')\n```</think>Sample:\n```\n3\n1 2 3\n```\n"
             "```python\nprint('first try')\n```\nBetter:\n```python\nprint('final')\n```\nOutput:\n```\n6\n```\n")
    assert lcb_program(reply, "", None) == "print('final')"
    functional = ("```python\nclass Solution:\n    def f(self):\n        return 1\n```\n"
                  "```python\nprint(Solution().f())\n```")
    assert "def f(self)" in lcb_program(functional, "", "f")
    assert lcb_program("I cannot solve this.", "", None) == ""
    assert lcb_program("", "thinking... ```python\nprint(2)\n```", None) == "print(2)"  # content empty: reasoning
    assert lcb_program("print(int(input()) * 2)", "", None) == "print(int(input()) * 2)"  # bare, no fence


@pytest.mark.parametrize(("expected", "actual", "same"), [
    ("6\n", "6", True), ("1 2\n3\n", "  1 2  \n3   \n\n", True), ("0.5\n", "0.50\n", True),
    ("6\n", "7\n", False), ("1\n2\n", "1\n", False), ("Yes\n", "yes\n", False), ("1000\n", "1_000\n", False)])
def test_stdout_is_compared_after_whitespace_normalisation(expected, actual, same):
    assert stdout_matches(expected, actual) is same


def test_return_values_are_compared_as_json():
    assert return_matches("[1, 2]", "[1,2]") and return_matches("true", "true") and return_matches("3", "3")
    assert not return_matches("3", "4") and not return_matches('"a"', '"b"') and not return_matches("[1]", "[1, 2]")


# ---- judged in the sandbox ---------------------------------------------------------------------

@pytest.mark.docker
def test_the_packs_path_judges_lcb_replies_in_the_sandbox(tmp_path, docker_image):
    built = reasoning.materialize([reasoning.discover_dataset_packs(REPO_ROOT / "packs")["livecodebench"]],
                                  env={"LIVECODEBENCH_PATH": str(LCB)}, data_dir=tmp_path, cache_dir=tmp_path)
    [pack] = built.packs
    assert isinstance(built.judges["livecodebench"], LiveCodeBenchJudge)
    pack = pack.model_copy(update={"meta": pack.meta.model_copy(update={"id": PACK_ID})})
    answers = {"N integers": "Sample:\n```\n3\n1 2 3\n```\n" + fenced(SUM_OK), "vowels": fenced(VOWELS_OK)}

    def reply(body):
        prompt = body["messages"][-1]["content"]
        found = next((answer for key, answer in answers.items() if key in prompt), None)
        return 200, chat_reply(found or "probe", reasoning="plan" if found else None)
    server = ScriptedServer(reply).start()
    try:
        result = run_packs([pack], RunOptions(base_url=server.base_url, timeout_override_s=30),
                           sandbox_judges=built.judges)
    finally:
        server.stop()
    verdicts = {s.scenario_id: (s.failure_mode, s.score, [c.ok for c in s.checks]) for s in result.packs[0].scenarios}
    assert verdicts == {"lcb-bw001": ("passed", 100, [True, True, True]), "lcb-bw002": ("passed", 100, [True, True])}
    assert result.packs[0].passed == 2
    assert_no_containers_left()


@pytest.mark.docker
def test_a_wrong_program_fails_with_wrong_answer_and_partial_credit(problems, docker_image):
    wrong_on_negatives = "input()\nprint(sum(abs(int(x)) for x in input().split()))\n"
    result = judge(problems["lcb-bw001"], fenced(wrong_on_negatives))
    assert (result.failure_mode, result.status, result.score) == ("wrong_answer", "partial", 66.67)
    assert [c.ok for c in result.checks] == [True, False, True]
    assert "printed '5', expected '-5" in result.checks[1].detail, result.checks[1].detail
    nothing = judge(problems["lcb-bw001"], "I am not sure how to solve this.")
    assert (nothing.failure_mode, nothing.score, nothing.detail) == ("no_answer_found", 0,
                                                                      "no_code: no program found in the reply")


@pytest.mark.docker
def test_an_endless_program_times_out_within_the_budget(problems, docker_image):
    started = time.monotonic()
    result = judge(problems["lcb-bw001"], fenced("while True:\n    pass\n"), test_timeout_s=1.0, budget_s=2.5)
    took = time.monotonic() - started
    assert result.failure_mode == "verifier_fail" and result.detail.startswith("timeout:"), result.detail
    assert result.score == 0 and [c.detail.split(":")[0] for c in result.checks] == ["timeout"] * 3
    assert took < 2.5 + 10, f"judging took {took:.1f} s for a 2.5 s budget"  # + container start and kills
    assert_no_containers_left()


@pytest.mark.docker
def test_functional_problems_call_the_method_with_json_arguments(problems, docker_image):
    scenario = problems["lcb-bw002"]
    assert judge(scenario, fenced(VOWELS_OK)).failure_mode == "passed"
    off_by_one = VOWELS_OK.replace("for c in word)", "for c in word) + (word == 'xyz')")
    wrong = judge(scenario, fenced(off_by_one))
    assert (wrong.failure_mode, [c.ok for c in wrong.checks]) == ("wrong_answer", [True, False])
    crash = judge(scenario, fenced(VOWELS_OK.replace("return sum", "return 1 // 0 + sum")))
    assert crash.failure_mode == "verifier_fail" and crash.detail.startswith("runtime_error:"), crash.detail
    assert "ZeroDivisionError" in crash.checks[0].detail
    no_class = judge(scenario, fenced("def countVowels(word):\n    return 3\n"))
    assert no_class.failure_mode == "verifier_fail" and "defines no class Solution" in no_class.checks[0].detail


# ---- containment ---------------------------------------------------------------------------------

@pytest.mark.docker
def test_writes_outside_and_rewriting_the_judge_fail_and_the_host_is_untouched(problems, canary, docker_image):
    token = uuid.uuid4().hex[:10]
    targets = [f"/etc/bw-pwned-{token}", f"/opt/bw-pwned-{token}", str(canary),
               "/tmp/bw-check/solution.py", "/tmp/bw-check/driver.py"]
    attack = ("import sys\nwrote = []\n"
              f"for target in {targets!r}:\n"
              "    try:\n        open(target, 'w').write('pwned\\n')\n        wrote.append(target)\n"
              "    except OSError as exc:\n        print(target, exc, file=sys.stderr)\n"
              "n = int(input())\ntotal = sum(map(int, input().split()))\n"
              "print(total if wrote else total + 1)\n")
    result = judge(problems["lcb-bw001"], fenced(attack))
    assert result.failure_mode == "wrong_answer" and not any(c.ok for c in result.checks), result.detail
    for target in targets[:2]:
        assert not Path(target).exists(), f"{target} exists on the host"
    assert_canary_untouched(canary)
    assert judge(problems["lcb-bw001"], fenced(SUM_OK)).failure_mode == "passed"
    assert_no_containers_left()


@pytest.mark.docker
def test_the_network_is_unreachable(problems, host_listener, docker_image):  # noqa: F811 - the fixture
    port, accepted = host_listener
    socket.create_connection(("127.0.0.1", port), timeout=2).close()  # the listener sees the host itself
    deadline = time.monotonic() + 5
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert accepted, "the host listener does not accept connections: this test could not see one"
    accepted.clear()
    attack = ("import socket\nreached = []\n"
              f"for host in {host_addresses()!r} + ['1.1.1.1']:\n"
              f"    try:\n        socket.create_connection((host, {port}), timeout=0.5).close()\n"
              "        reached.append(host)\n    except OSError:\n        pass\n"
              "n = int(input())\ntotal = sum(map(int, input().split()))\n"
              "print(total if reached else total + 1)\n")
    result = judge(problems["lcb-bw001"], fenced(attack))
    assert result.failure_mode == "wrong_answer" and not any(c.ok for c in result.checks), result.detail
    time.sleep(0.3)
    assert accepted == [], f"the sandbox reached the host listener from {accepted}"


@pytest.mark.docker
def test_a_fork_bomb_is_capped_and_killed_and_the_next_tests_still_run(problems, docker_image):
    # On the first test only (input "3 ..."), fork until the PIDs cap, leave the children behind
    # and exit; the other tests then must run and pass in the same container.
    bomb = ("import os, sys\nlines = sys.stdin.read().split('\\n')\n"
            "if lines[0] == '3':\n    while True:\n        try:\n            if os.fork() == 0:\n"
            "                while True:\n                    pass\n"
            "        except OSError:\n            os._exit(3)\n"
            "print(sum(map(int, lines[1].split())))\n")
    started = time.monotonic()
    result = judge(problems["lcb-bw001"], fenced(bomb), test_timeout_s=3.0, budget_s=20.0)
    assert time.monotonic() - started < 40
    assert [c.ok for c in result.checks] == [False, True, True], result.checks
    assert result.checks[0].detail.split(":")[0] in ("runtime_error", "timeout"), result.checks[0].detail
    assert result.failure_mode == "verifier_fail" and result.status == "partial"
    assert_no_containers_left()
