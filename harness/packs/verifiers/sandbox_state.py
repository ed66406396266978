"""Sandbox: judge the state an agent (or an executed solution) left behind, not what it said.

Pure over the recorded evidence (workspace snapshots before and after, the check commands'
outputs, the submitted status and answer), so a stored run rescores without a container.
Every core assert passing is a pass (100); otherwise the score is the best ``credit`` a
passing assert carries (partial credit only where the pack says so), else 0.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.packs.schema import Check, FileState, Reply, SandboxEvidence, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, short, values_equal

_FILE_EXPECTATIONS = ("equals", "contains", "not_contains", "regex", "lines", "json_value", "exists",
                      "unchanged", "mode")
_MATCHERS = ("equals", "contains", "not_contains", "regex", "lines", "json")
_END_REASON_MODES = {"loop": "loop_detected", "hallucinations": "tool_hallucination",
                     "wall_budget": "agent_runner_timeout", "max_tokens": "token_limit"}
STATUSES = ("done", "no_change", "impossible", "unsafe")


class SandboxAssert(SpecModel):
    check: Literal["file", "no_changes", "unchanged_except", "command", "submitted", "answer"]
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


def _command_check(index: int, a: SandboxAssert, evidence: SandboxEvidence) -> tuple[bool, str]:
    probe = next((p for p in evidence.probes if p.assert_index == index), None)
    if probe is None:
        return False, "check command did not run"
    if probe.timed_out:
        return False, "check command timed out"
    problems = []
    if a.exit_code is not None and probe.exit_code != a.exit_code:
        problems.append(f"exit {probe.exit_code}, wanted {a.exit_code}; stderr {short(probe.stderr, 100)!r}")
    for label, matcher, text in (("stdout", a.stdout, probe.stdout), ("stderr", a.stderr, probe.stderr)):
        if matcher:
            op, expected = next(iter(matcher.items()))
            if not _text_match(op, expected, text):
                problems.append(f"{label} {short(text, 100)!r} fails {op}")
    return not problems, "; ".join(problems)


def _answer_check(a: SandboxAssert, answer: str) -> tuple[bool, str]:
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
        elif a.check == "submitted":
            ok = evidence.status == a.status
            detail = "" if ok else f"status {evidence.status or 'none (never submitted)'}"
        else:
            ok, detail = _answer_check(a, evidence.answer)
        checks.append((a, Check(name=_label(a), ok=ok, detail=detail)))
    return checks


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    spec = Spec.model_validate(scenario.verifier.model_dump())
    evidence = reply.sandbox
    if evidence is None:
        return Verdict(score=0, failure_mode="no_answer_found", detail="no sandbox evidence recorded")
    results = evaluate(spec, evidence)
    checks = [check for _, check in results]
    failed = [check for a, check in results if a.core and not check.ok]
    if not failed:
        return Verdict(score=100.0, failure_mode="passed", detail=f"{len(checks)} checks passed", checks=checks)
    score = max((a.credit or 0.0 for a, check in results if check.ok and a.credit), default=0.0)
    acted = evidence.status is not None or evidence.answer.strip() or reply.tool_calls or _changes(evidence, [])
    mode = "verifier_fail" if acted else "no_answer_found"
    if reply.agent is not None and reply.agent.end_reason in _END_REASON_MODES:
        mode = _END_REASON_MODES[reply.agent.end_reason]
    detail = "; ".join(f"{c.name}: {c.detail}" if c.detail else c.name for c in failed[:3])
    return Verdict(score=score, failure_mode=mode, detail=f"failed {detail}", checks=checks)  # type: ignore[arg-type]
