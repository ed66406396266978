"""BenchLocal's JSON-side checks (struct_output, data_extract), with upstream pass rules.

Kept apart from our own struct_output/data_extract verifiers on purpose: imported BenchLocal
packs must score the way benchlocal-cli scored them, so users can compare old and new numbers.
Each check returns an ``Outcome``; the first failing one decides the verdict, as upstream.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, NamedTuple

from harness.packs.verifiers._common import short

FIELD_PASS_PERCENT = 85  # data_extract: share of atomic fields right for a pass (upstream's threshold)
_FENCED = re.compile(r"```(?:[A-Za-z0-9_-]+)?\s*(.*?)\s*```", re.DOTALL)
SCHEMA_KEYWORDS = frozenset({"type", "const", "enum", "required", "properties", "additionalProperties", "items",
                             "prefixItems", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
                             "pattern", "title", "description", "$schema"})
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


class Outcome(NamedTuple):
    """One check's result: ok, the upstream failure mode when not ok, and why."""

    ok: bool
    mode: str = "passed"
    detail: str = ""


def unfence(text: str) -> str:
    """The body of a reply that is exactly one fenced block, else the trimmed reply."""
    match = _FENCED.fullmatch(text.strip())
    return match.group(1).strip() if match else text.strip()


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None), or (None, why) when the (unfenced) reply is not JSON."""
    try:
        return json.loads(unfence(text)), None
    except ValueError as exc:
        return None, str(exc)


def get_path(value: Any, path: str) -> Any:
    """``a.b[0].c`` inside value; raises KeyError/IndexError/TypeError when absent."""
    current = value
    for part in (p for p in path.split(".") if p):
        name, _, rest = part.partition("[")
        if name:
            if not isinstance(current, dict):
                raise TypeError(f"{name}: not an object")
            current = current[name]
        for index in re.findall(r"\[(\d+)\]", "[" + rest if rest else ""):
            if not isinstance(current, list):
                raise TypeError(f"[{index}]: not an array")
            current = current[int(index)]
    return current


def has_path(value: Any, path: str) -> bool:
    try:
        get_path(value, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def schema_problem(schema: dict[str, Any], value: Any, where: str = "$") -> str | None:
    """Why value does not fit a JSON Schema of the SCHEMA_KEYWORDS subset, or None."""
    expected_type = schema.get("type")
    if expected_type is not None and not _is_type(value, expected_type):
        return f"{where}: expected {expected_type}, got {_json_type(value)}"
    if "const" in schema and not _same(value, schema["const"]):
        return f"{where}: expected {json.dumps(schema['const'])}"
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        return f"{where}: not one of {json.dumps(schema['enum'])}"
    if isinstance(value, dict):
        missing = [key for key in schema.get("required", []) if key not in value]
        if missing:
            return f"{where}: missing {', '.join(missing)}"
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False and set(value) - set(properties):
            return f"{where}: unexpected {', '.join(sorted(set(value) - set(properties)))}"
        for key, sub in properties.items():
            if key in value and (problem := schema_problem(sub, value[key], f"{where}.{key}")):
                return problem
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            return f"{where}: {len(value)} items"
        prefix = schema.get("prefixItems", [])
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else schema.get("items")
            if isinstance(sub, dict) and (problem := schema_problem(sub, item, f"{where}[{index}]")):
                return problem
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            return f"{where}: length {len(value)}"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{where}: does not match {schema['pattern']}"
    if _is_type(value, "number"):
        if ("minimum" in schema and value < schema["minimum"]) or ("maximum" in schema and value > schema["maximum"]):
            return f"{where}: {value} out of range"
    return None


def unsupported_schema_keywords(schema: Any) -> list[str]:
    """Keywords schema_problem does not know, anywhere in the schema (checked at load time)."""
    if isinstance(schema, list):
        return [k for item in schema for k in unsupported_schema_keywords(item)]
    if not isinstance(schema, dict):
        return []
    found = [key for key in schema if key not in SCHEMA_KEYWORDS]
    for key in ("items", "prefixItems"):
        found += unsupported_schema_keywords(schema.get(key))
    for sub in (schema.get("properties") or {}).values():
        found += unsupported_schema_keywords(sub)
    return found


def _is_type(value: Any, name: str | list[str]) -> bool:
    if isinstance(name, list):
        return any(_is_type(value, n) for n in name)
    if name in ("number", "integer"):
        return isinstance(value, int | float) and not isinstance(value, bool) \
            and (name == "number" or float(value).is_integer())
    return isinstance(value, _TYPES.get(name, ()))


def _same(a: Any, b: Any) -> bool:
    """JSON equality (true is not 1)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__


def _markdown_row(line: str) -> list[str] | None:
    line = line.strip()
    if len(line) < 2 or not (line.startswith("|") and line.endswith("|")):
        return None
    return [cell.strip().lower() for cell in line[1:-1].split("|")]


def _minimal_yaml(text: str) -> str | None:
    """Why text is not flat ``key: value`` YAML (what upstream's yaml check accepts), or None."""
    keys = 0
    for line in unfence(text).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if ":" not in line:
            return f"not a key/value line: {short(line, 40)}"
        keys += bool(line.split(":", 1)[0].strip())
    return None if keys else "empty YAML document"


def struct_check(kind: str, a: dict[str, Any], text: str) -> Outcome:
    """One struct_output assert on the reply text."""
    if kind in ("json_parse_required", "json_schema", "exact_json", "jsonpath_assertion"):
        value, error = parse_json(text)
        if error is not None:
            return Outcome(False, "invalid_json", f"JSON parse failed: {error}")
        if kind == "json_schema":
            problem = schema_problem(a["schema"], value)
            return Outcome(problem is None, "schema_violation", problem or "")
        if kind == "exact_json":
            return Outcome(_same(value, a["value"]), "verifier_fail", "JSON value mismatch")
        if kind == "jsonpath_assertion":
            try:
                found = get_path(value, a["path"][2:])
            except (KeyError, IndexError, TypeError) as exc:
                return Outcome(False, "missing_field", f"{a['path']} not found ({exc})")
            if "value" in a and found != a["value"]:
                return Outcome(False, "verifier_fail", f"{a['path']} is {short(json.dumps(found), 40)}")
            if "regex" in a and not re.search(a["regex"], str(found)):
                return Outcome(False, "verifier_fail", f"{a['path']} does not match {a['regex']}")
        return Outcome(True)
    if kind == "yaml_parse_required":
        problem = _minimal_yaml(text)
        return Outcome(problem is None, "wrong_structure", f"YAML parse failed: {problem}")
    if kind == "csv_columns":
        try:
            header = next(csv.reader(io.StringIO(unfence(text))), [])
        except csv.Error as exc:
            return Outcome(False, "wrong_structure", f"CSV parse failed: {exc}")
        columns = [c.strip() for c in header]
        return Outcome(columns == a["expected"], "wrong_structure", f"CSV columns {columns}")
    if kind == "markdown_structure":
        return _markdown_tables(a["headers"], text)
    ok = re.search(a["pattern"], text, re.MULTILINE | re.DOTALL) is not None  # format_regex
    return Outcome(ok, "wrong_structure", "format regex did not match")


def _markdown_tables(headers: list[str], text: str) -> Outcome:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [_markdown_row(line) for line in lines]
    positions = []
    for header in headers:
        wanted = _markdown_row(header)
        if wanted is None or wanted not in rows:
            return Outcome(False, "wrong_structure", f"missing markdown header {header}")
        at = rows.index(wanted)
        separator = rows[at + 1] if at + 1 < len(rows) else None
        if separator is None or len(separator) != len(wanted) \
                or not all(re.fullmatch(r":?-+:?", cell.replace(" ", "")) for cell in separator):
            return Outcome(False, "wrong_structure", f"no separator row under {header}")
        positions.append(at)
    return Outcome(positions == sorted(positions), "wrong_structure", "markdown headers out of order")


def extract_check(kind: str, a: dict[str, Any], data: Any) -> Outcome:
    """One data_extract assert on the parsed reply (used when the scenario has no ``expected``)."""
    if kind == "no_extra_fields":
        if not isinstance(data, dict):
            return Outcome(False, "wrong_structure", "top-level JSON was not an object")
        extra = sorted(set(data) - set(a["allowed"]))
        return Outcome(not extra, "extra_fields", f"extra fields: {', '.join(extra)}")
    field = a["field"]
    if not has_path(data, field):
        return Outcome(False, "missing_field", f"missing field {field}")
    value = get_path(data, field)
    if kind == "field_exact_value":
        return Outcome(value == a["value"], "verifier_fail", f"{field} is {short(json.dumps(value), 40)}")
    if kind == "field_regex":
        return Outcome(re.search(a["pattern"], str(value)) is not None, "verifier_fail", f"{field} regex mismatch")
    if kind == "field_in_set":
        return Outcome(value in a["values"], "verifier_fail", f"{field} not in set")
    return Outcome(True)  # field_required


class FieldScore(NamedTuple):
    """The expected-value comparison: atomic fields right out of all, and notes on the misses."""

    correct: int
    total: int
    notes: list[str]


def compare_expected(expected: Any, actual: Any, path: str = "") -> FieldScore:
    """Atomic-field comparison as upstream: strings trimmed, numbers within 0.01, scalar arrays as
    sets, arrays of objects matched by an anchor key (the first string key unique across items)."""
    if isinstance(expected, list) and expected and all(isinstance(i, dict) for i in expected):
        return _compare_objects(expected, actual, path)
    if isinstance(expected, list):
        return _compare_scalar_list(expected, actual, path)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return FieldScore(0, len(expected), [f"{path or '$'}: expected object"])
        parts = [compare_expected(v, actual.get(k), f"{path}.{k}" if path else k) for k, v in expected.items()]
        return FieldScore(sum(p.correct for p in parts), sum(p.total for p in parts),
                          [n for p in parts for n in p.notes])
    ok = _scalar_equal(expected, actual)
    return FieldScore(int(ok), 1, [] if ok else [f"{path or '$'}: expected {json.dumps(expected)}, "
                                                 f"got {short(json.dumps(actual), 40)}"])


def _scalar_equal(expected: Any, actual: Any) -> bool:
    if expected is None or isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual.strip() == expected.strip()
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and not isinstance(actual, bool) and abs(actual - expected) <= 0.01
    return False


def _compare_scalar_list(expected: list[Any], actual: Any, path: str) -> FieldScore:
    if not isinstance(actual, list) or len(actual) != len(expected):
        return FieldScore(0, 1, [f"{path or '$'}: expected {len(expected)} items"])
    remaining = list(actual)
    for item in expected:
        match = next((i for i, got in enumerate(remaining) if _scalar_equal(item, got)), None)
        if match is None:
            return FieldScore(0, 1, [f"{path or '$'}: values differ from the expected set"])
        remaining.pop(match)
    return FieldScore(1, 1, [])


def anchor_key(items: list[dict[str, Any]]) -> str | None:
    """The key that names each expected object: the first one that is a string in all and unique."""
    for key in items[0]:
        values = [item.get(key) for item in items]
        if all(isinstance(v, str) for v in values) and len(set(values)) == len(values):
            return key
    return None


def _compare_objects(expected: list[dict[str, Any]], actual: Any, path: str) -> FieldScore:
    width = len(expected[0]) or 1
    if not isinstance(actual, list):
        return FieldScore(0, len(expected) * width, [f"{path or '$'}: expected array"])
    anchor = anchor_key(expected)
    if anchor is None:
        return FieldScore(0, len(expected), [f"{path or '$'}: no anchor key to match objects by"])
    by_anchor = {item[anchor]: item for item in actual if isinstance(item, dict) and isinstance(item.get(anchor), str)}
    correct = total = 0
    notes: list[str] = []
    for want in expected:
        got = by_anchor.get(want[anchor])
        if got is None:
            total += len(want)
            notes.append(f"{path or '$'}: no object with {anchor}={want[anchor]}")
            continue
        for key, value in want.items():
            part = compare_expected(value, got.get(key), f"{path}.{key}" if path else key)
            correct, total, notes = correct + part.correct, total + part.total, notes + part.notes
    return FieldScore(correct, total, notes)


def realign(expected: Any, actual: Any) -> Any:
    """A one-item wrapper around the right shape is unwrapped for the field count (upstream does
    the same: the shape is judged separately, the count should describe the content)."""
    if isinstance(expected, dict) and isinstance(actual, list) and len(actual) == 1 and isinstance(actual[0], dict):
        return actual[0]
    if isinstance(expected, list) and len(expected) == 1 and isinstance(actual, dict):
        return [actual]
    return actual


def top_shape(value: Any) -> str:
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "other"
