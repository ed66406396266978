"""Sandbox: judge the state an agent (or an executed solution) left behind, not what it said.

Pure over the recorded evidence (workspace snapshots before and after, the check commands'
outputs, the submitted status and answer), so a stored run rescores without a container.
Every core assert passing is a pass (100); otherwise the score is the best ``credit`` a
passing assert carries (partial credit only where the pack says so), else 0.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.packs.schema import Check, FileState, Reply, SandboxEvidence, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, short, values_equal

_FILE_EXPECTATIONS = ("equals", "contains", "not_contains", "regex", "lines", "json_value", "exists",
                      "unchanged", "mode")
_MATCHERS = ("equals", "contains", "not_contains", "regex", "lines", "json")
END_REASON_MODES = {"loop": "loop_detected", "hallucinations": "tool_hallucination",
                     "wall_budget": "agent_runner_timeout", "max_tokens": "token_limit"}
STATUSES = ("done", "no_change", "impossible", "unsafe")


class SandboxAssert(SpecModel):
    check: Literal["file", "no_changes", "unchanged_except", "command", "submitted", "answer", "diff", "tests_kept"]
    name: str | None = None
    core: bool = True
    credit: float | None = Field(default=None, gt=0, lt=85, description="score when core fails but this passes")
    path: str | None = None
    equals: str | None = None
    contains: str | None = None
    not_contains: str | None = None
    regex: str | None = None
    lines: list[str] | None = None
    json_value: Any = Field(default=None, alias="json")
    exists: bool | None = None
    unchanged: bool | None = None
    mode: str | None = Field(default=None, pattern=r"^[0-7]{3,4}$")
    paths: list[str] = []
    run: str | None = None
    stdin: str | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=600)
    exit_code: int | None = None
    stdout: dict[str, Any] | None = None
    stderr: dict[str, Any] | None = None
    status: Literal["done", "no_change", "impossible", "unsafe"] | None = None
    max_changed_lines: int | None = Field(default=None, ge=0, description="diff: lines added + removed")
    fresh_clone: bool = Field(default=False, description="command: run in a fresh clone of the final state")
    repeat: int = Field(default=1, ge=1, le=5, description="command: runs, each in its own fresh clone")

    model_config = SpecModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _fits_check(self) -> SandboxAssert:
        given = [f for f in _FILE_EXPECTATIONS if f in self.model_fields_set]
        if self.check == "file":
            if not self.path:
                raise ValueError("a file assert needs path")
            if len(given) != 1:
                raise ValueError("a file assert needs exactly one of equals, contains, not_contains, regex, lines, "
                                 f"json, exists, unchanged, mode (got {', '.join(given) or 'none'})")
        elif self.check == "command":
            if not self.run:
                raise ValueError("a command assert needs run")
            for matcher in (self.stdout, self.stderr):
                if matcher is not None and (len(matcher) != 1 or next(iter(matcher)) not in _MATCHERS):
                    raise ValueError(f"stdout/stderr take one of {', '.join(_MATCHERS)}")
        elif self.check == "submitted" and self.status is None:
            raise ValueError("a submitted assert needs status")
        elif self.check == "answer" and not ({"contains", "not_contains", "regex"} & self.model_fields_set):
            raise ValueError("an answer assert needs contains, not_contains or regex")
        elif self.check == "unchanged_except" and not self.paths:
            raise ValueError("unchanged_except needs paths")
        elif self.check == "diff" and (not self.path or self.max_changed_lines is None):
            raise ValueError("a diff assert needs path and max_changed_lines")
        elif self.check == "tests_kept" and not self.path:
            raise ValueError("a tests_kept assert needs path (a file, or a folder ending in /)")
        if self.check != "command" and (self.fresh_clone or self.repeat != 1):
            raise ValueError("fresh_clone and repeat belong to command asserts")
        if self.repeat > 1 and not self.fresh_clone:
            raise ValueError("repeat needs fresh_clone: true (each run gets its own clean checkout)")
        for pattern in (self.regex, (self.stdout or {}).get("regex"), (self.stderr or {}).get("regex")):
            if isinstance(pattern, str):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"regex {pattern!r} does not compile ({exc})") from None
        return self


class Spec(SpecModel):
    type: Literal["sandbox"]
    asserts: list[SandboxAssert] = Field(min_length=1)


def _text_match(op: str, expected: Any, text: str) -> bool:
    if op == "equals":
        return text == expected
    if op == "contains":
        return str(expected) in text
    if op == "not_contains":
        return str(expected) not in text
    if op == "regex":
        return re.search(expected, text, re.MULTILINE) is not None
    if op == "lines":
        return text.rstrip("\n").split("\n") == list(expected) if text else list(expected) == []
    if op == "json":
        try:
            return values_equal(expected, json.loads(text))
        except ValueError:
            return False
    raise ValueError(op)


def _same(a: FileState | None, b: FileState | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.kind, a.mode, a.sha256, a.target) == (b.kind, b.mode, b.sha256, b.target)


def _changes(evidence: SandboxEvidence, allowed: list[str]) -> list[str]:
    def covered(path: str) -> bool:
        return any(path == p.rstrip("/") or path.startswith(p if p.endswith("/") else p + "/") for p in allowed)
    changed = []
    for path in sorted(set(evidence.before) | set(evidence.after)):
        if covered(path) or _same(evidence.before.get(path), evidence.after.get(path)):
            continue
        if evidence.after.get(path, None) is not None and evidence.after[path].kind == "dir" \
                and evidence.before.get(path) is not None and evidence.before[path].kind == "dir":
            continue  # a folder's mode change alone is not collateral damage worth failing on
        word = "added" if path not in evidence.before else "removed" if path not in evidence.after else "changed"
        changed.append(f"{path} {word}")
    return changed


def _file_check(a: SandboxAssert, evidence: SandboxEvidence) -> tuple[bool, str]:
    path = a.path or ""
    state = evidence.after.get(path)
    if "exists" in a.model_fields_set:
        present = state is not None
        return present == a.exists, "" if present == a.exists else ("present" if present else "absent")
    if "unchanged" in a.model_fields_set:
        same = _same(evidence.before.get(path), state)
        return same == bool(a.unchanged), "" if same == bool(a.unchanged) else ("changed" if not same else "unchanged")
    if state is None or state.kind != "file":
        return False, "absent" if state is None else f"is a {state.kind}"
    if a.mode is not None:
        ok = state.mode == int(a.mode, 8)
        return ok, "" if ok else f"mode {state.mode:o}"
    if state.text is None:
        return False, f"not readable as UTF-8 text of at most 64 KiB ({state.size} bytes)"
    op = next(f for f in _FILE_EXPECTATIONS if f in a.model_fields_set)
    expected = a.json_value if op == "json_value" else getattr(a, op)
    ok = _text_match("json" if op == "json_value" else op, expected, state.text)
    return ok, "" if ok else f"content {short(state.text, 80)!r}"


def _covers(scope: str, path: str) -> bool:
    """A file path, or a folder given with a trailing slash (everything under it)."""
    return path.startswith(scope) if scope.endswith("/") else path == scope


def _lines_of(state: FileState | None) -> list[str] | None:
    if state is None:
        return []
    return state.text.splitlines() if state.kind == "file" and state.text is not None else None


def _diff_check(a: SandboxAssert, evidence: SandboxEvidence) -> tuple[bool, str]:
    """Lines added + removed in the scoped files: reformatting unrelated lines shows up here."""
    scope, changed, unreadable = a.path or "", 0, []
    for path in sorted(p for p in set(evidence.before) | set(evidence.after) if _covers(scope, p)):
        before, after = evidence.before.get(path), evidence.after.get(path)
        if _same(before, after) or (before and before.kind == "dir") or (after and after.kind == "dir"):
            continue
        old, new = _lines_of(before), _lines_of(after)
        if old is None or new is None:
            unreadable.append(path)
            continue
        changed += sum(1 for line in difflib.ndiff(old, new) if line[:1] in "+-")
    limit = a.max_changed_lines or 0
    if unreadable:
        return False, f"not comparable as text: {', '.join(unreadable[:3])}"
    return changed <= limit, "" if changed <= limit else f"{changed} lines changed, at most {limit} allowed"


_TEST_DEF = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+(test\w*)[ \t]*\(")
_TEST_CLASS = re.compile(r"^class[ \t]+(Test\w*)")


def _test_names(snapshot: dict[str, FileState], scope: str) -> set[str]:
    """``file::[Class.]test_name`` of every Python test function under scope."""
    names: set[str] = set()
    for path, state in snapshot.items():
        if not (_covers(scope, path) and path.endswith(".py") and state.text):
            continue
        klass = ""
        for line in state.text.splitlines():
            if line[:1].strip() and not line.startswith(("#", "@", ")", "]", "}")):
                found_class = _TEST_CLASS.match(line)
                klass = found_class.group(1) + "." if found_class else ""
            if (found := _TEST_DEF.match(line)) is not None:
                names.add(f"{path}::{klass if found.group(1) else ''}{found.group(2)}")
    return names


def _tests_kept_check(a: SandboxAssert, evidence: SandboxEvidence) -> tuple[bool, str]:
    missing = sorted(_test_names(evidence.before, a.path or "") - _test_names(evidence.after, a.path or ""))
    return not missing, "" if not missing else f"missing: {', '.join(missing[:4])}" + (
        f" (+{len(missing) - 4} more)" if len(missing) > 4 else "")


def _command_check(index: int, a: SandboxAssert, evidence: SandboxEvidence) -> tuple[bool, str]:
    probes = [p for p in evidence.probes if p.assert_index == index]
    if len(probes) < a.repeat:
        return False, "check command did not run" if not probes else f"ran {len(probes)} of {a.repeat} times"
    for run, probe in enumerate(probes, start=1):
        where = f"run {run} of {len(probes)}: " if len(probes) > 1 else ""
        if probe.timed_out:
            return False, f"{where}check command timed out"
        problems = []
        if a.exit_code is not None and probe.exit_code != a.exit_code:
            problems.append(f"exit {probe.exit_code}, wanted {a.exit_code}; stderr {short(probe.stderr, 100)!r}")
        for label, matcher, text in (("stdout", a.stdout, probe.stdout), ("stderr", a.stderr, probe.stderr)):
            if matcher:
                op, expected = next(iter(matcher.items()))
                if not _text_match(op, expected, text):
                    problems.append(f"{label} {short(text, 100)!r} fails {op}")
        if problems:
            return False, where + "; ".join(problems)
    return True, ""


def submitted_check(wanted: str | None, status: str | None) -> tuple[bool, str]:
    ok = status == wanted
    return ok, "" if ok else f"status {status or 'none (never submitted)'}"


def answer_check(a: Any, answer: str) -> tuple[bool, str]:
    """An answer assert (``contains``/``not_contains`` ignore case; ``regex``), shared with the world verifier."""
    folded = answer.casefold()
    ok = True
    if a.contains is not None:
        ok &= a.contains.casefold() in folded
    if a.not_contains is not None:
        ok &= a.not_contains.casefold() not in folded
    if a.regex is not None:
        ok &= re.search(a.regex, answer) is not None
    return ok, "" if ok else f"answer {short(answer, 80)!r}"


def _label(a: SandboxAssert) -> str:
    if a.name:
        return a.name
    if a.check == "file":
        op = next(f for f in _FILE_EXPECTATIONS if f in a.model_fields_set)
        return f"{a.path}: {op.replace('_value', '')}"
    if a.check == "command":
        return f"$ {short(a.run or '', 50)}"
    if a.check == "submitted":
        return f"submitted {a.status}"
    if a.check == "unchanged_except":
        return f"nothing else changed (except {', '.join(a.paths)})"
    if a.check == "diff":
        return f"{a.path}: at most {a.max_changed_lines} lines changed"
    if a.check == "tests_kept":
        return f"{a.path}: no test deleted or renamed"
    return a.check.replace("_", " ")


def evaluate(spec: Spec, evidence: SandboxEvidence) -> list[tuple[SandboxAssert, Check]]:
    checks = []
    for index, a in enumerate(spec.asserts):
        if a.check == "file":
            ok, detail = _file_check(a, evidence)
        elif a.check in ("no_changes", "unchanged_except"):
            changes = _changes(evidence, a.paths)
            ok, detail = not changes, ", ".join(changes[:5]) + (f" (+{len(changes) - 5} more)" if len(changes) > 5
                                                                else "")
        elif a.check == "command":
            ok, detail = _command_check(index, a, evidence)
        elif a.check == "diff":
            ok, detail = _diff_check(a, evidence)
        elif a.check == "tests_kept":
            ok, detail = _tests_kept_check(a, evidence)
        elif a.check == "submitted":
            ok, detail = submitted_check(a.status, evidence.status)
        else:
            ok, detail = answer_check(a, evidence.answer)
        checks.append((a, Check(name=_label(a), ok=ok, detail=detail)))
    return checks


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    spec = Spec.model_validate(scenario.verifier.model_dump())
    evidence = reply.sandbox
    if evidence is None:
        return Verdict(score=0, failure_mode="no_answer_found", detail="no sandbox evidence recorded")
    results = evaluate(spec, evidence)
    acted = bool(evidence.status is not None or evidence.answer.strip() or reply.tool_calls or _changes(evidence, []))
    return verdict_of(results, acted, reply)


def verdict_of(results: list[tuple[Any, Check]], acted: bool, reply: Reply) -> Verdict:
    """Every core assert passing is a pass (100); otherwise the best ``credit`` of a passing assert,
    else 0. The failure mode says whether the agent did nothing, or how its episode ended."""
    checks = [check for _, check in results]
    failed = [check for a, check in results if a.core and not check.ok]
    if not failed:
        return Verdict(score=100.0, failure_mode="passed", detail=f"{len(checks)} checks passed", checks=checks)
    score = max((a.credit or 0.0 for a, check in results if check.ok and a.credit), default=0.0)
    mode = "verifier_fail" if acted else "no_answer_found"
    if reply.agent is not None and reply.agent.end_reason in END_REASON_MODES:
        mode = END_REASON_MODES[reply.agent.end_reason]
    detail = "; ".join(f"{c.name}: {c.detail}" if c.detail else c.name for c in failed[:3])
    return Verdict(score=score, failure_mode=mode, detail=f"failed {detail}", checks=checks)  # type: ignore[arg-type]
