"""BenchLocal ``kind`` asserts, judged with benchlocal-cli's pass rules.

An imported BenchLocal scenario keeps its upstream verifier as ``{"type": "benchlocal",
"upstream": "<tool_call|instruct_follow|...>", "asserts": [...]}`` so that its numbers compare
with the runs users made with benchlocal-cli: a scenario passes (100) only when every assert
holds, and the first failing assert names the failure mode. reason_math answer axes and
data_extract field shares keep their upstream partial score below the pass line. Assert values
are validated at load time (``problems``), so a wrong value is a PackError, never a crash.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import model_validator

from harness.packs.schema import PASS_SCORE, Check, FailureMode, Reply, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, short
from harness.packs.verifiers.benchlocal_json import (
    FIELD_PASS_PERCENT,
    Outcome,
    compare_expected,
    extract_check,
    parse_json,
    realign,
    struct_check,
    top_shape,
    unsupported_schema_keywords,
)

Upstream = Literal["tool_call", "instruct_follow", "struct_output", "reason_math", "data_extract", "answer_match",
                   "_stub"]
# kind -> {field: expected Python type(s)}; "?" marks an optional field. Regex fields are compiled at load.
KINDS: dict[str, dict[str, dict[str, Any]]] = {
    "tool_call": {
        "exact_function_name": {"value": str}, "function_name_in": {"values": list},
        "required_function_names": {"values": list}, "tool_call_count": {"value": int},
        "content_regex": {"pattern": "regex"}, "required_args_present": {"args": list},
        "forbidden_args_absent": {"args": list}, "exact_arg_value": {"arg": str, "value": object},
        "arg_regex": {"arg": str, "pattern": "regex"}, "arg_in_enum": {"arg": str, "values": list},
        "arg_numeric_range": {"arg": str, "min?": "number", "max?": "number"},
        "multi_call_order": {"expected_names": list, "dependent?": bool},
    },
    "instruct_follow": {
        "exact_length_words": {"value": int}, "max_length_words": {"value": int}, "min_length_words": {"value": int},
        "case_only": {"value": ("lowercase", "uppercase", "titlecase")}, "format_regex": {"pattern": "regex"},
        "required_phrase": {"value": str}, "required_phrase_any": {"values": list}, "forbidden_phrase": {"value": str},
        "required_url_count": {"min": int}, "required_section_headers": {"headers": list},
        "bullet_count": {"value": int}, "language": {"value": str},
    },
    "struct_output": {
        "json_parse_required": {}, "json_schema": {"schema": dict}, "yaml_parse_required": {},
        "exact_json": {"value": object},
        "jsonpath_assertion": {"path": "jsonpath", "value?": object, "regex?": "regex"},
        "csv_columns": {"expected": list}, "markdown_structure": {"headers": list},
        "format_regex": {"pattern": "regex"},
    },
    "reason_math": {
        "exact_numeric": {"value": "number"}, "tolerance_numeric": {"value": "number", "tolerance": "number"},
        "exact_string": {"value": str, "canonical_answer?": str, "accepted_answers?": list, "partial_answers?": list,
                         "checkpoints?": list},
        "regex_match": {"pattern": "regex"},
    },
    "data_extract": {
        "field_required": {"field": str}, "field_exact_value": {"field": str, "value": object},
        "field_regex": {"field": str, "pattern": "regex"}, "field_in_set": {"field": str, "values": list},
        "no_extra_fields": {"allowed": list},
    },
    "answer_match": {
        "exact_numeric": {"value": "number"}, "tolerance_numeric": {"value": "number", "tolerance": "number"},
        "exact_letter": {"value": ("A", "B", "C", "D", "a", "b", "c", "d")},
    },
    "_stub": {"_stub": {"reason?": str}},
}
# Upstream failure modes we have no name for; the upstream name stays in the detail.
_OUR_MODE: dict[str, FailureMode] = {"missing_field": "schema_violation", "extra_fields": "schema_violation"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _value_problem(rule: Any, value: Any) -> str | None:
    if isinstance(rule, tuple):
        return None if value in rule else f"must be one of {', '.join(map(str, rule))}"
    if rule == "number":
        return None if _number(value) is not None else "must be a number"
    if rule == "regex" or rule == "jsonpath":
        if not isinstance(value, str):
            return "must be a string"
        if rule == "jsonpath":
            return None if value.startswith("$.") else "must start with '$.'"
        try:
            re.compile(value)
        except re.error as exc:
            return f"not a valid regular expression ({exc})"
        return None
    if rule is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        return "must be a whole number >= 0"
    if rule is not object and not isinstance(value, rule):
        return f"must be {'an' if rule in (int, object, list) else 'a'} {getattr(rule, '__name__', rule)}"
    return None


def problems(upstream: str, asserts: list[dict[str, Any]]) -> list[str]:
    """Wrong values in the asserts, as ``asserts[i].field: why`` (empty when they are fine)."""
    found = []
    for index, a in enumerate(asserts):
        kinds = KINDS[upstream]
        kind = a.get("kind")
        if kind not in kinds:
            found.append(f"asserts[{index}].kind: unknown {upstream} assert {kind!r} (known: {', '.join(kinds)})")
            continue
        for name, rule in kinds[kind].items():
            key = name.rstrip("?")
            if key not in a:
                if not name.endswith("?"):
                    found.append(f"asserts[{index}].{key}: required by {kind}")
                continue
            if (why := _value_problem(rule, a[key])) is not None:
                found.append(f"asserts[{index}].{key}: {why}")
        if kind == "json_schema" and isinstance(a.get("schema"), dict) \
                and (unknown := unsupported_schema_keywords(a["schema"])):
            found.append(f"asserts[{index}].schema: keyword(s) not supported: {', '.join(sorted(set(unknown)))}")
        if kind == "markdown_structure" and any(not (isinstance(h, str) and h.strip().startswith("|"))
                                                for h in a.get("headers", [])):
            found.append(f"asserts[{index}].headers: each must be a '| a | b |' table row")
    return found


def unknown_keys(upstream: str, asserts: list[dict[str, Any]]) -> list[str]:
    """Assert fields upstream does not define (kept, but worth a warning)."""
    out = []
    for index, a in enumerate(asserts):
        known = {name.rstrip("?") for name in KINDS[upstream].get(a.get("kind", ""), {})} | {"kind"}
        out += [f"verifier.asserts[{index}].{key}" for key in a if key not in known]
    return out


class Spec(SpecModel):
    type: Literal["benchlocal"]
    upstream: Upstream
    asserts: list[dict[str, Any]] = []
    declares_top_level_shape: bool = False  # data_extract: fail a wrong top-level shape only when the prompt says it

    @model_validator(mode="after")
    def _asserts_are_valid(self) -> Spec:
        found = problems(self.upstream, self.asserts)
        if found:
            raise ValueError(found[0])
        return self


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9]+", text))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in re.findall(r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?", text)]


def _tool_check(kind: str, a: dict[str, Any], reply: Reply) -> Outcome:
    names = [c.name for c in reply.tool_calls]
    first = reply.tool_calls[0].arguments if reply.tool_calls else {}
    args = first if isinstance(first, dict) else {}
    if kind == "exact_function_name":
        return Outcome(names[:1] == [a["value"]], "verifier_fail", f"expected first tool {a['value']}, got {names[:1]}")
    if kind == "function_name_in":
        return Outcome(bool(names) and names[0] in a["values"], "verifier_fail", f"first tool {names[:1]} not allowed")
    if kind == "tool_call_count":
        return Outcome(len(names) == a["value"], "verifier_fail", f"expected {a['value']} tool calls, got {len(names)}")
    if kind == "required_function_names":
        missing = [n for n in a["values"] if n not in names]
        return Outcome(not missing, "verifier_fail", f"missing required tools: {', '.join(missing)}")
    if kind == "content_regex":
        ok = re.search(a["pattern"], reply.content, re.MULTILINE | re.DOTALL) is not None
        return Outcome(ok, "verifier_fail", "content regex did not match")
    if kind in ("required_args_present", "forbidden_args_absent"):
        hits = [arg for arg in a["args"] if (arg in args) == (kind == "forbidden_args_absent")]
        what = "forbidden arguments present" if kind == "forbidden_args_absent" else "missing arguments"
        return Outcome(not hits, "verifier_fail", f"{what}: {', '.join(hits)}")
    if kind == "exact_arg_value":
        return Outcome(args.get(a["arg"]) == a["value"], "verifier_fail", f"{a['arg']} value mismatch")
    if kind == "arg_regex":
        ok = re.search(a["pattern"], str(args.get(a["arg"], ""))) is not None
        return Outcome(ok, "verifier_fail", f"{a['arg']} did not match regex")
    if kind == "arg_in_enum":
        return Outcome(args.get(a["arg"]) in a["values"], "verifier_fail", f"{a['arg']} not in enum")
    if kind == "arg_numeric_range":
        value = args.get(a["arg"])
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Outcome(False, "verifier_fail", f"{a['arg']} was not numeric")
        low, high = _number(a.get("min", -math.inf)), _number(a.get("max", math.inf))
        return Outcome((low is None or value >= low) and (high is None or value <= high), "verifier_fail",
                       f"{a['arg']} out of range")
    expected = a["expected_names"]  # multi_call_order
    if a.get("dependent"):  # one reply cannot hold later steps of a dependent chain: a correct prefix passes
        common = min(len(names), len(expected))
        return Outcome(bool(names) and names[:common] == expected[:common], "verifier_fail",
                       f"expected a prefix of {expected}, got {names}")
    return Outcome(names[:len(expected)] == expected, "verifier_fail", f"expected order {expected}, got {names}")


def _instruct_check(kind: str, a: dict[str, Any], text: str) -> Outcome:
    words = _words(text)
    if kind == "exact_length_words":
        return Outcome(words == a["value"], "verifier_fail", f"{words} words, want {a['value']}")
    if kind == "max_length_words":
        return Outcome(words <= a["value"], "verifier_fail", f"{words} words, want at most {a['value']}")
    if kind == "min_length_words":
        return Outcome(words >= a["value"], "verifier_fail", f"{words} words, want at least {a['value']}")
    if kind == "case_only":
        letters = "".join(re.findall(r"[A-Za-z]+", text))
        ok = {"lowercase": letters == letters.lower(), "uppercase": letters == letters.upper(),
              "titlecase": text == text.title()}[a["value"]]
        return Outcome(ok, "verifier_fail", f"response was not {a['value']}")
    if kind == "format_regex":
        return Outcome(re.search(a["pattern"], text, re.MULTILINE | re.DOTALL) is not None, "verifier_fail",
                       "format regex did not match")
    if kind == "required_phrase":
        return Outcome(a["value"] in text, "verifier_fail", f"missing phrase {a['value']!r}")
    if kind == "required_phrase_any":
        return Outcome(any(v in text for v in a["values"]), "verifier_fail", f"missing one of {a['values']!r}")
    if kind == "forbidden_phrase":
        return Outcome(a["value"] not in text, "verifier_fail", f"forbidden phrase {a['value']!r} present")
    if kind == "required_url_count":
        urls = len(re.findall(r"https?://\S+", text))
        return Outcome(urls >= a["min"], "verifier_fail", f"{urls} URLs, want at least {a['min']}")
    if kind == "required_section_headers":
        missing = [h for h in a["headers"] if h not in _lines(text)]
        return Outcome(not missing, "verifier_fail", f"missing headers: {', '.join(missing)}")
    if kind == "bullet_count":
        bullets = sum(1 for line in _lines(text) if re.match(r"^[-*]\s+", line))
        return Outcome(bullets == a["value"], "verifier_fail", f"{bullets} bullets, want {a['value']}")
    ok = a["value"] != "english" or not re.search(r"[^\x00-\x7F]", text)  # language: upstream checks english only
    return Outcome(ok, "verifier_fail", "non-ASCII text found in english response")


def _numeric_check(kind: str, a: dict[str, Any], numbers: list[float]) -> Outcome:
    if not numbers:
        return Outcome(False, "no_answer_found", "no numeric answer found")
    target = _number(a["value"]) or 0.0
    tolerance = _number(a.get("tolerance", 0)) or 0.0
    ok = any(abs(n - target) <= tolerance for n in numbers)
    return Outcome(ok, "wrong_answer", f"expected {a['value']}" + (f" within {a['tolerance']}" if tolerance else ""))


def _final_line(text: str) -> str | None:
    found = re.search(r"(?:ANSWER|FINAL)\s*[:：]\s*([^\n]+)", text, re.IGNORECASE)
    return found.group(1) if found else None


def _answer_check(kind: str, a: dict[str, Any], text: str) -> Outcome:
    final = _final_line(text)
    if kind == "exact_letter":
        letter = next((m.group(1).upper() for m in (re.search(r"\b([A-D])\b", c.strip(), re.IGNORECASE)
                                                     for c in ([final] if final else []) + [text]) if m), None)
        if letter is None:
            return Outcome(False, "no_answer_found", "no A/B/C/D answer letter found")
        return Outcome(letter == a["value"].upper(), "wrong_answer", f"expected {a['value'].upper()}, got {letter}")
    numbers = _numbers(final if final is not None else text)
    return _numeric_check(kind, a, numbers)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _answer_axis(a: dict[str, Any], text: str) -> tuple[int, str]:
    """Upstream ReasonMath answer axis: 2 = the final ``ANSWER: `` line is right, 1 = a listed partial."""
    lines = [line for line in text.splitlines() if line.startswith("ANSWER: ")]
    if not lines:
        return 0, 'missing final "ANSWER: " line'
    got = _norm(lines[-1])
    canonical = a.get("canonical_answer") or f"ANSWER: {a['value'].strip()}"
    if got == _norm(canonical) or got in {_norm(v) for v in a.get("accepted_answers", [])}:
        return 2, ""
    payload = re.sub(r"^answer:\s*", "", canonical.strip(), flags=re.IGNORECASE)
    if ";" not in payload and "=" in payload:
        key, value = (_norm(part) for part in payload.split("=", 1))
        bare = re.sub(r"^[a-z_][a-z0-9_ ]*=\s*", "", _norm(lines[-1][len("ANSWER: "):]))
        if _norm(lines[-1][len("ANSWER: "):]) == value or bare == value or (key.replace("_", " ") in got
                                                                           and value in got):
            return 2, ""
    if got in {_norm(v) for v in a.get("partial_answers", [])}:
        return 1, "matched a partial answer"
    return 0, f"unexpected final line: {short(lines[-1], 60)}"


def _checkpoint_hit(checkpoint: str, text: str) -> bool:
    if _norm(checkpoint) in text:
        return True
    left, sep, right = checkpoint.partition("=")
    return bool(sep) and _norm(left.replace("_", " ")) in text and _norm(right) in text


def _reason_string(a: dict[str, Any], reply: Reply) -> tuple[Outcome, float, list[Check]]:
    """Upstream exact_string with answer axes: pass on the answer; the trace axis only scores."""
    answer_points, answer_note = _answer_axis(a, reply.content.strip())
    trace = _norm(f"{reply.content}\n{reply.reasoning}")
    checkpoints = [str(c) for c in a.get("checkpoints", [])]
    hits = sum(_checkpoint_hit(c, trace) for c in checkpoints)
    trace_points = 2 if hits == len(checkpoints) else 1 if hits else 0
    upstream_score = round(100 * (0.7 * answer_points / 2 + 0.3 * trace_points / 2))
    checks = [Check(name="final ANSWER line", ok=answer_points == 2, detail=answer_note),
              Check(name="reasoning checkpoints (diagnostic)", ok=trace_points == 2,
                    detail=f"{hits}/{len(checkpoints)} matched")]
    detail = f"answer axis {answer_points}/2, trace axis {trace_points}/2 ({upstream_score}%)"
    return Outcome(answer_points == 2, "wrong_answer", detail), upstream_score, checks


def _reason_check(kind: str, a: dict[str, Any], text: str) -> Outcome:
    if kind in ("exact_numeric", "tolerance_numeric"):
        return _numeric_check(kind, a, _numbers(text))
    if kind == "regex_match":
        ok = re.search(a["pattern"], text, re.IGNORECASE | re.MULTILINE) is not None
        return Outcome(ok, "wrong_answer", "regex did not match answer")
    value = a["value"].strip()  # exact_string without answer axes: substring, else every value in the ANSWER line
    if value in text:
        return Outcome(True)
    answer_lines = re.findall(r"(?im)^[ \t]*ANSWER[ \t]*:[ \t]*(.*)$", text)
    region = _norm(answer_lines[-1] if answer_lines else text)
    wanted = [_norm(part.split("=", 1)[-1]) for part in value.split(";")]
    return Outcome(all(w and w in region for w in wanted), "wrong_answer", f"expected string {value!r}")


def _extract_expected(spec: Spec, scenario: Scenario, reply: Reply) -> Verdict:
    data, error = parse_json(reply.content)
    if error is not None:
        return Verdict(score=0, failure_mode="invalid_json", detail=f"response was not valid JSON: {error}")
    shape_ok = top_shape(data) == top_shape(scenario.expected)
    counted = compare_expected(scenario.expected, realign(scenario.expected, data))
    percent = round(100 * counted.correct / counted.total) if counted.total else 0
    passed = percent >= FIELD_PASS_PERCENT and (shape_ok or not spec.declares_top_level_shape)
    checks = [Check(name="atomic fields right", ok=percent >= FIELD_PASS_PERCENT,
                    detail=f"{counted.correct}/{counted.total} ({percent}%)"),
              Check(name="top-level shape" + ("" if spec.declares_top_level_shape else " (not enforced)"),
                    ok=shape_ok, detail="" if shape_ok else f"expected {top_shape(scenario.expected)}, "
                                                            f"got {top_shape(data)}")]
    notes = "; ".join(counted.notes[:5])
    return Verdict(score=100 if passed else min(percent, PASS_SCORE - 1), checks=checks,
                   failure_mode="passed" if passed else "verifier_fail",
                   detail=f"{counted.correct}/{counted.total} atomic fields correct ({percent}%)"
                          + (f"; {notes}" if notes else ""))


def _check(upstream: str, kind: str, a: dict[str, Any], reply: Reply, text: str, data: Any) -> Outcome:
    if upstream == "tool_call":
        return _tool_check(kind, a, reply)
    if upstream == "instruct_follow":
        return _instruct_check(kind, a, text)
    if upstream == "struct_output":
        return struct_check(kind, a, text)
    if upstream == "reason_math":
        return _reason_check(kind, a, text)
    if upstream == "data_extract":
        return extract_check(kind, a, data)
    return _answer_check(kind, a, text)


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    """Every assert in order; the first failing one decides the failure mode (upstream semantics)."""
    spec = Spec.model_validate(scenario.verifier.model_dump())
    if spec.upstream == "_stub":
        return Verdict(score=0, failure_mode="verifier_not_implemented", detail="BenchLocal _stub scenario")
    if spec.upstream == "data_extract" and scenario.expected is not None:
        return _extract_expected(spec, scenario, reply)
    text = reply.content.strip() if spec.upstream != "struct_output" else reply.content
    if spec.upstream == "tool_call":
        kinds = [a["kind"] for a in spec.asserts]
        needs_calls = kinds and 0 not in [a.get("value") for a in spec.asserts if a["kind"] == "tool_call_count"] \
            and not all(k == "content_regex" for k in kinds)
        if needs_calls and not reply.tool_calls:
            return Verdict(score=0, failure_mode="wrong_answer", detail="response did not include tool_calls")
        if any(not c.arguments_valid_json for c in reply.tool_calls):
            return Verdict(score=0, failure_mode="invalid_json", detail="tool arguments were not JSON")
    parsed = parse_json(text) if spec.upstream == "data_extract" else (None, None)
    if parsed[1] is not None:
        return Verdict(score=0, failure_mode="invalid_json", detail=f"response was not valid JSON: {parsed[1]}")
    checks: list[Check] = []
    first_fail: Outcome | None = None
    partial_score = 0.0
    for a in spec.asserts:
        kind = a["kind"]
        if spec.upstream == "reason_math" and kind == "exact_string" and \
                any(k in a for k in ("canonical_answer", "accepted_answers", "partial_answers", "checkpoints")):
            outcome, partial_score, axis_checks = _reason_string(a, reply)
            checks += axis_checks
            first_fail = first_fail or (None if outcome.ok else outcome)
            break  # upstream returns at this assert whatever follows
        outcome = _check(spec.upstream, kind, a, reply, text, parsed[0])
        checks.append(Check(name=kind, ok=outcome.ok, detail="" if outcome.ok else outcome.detail))
        first_fail = first_fail or (None if outcome.ok else outcome)
    if first_fail is None:
        return Verdict(score=100, failure_mode="passed", detail=f"all {spec.upstream} assertions passed",
                       checks=checks)
    mode = _OUR_MODE.get(first_fail.mode, first_fail.mode)
    detail = first_fail.detail + (f" (upstream: {first_fail.mode})" if mode != first_fail.mode else "")
    return Verdict(score=min(partial_score, PASS_SCORE - 1), failure_mode=mode,  # type: ignore[arg-type]
                   detail=detail, checks=checks)
