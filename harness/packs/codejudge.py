"""Code packs judged in a sandbox container, a pack's replies at a time.

A code scenario's verifier (type ``evalplus`` or ``livecodebench``) cannot be a pure function:
its verdict comes from running the model's code, which happens only in a locked sandbox
container. So the runner gives such scenarios a placeholder verdict while the replies come in,
and afterwards hands them to a judge from here:

- ``EvalPlusJudge`` takes the solution out of each reply with the same sanitizer as ``codegen``,
  sends the batch to the EvalPlus sandbox (``harness.evalplus.sandbox``) with the same options
  as ``evaluate`` and maps its base/plus verdicts onto scenario results (pass@1 on both);
- ``LiveCodeBenchJudge`` runs each reply's program in its own agent-sandbox container
  (``benchwright/sandbox-agent``, no new image) once per test, stdin/stdout or functional, with
  a per-test deadline and a per-problem budget. Expected outputs never enter the container: the
  host compares, so the program cannot forge its verdict. Pass means every test passes; the
  score is the share of tests that pass.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from harness.containers import Container, ExecResult, Limits
from harness.endpoint.client import strip_think
from harness.errors import SandboxError
from harness.evalplus import sandbox
from harness.evalplus.datasets import Dataset
from harness.evalplus.results import TaskVerdict
from harness.evalplus.sanitize import extract_solution, parses
from harness.packs import sandbox as agent_sandbox
from harness.packs.schema import Check, Reply, ScenarioResult, Status, status_for
from harness.packs.verifiers._common import fenced_blocks

DEFERRED_VERIFIERS = ("evalplus", "livecodebench")
AWAITING_SANDBOX = "awaiting the sandbox's verdict"
SandboxJudge = Callable[[list[ScenarioResult]], list[ScenarioResult]]


def _verdict_fields(result: ScenarioResult, solution: str, verdict: TaskVerdict | None,
                    error: str | None = None) -> dict[str, Any]:
    reply = result.reply
    truncated = reply is not None and reply.finish_reason == "length"
    if error is not None or verdict is None:
        return {"score": 0, "failure_mode": "sandbox_error", "detail": error or "no verdict", "checks": []}
    if not solution.strip():
        mode = "token_limit" if truncated else "no_answer_found"
        return {"score": 0, "failure_mode": mode, "detail": "no code found in the reply", "checks": []}
    if verdict.base.status == "error" and verdict.plus.status == "error" and (
            "sandbox ended" in verdict.base.detail or "no verdict returned" in verdict.base.detail):
        return {"score": 0, "failure_mode": "sandbox_error", "detail": verdict.base.detail, "checks": []}
    checks = [Check(name="base tests", ok=verdict.base_pass,
                    detail=f"{verdict.base.status} {verdict.base.passed_tests}/{verdict.base.total_tests}"),
              Check(name="plus tests", ok=verdict.plus_pass,
                    detail=f"{verdict.plus.status} {verdict.plus.passed_tests}/{verdict.plus.total_tests}")]
    if verdict.plus_pass:
        return {"score": 100, "failure_mode": "passed", "detail": "base and plus tests pass", "checks": checks}
    failed = verdict.base if not verdict.base_pass else verdict.plus
    which = "base" if not verdict.base_pass else "plus"
    detail = f"{which} tests: {failed.status}" + (f" ({failed.detail[:300]})" if failed.detail else "")
    if failed.fail_input is not None:
        detail += f"; failing input {str(failed.fail_input)[:200]}"
    mode = "token_limit" if truncated else "verifier_fail"
    return {"score": 0, "failure_mode": mode, "detail": detail, "checks": checks}


@dataclass
class EvalPlusJudge:
    """Judge HumanEval+/MBPP+ scenarios (``verifier.task_id``) in the EvalPlus sandbox."""

    dataset: Dataset
    cache_dir: Path
    image: str = sandbox.SANDBOX_IMAGE
    options: sandbox.CheckOptions = field(default_factory=sandbox.CheckOptions)
    limits: sandbox.SandboxLimits = sandbox.DEFAULT_LIMITS

    def __call__(self, results: list[ScenarioResult]) -> list[ScenarioResult]:
        """The results with EvalPlus verdicts; a sandbox failure is ``sandbox_error``, never a pass."""
        entry_points = {t.task_id: t.entry_point for t in self.dataset.tasks}
        solutions = []
        for result in results:
            task_id = str(result.scenario.verifier.model_extra.get("task_id", "")
                          if result.scenario.verifier.model_extra else "")
            reply = result.reply
            code = extract_solution(reply.raw_content, reply.reasoning, entry_points.get(task_id, "")).solution \
                if reply is not None and task_id in entry_points else ""
            solutions.append((task_id, code))
        samples = [{"task_id": task_id, "solution": code} for task_id, code in solutions if code.strip()]
        verdicts: dict[str, TaskVerdict] = {}
        error = None
        if samples:
            try:
                groundtruth = sandbox.ensure_groundtruth(self.dataset, self.cache_dir, image=self.image,
                                                         limits=self.limits)
                for verdict in sandbox.evaluate_samples(self.dataset, samples, groundtruth, options=self.options,
                                                        limits=self.limits, image=self.image):
                    verdicts[verdict.task_id] = verdict
            except SandboxError as exc:
                error = str(exc)
        judged = []
        for result, (task_id, code) in zip(results, solutions, strict=True):
            if task_id not in entry_points:
                fields: dict[str, Any] = {"score": 0, "failure_mode": "verifier_fail", "checks": [],
                          "detail": f"task {task_id!r} is not in {self.dataset.path}"}
            else:
                fields = _verdict_fields(result, code, verdicts.get(task_id), error if code.strip() else None)
            judged.append(result.model_copy(update={**fields, "status": status_for(float(fields["score"]))}))
        return judged


# --- LiveCodeBench -----------------------------------------------------------------------------

TestKind = Literal["passed", "wrong_answer", "runtime_error", "timeout"]
_PYTHON_LANGS = ("python", "py", "python3")
LCB_LIMITS = Limits(memory="1g", cpus=1.0, pids=64)  # one program at a time; frozen, so shared safely
_DRIVER = f"{agent_sandbox.CHECK_DIR}/driver.py"
_SOLUTION = f"{agent_sandbox.CHECK_DIR}/solution.py"
# Run one test, then kill every process the program left behind (kill -1 spares only the caller
# and PID 1), so a daemon or a fork bomb cannot hold the PIDs cap or the output stream open.
_ONE_TEST = 'python3 -I "$@"; code=$?; kill -9 -1 2>/dev/null; exit $code'
# The driver runs inside the container as the agent user. The header gives the names a judge of
# LiveCodeBench solutions provides (``List`` from typing, ``Counter``, ``heappush``, ...).
# Functional mode: each stdin line is one JSON argument; the method's return value goes out as
# JSON on a private copy of stdout, while the program's own prints go to stderr.
_DRIVER_SOURCE = '''import json, os, sys
HEADER = """import bisect, collections, functools, heapq, itertools, math, operator, random, re, string, sys
from bisect import bisect_left, bisect_right, insort
from collections import Counter, OrderedDict, defaultdict, deque
from functools import cache, cmp_to_key, lru_cache, reduce
from heapq import heapify, heappop, heappush, heappushpop, heapreplace, nlargest, nsmallest
from itertools import accumulate, chain, combinations, count, groupby, pairwise, permutations, product
from math import ceil, comb, factorial, floor, gcd, inf, isqrt, lcm, log2, sqrt
from typing import *
"""
mode, path = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as handle:
    code = compile(handle.read(), "solution.py", "exec")
namespace = {"__name__": "__main__" if mode == "stdin" else "solution", "__file__": "solution.py"}
if mode == "stdin":
    exec(HEADER, namespace)
    exec(code, namespace)
else:
    args = [json.loads(line) for line in sys.stdin.read().split("\\n") if line.strip()]
    result_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    exec(HEADER, namespace)
    exec(code, namespace)
    if not isinstance(namespace.get("Solution"), type):
        raise SystemExit("the program defines no class Solution")
    value = getattr(namespace["Solution"](), sys.argv[3])(*args)
    result_out.write(json.dumps(value) + "\\n")
    result_out.flush()
'''


def lcb_program(content: str, reasoning: str, func_name: str | None) -> str:
    """The program in a reply: the last fenced block that defines ``func_name`` (functional
    problems), else the last Python-labelled one that parses, else the last unlabelled one that
    parses, else the last code block at all; code in the reasoning only when the content is empty."""
    visible = strip_think(content or "")
    source = visible if visible.strip() else (reasoning or "")
    blocks = [(lang, body) for lang, body in fenced_blocks(source) if lang in (*_PYTHON_LANGS, "")]
    parsing = [(lang, body) for lang, body in blocks if body.strip() and parses(body)]
    groups = [[body for lang, body in parsing if lang in _PYTHON_LANGS], [body for lang, body in parsing if not lang],
              [body for _, body in blocks if body.strip()]]
    if func_name:
        groups.insert(0, [body for _, body in parsing if re.search(rf"\bdef\s+{re.escape(func_name)}\s*\(", body)])
    for group in groups:
        if group:
            return group[-1]
    if not blocks and visible.strip() and parses(visible) and re.search(r"\bdef |print\(|input\(|stdin", visible):
        return visible  # a bare program without a fence
    return ""


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]


def _same_numbers(expected: str, actual: str) -> bool:
    want, got = expected.split(), actual.split()
    if len(want) != len(got) or any("_" in token for token in want + got):
        return False
    try:
        return all(Decimal(a) == Decimal(b) for a, b in zip(want, got, strict=True))
    except InvalidOperation:
        return False


def stdout_matches(expected: str, actual: str) -> bool:
    """LiveCodeBench's comparison: outer and per-line whitespace ignored; a line that differs as
    text still matches when its tokens are the same numbers (``1.50`` and ``1.5``)."""
    want, got = _lines(expected), _lines(actual)
    return len(want) == len(got) and all(w == g or _same_numbers(w, g) for w, g in zip(want, got, strict=True))


def return_matches(expected: str, actual: str) -> bool:
    """A functional test: the JSON-decoded return value equals the JSON-decoded expected output
    (Python's equality, as LiveCodeBench compares: ``1 == 1.0 == true``)."""
    try:
        return bool(json.loads(expected) == json.loads(actual))
    except ValueError:
        return expected.strip() == actual.strip()


@dataclass(frozen=True)
class TestOutcome:
    """How one test of a problem went."""

    name: str
    kind: TestKind
    detail: str = ""


def _short(text: str, limit: int = 200) -> str:
    flat = text.strip()
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _outcome(name: str, test: dict[str, str], result: ExecResult, limit_s: float) -> TestOutcome:
    if result.timed_out:
        return TestOutcome(name, "timeout", f"killed at the {limit_s:.3g} s limit")
    stderr = result.stderr.decode("utf-8", errors="replace")
    if result.exit_code != 0:
        last = stderr.strip().splitlines()[-1:]
        return TestOutcome(name, "runtime_error", f"exit {result.exit_code}" + (f": {_short(last[0])}" if last else ""))
    if result.stdout_bytes > len(result.stdout):
        return TestOutcome(name, "wrong_answer", f"output of {result.stdout_bytes} bytes, far longer than expected")
    stdout = result.stdout.decode("utf-8", errors="replace")
    if test["testtype"] == "functional":
        returned = (stdout.strip().splitlines() or [""])[-1]
        ok = return_matches(test["output"], returned)
        shown = f"returned {_short(returned, 100)}"
    else:
        ok = stdout_matches(test["output"], stdout)
        shown = f"printed {_short(stdout, 100)!r}"
    if ok:
        return TestOutcome(name, "passed")
    return TestOutcome(name, "wrong_answer", f"{shown}, expected {_short(test['output'], 100)!r}")


def run_lcb_tests(program: str, tests: list[dict[str, str]], func_name: str | None, *, label: str,
                  image: str = agent_sandbox.AGENT_IMAGE, limits: Limits = LCB_LIMITS,
                  test_timeout_s: float = 6.0, budget_s: float = 120.0) -> list[TestOutcome]:
    """Run a program against every test in one fresh locked container (``label`` names it); tests
    left when the budget is spent fail as timeouts. Raises SandboxError when the container fails."""
    tmpfs = {agent_sandbox.WORKSPACE: f"rw,nosuid,nodev,size={agent_sandbox.WORKSPACE_MB}m,uid=10003,gid=10003,"
                                      "mode=0755",
             "/tmp": "rw,nosuid,nodev,size=64m,mode=1777",
             agent_sandbox.CHECK_DIR: "rw,nosuid,nodev,size=16m,uid=10004,gid=10004,mode=0755"}
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    box = Container.create(image, name_prefix="bw-lcb", user=agent_sandbox.AGENT_USER, limits=limits, tmpfs=tmpfs,
                           env=env, workdir=agent_sandbox.WORKSPACE,
                           labels={"benchwright": "sandbox-agent", "benchwright.scenario": label})
    try:
        box.start()
        # Copied in by the check user: the program can read but not rewrite itself or the driver.
        copied = box.exec(["tar", "-x", "--no-same-owner", "-C", agent_sandbox.CHECK_DIR, "-f", "-"],
                          user=agent_sandbox.CHECK_USER, env=env, timeout_s=60, max_output=64 * 1024,
                          stdin=_tar({"driver.py": _DRIVER_SOURCE.encode(), "solution.py": program.encode()}))
        if copied.exit_code != 0:
            raise SandboxError(f"{label}: copying the program in failed: "
                               f"{copied.stderr.decode(errors='replace').strip()[-300:]}")
        deadline = time.monotonic() + budget_s
        outcomes = []
        for index, test in enumerate(tests, start=1):
            name = f"test {index} ({test['testtype']})"
            limit_s = min(test_timeout_s, deadline - time.monotonic())
            if limit_s <= 0:
                outcomes.append(TestOutcome(name, "timeout", f"not run: the {budget_s:g} s budget was spent"))
                continue
            mode = ["functional", _SOLUTION, func_name or ""] if test["testtype"] == "functional" else \
                ["stdin", _SOLUTION]
            result = box.exec(["bash", "--noprofile", "--norc", "-c", _ONE_TEST, "one-test", _DRIVER, *mode],
                              user=agent_sandbox.AGENT_USER, env=env, stdin=test["input"].encode(),
                              timeout_s=limit_s, max_output=2 * len(test["output"].encode()) + 64 * 1024)
            if result.exit_code is None and not result.timed_out and not box.running():
                raise SandboxError(f"{label}: the sandbox container stopped during {name}")
            outcomes.append(_outcome(name, test, result, limit_s))
        return outcomes
    finally:
        box.remove(background=True)


def _lcb_status(score: float, all_passed: bool) -> Status:
    return "pass" if all_passed else "fail" if status_for(score) == "fail" else "partial"


def _lcb_fields(reply: Reply | None, program: str, outcomes: list[TestOutcome] | None,
                error: str | None) -> dict[str, Any]:
    truncated = reply is not None and reply.finish_reason == "length"
    if not program.strip():
        mode = "token_limit" if truncated else "no_answer_found"
        return {"score": 0, "status": "fail", "failure_mode": mode, "detail": "no_code: no program found in the reply",
                "checks": []}
    if error is not None or not outcomes:
        return {"score": 0, "status": "fail", "failure_mode": "sandbox_error", "checks": [],
                "detail": error or "no tests were run"}
    passed = sum(o.kind == "passed" for o in outcomes)
    score = round(100 * passed / len(outcomes), 2)
    checks = [Check(name=o.name, ok=o.kind == "passed", detail=f"{o.kind}: {o.detail}" if o.detail else o.kind)
              for o in outcomes]
    fields = {"score": score, "status": _lcb_status(score, passed == len(outcomes)), "checks": checks}
    if passed == len(outcomes):
        return {**fields, "failure_mode": "passed", "detail": f"all {passed} tests pass"}
    first = next(o for o in outcomes if o.kind != "passed")
    counts = ", ".join(f"{sum(o.kind == kind for o in outcomes)} {kind}" for kind in ("wrong_answer",
                       "runtime_error", "timeout") if any(o.kind == kind for o in outcomes))
    # The schema has no runtime_error/timeout modes for code (``timeout`` means the endpoint's
    # budget): a crash or an endless program is ``verifier_fail``, named first in the detail.
    mode = "token_limit" if truncated else "wrong_answer" if first.kind == "wrong_answer" else "verifier_fail"
    return {**fields, "failure_mode": mode,
            "detail": f"{first.kind}: {passed}/{len(outcomes)} tests pass ({counts}); first failure {first.name}: "
                      f"{first.detail}"}


@dataclass
class LiveCodeBenchJudge:
    """Judge LiveCodeBench scenarios (``verifier.tests``, ``verifier.func_name``) in the agent sandbox."""

    image: str = agent_sandbox.AGENT_IMAGE
    limits: Limits = LCB_LIMITS
    test_timeout_s: float = 6.0
    budget_s: float = 120.0
    parallel: int = 2

    def _judge_one(self, result: ScenarioResult, image_error: str | None) -> ScenarioResult:
        extra = result.scenario.verifier.model_extra or {}
        tests, func_name = list(extra.get("tests") or []), extra.get("func_name")
        reply = result.reply
        program = lcb_program(reply.raw_content, reply.reasoning, func_name) if reply is not None else ""
        outcomes, error = None, image_error
        if not tests:
            fields: dict[str, Any] = {"score": 0, "status": "fail", "failure_mode": "verifier_fail", "checks": [],
                                      "detail": "the scenario has no tests"}
            return result.model_copy(update=fields)
        if program.strip() and error is None:
            try:
                outcomes = run_lcb_tests(program, tests, func_name, label=f"{result.pack_id}/{result.scenario_id}",
                                         image=self.image, limits=self.limits, test_timeout_s=self.test_timeout_s,
                                         budget_s=self.budget_s)
            except SandboxError as exc:
                error = str(exc)
        return result.model_copy(update=_lcb_fields(reply, program, outcomes, error))

    def __call__(self, results: list[ScenarioResult]) -> list[ScenarioResult]:
        """The results with verdicts from running each program; a sandbox failure is ``sandbox_error``."""
        image_error = None
        try:
            agent_sandbox.require_agent_image(self.image)
        except SandboxError as exc:
            image_error = str(exc)
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="lcb-judge") as pool:
            return list(pool.map(lambda r: self._judge_one(r, image_error), results))
