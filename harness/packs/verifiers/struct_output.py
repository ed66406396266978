"""StructOutput: does the reply parse with a real parser, hold the right values, and come clean?

Three axes, 0-2 each: parseable (0.40: parses with the right top-level shape = 2, parses with
the wrong shape = 1), correct (0.35: every expected value = 2, at least half = 1) and
discipline (0.25: bare payload = 2, one code fence = 1, prose around it = 0). A reply that does
not parse or holds no correct value scores 0: no scenario passes on "any non-empty output".
SQL is run on the scenario's fixture rows; ``sql_columns`` also wants the result columns named
as asked (a missing alias halves the correct share).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from harness.packs.schema import Check, FailureMode, Reply, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, fenced_blocks, is_single_fence, short, values_equal

WEIGHTS = {"parseable": 0.40, "correct": 0.35, "discipline": 0.25}
_SQL_STEP_LIMIT = 200_000
_PARSE_FAILED = object()


class XmlCheck(SpecModel):
    path: str
    text: str | None = None
    attrib: dict[str, str] = {}
    count: int | None = None


class Spec(SpecModel):
    type: Literal["struct_output"]
    format: Literal["json", "yaml", "csv", "markdown_table", "toml", "xml", "sql"]
    expected: Any = None
    shape: Literal["object", "array"] | None = None
    xml_root: str | None = None
    xml_checks: list[XmlCheck] = []
    sql_setup: str | None = None
    sql_ordered: bool = False
    sql_columns: list[str] = []
    asserts: list[dict[str, Any]] = []


def _candidates(text: str, fmt: str) -> list[tuple[str, int]]:
    """(payload, discipline) pairs to try: bare text, a lone fence, fences inside prose, prose trimmed."""
    stripped = text.strip()
    found: list[tuple[str, int]] = []
    if is_single_fence(stripped):
        found.append((fenced_blocks(stripped)[0][1], 1))
    else:
        found.append((stripped, 2))
        found.extend((body, 0) for _, body in fenced_blocks(stripped))
        lines = stripped.splitlines()
        for cut in range(1, min(4, len(lines))):  # leading prose such as "Here is the CSV:"
            found.append(("\n".join(lines[cut:]), 0))
    return found


def _parse(fmt: str, payload: str, spec: Spec) -> Any:
    """The parsed payload, or _PARSE_FAILED."""
    try:
        if fmt == "json":
            return json.loads(payload)
        if fmt == "yaml":
            value = yaml.safe_load(payload)
            return value if isinstance(value, (dict, list)) else _PARSE_FAILED
        if fmt == "toml":
            return tomllib.loads(payload)
        if fmt == "xml":
            return ET.fromstring(payload.encode())  # bytes: an encoding declaration is allowed
        if fmt == "csv":
            rows = [row for row in csv.reader(io.StringIO(payload.strip("\n")), strict=True)]
            return rows if rows and all(len(r) == len(rows[0]) for r in rows) and len(rows[0]) > 1 else _PARSE_FAILED
        if fmt == "markdown_table":
            return _markdown_rows(payload)
        return _sql_rows(payload, spec)
    except (ValueError, yaml.YAMLError, ET.ParseError, csv.Error, sqlite3.Error, tomllib.TOMLDecodeError):
        return _PARSE_FAILED


def _markdown_rows(payload: str) -> Any:
    """GFM pipe table: header row, delimiter row (hyphens, optional colons), body rows."""
    lines = [line.strip() for line in payload.strip().splitlines()]
    if len(lines) < 2 or not all("|" in line for line in lines):
        return _PARSE_FAILED
    if not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?", lines[1]):
        return _PARSE_FAILED
    rows = [[cell.strip() for cell in line.removeprefix("|").removesuffix("|").split("|")]
            for line in lines[:1] + lines[2:]]
    return rows if all(len(r) == len(rows[0]) for r in rows) else _PARSE_FAILED


@dataclass(frozen=True)
class _SqlResult:
    columns: list[str]
    rows: list[list[Any]]


def _sql_rows(payload: str, spec: Spec) -> Any:
    """Run one read-only statement against the spec's in-memory schema; ATTACH/writes are refused."""
    statement = payload.strip().rstrip(";").strip()
    if not statement or ";" in statement:
        return _PARSE_FAILED
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(spec.sql_setup or "")
        allowed = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
        db.set_authorizer(lambda action, *_: sqlite3.SQLITE_OK if action in allowed else sqlite3.SQLITE_DENY)
        db.set_progress_handler(lambda: 1, _SQL_STEP_LIMIT)  # a runaway recursive CTE stops here
        cursor = db.execute(statement)
        rows = [list(row) for row in cursor.fetchall()]
        return _SqlResult(columns=[d[0] for d in cursor.description or []], rows=rows)
    finally:
        db.close()


def _shape_ok(fmt: str, value: Any, spec: Spec) -> bool:
    if fmt in ("json", "yaml") and spec.shape:
        return isinstance(value, dict if spec.shape == "object" else list)
    if fmt == "xml" and spec.xml_root:
        return value.tag == spec.xml_root
    if fmt in ("csv", "markdown_table") and isinstance(spec.expected, list) and spec.expected:
        return len(value[0]) == len(spec.expected[0])
    return True


def _leaves(value: Any, prefix: str = "$") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{prefix}.{key}"))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, f"{prefix}[{index}]"))
        return out or {prefix: []}
    return {prefix: value}


def _fraction_correct(fmt: str, value: Any, spec: Spec) -> tuple[float, str]:
    if fmt in ("json", "yaml", "toml"):
        want, got = _leaves(spec.expected), _leaves(value)
        extra = [k for k in got if k not in want]
        right = [k for k, v in want.items() if k in got and values_equal(v, got[k], 1e-9)]
        wrong = [k for k in want if k not in right]
        denominator = len(want) + len(extra)
        why = f"{len(right)}/{len(want)} values right" + (f", wrong/missing: {wrong[:3]}" if wrong else "") \
            + (f", unexpected: {extra[:3]}" if extra else "")
        return len(right) / denominator, why
    if fmt == "xml":
        hits = []
        for check in spec.xml_checks:
            found = value.findall(check.path)
            ok = (len(found) == check.count) if check.count is not None else bool(found)
            if ok and found and check.text is not None:
                ok = (found[0].text or "").strip() == check.text
            if ok and found and check.attrib:
                ok = all(found[0].get(k) == v for k, v in check.attrib.items())
            hits.append(ok)
        return sum(hits) / max(1, len(hits)), f"{sum(hits)}/{len(hits)} XML checks hold"
    want_rows, got_rows = spec.expected, value
    if fmt == "sql":
        if not spec.sql_ordered:
            want_rows, got_rows = sorted(map(repr, want_rows)), sorted(map(repr, value.rows))
        else:
            want_rows, got_rows = [repr(r) for r in want_rows], [repr(r) for r in value.rows]
        matching = sum(1 for w, g in zip(want_rows, got_rows, strict=False) if w == g)
        share = matching / max(len(want_rows), len(got_rows), 1)
        why = f"{matching}/{len(want_rows)} result rows match ({len(got_rows)} returned)"
        named = [c.casefold() for c in value.columns]
        if spec.sql_columns and named != [c.casefold() for c in spec.sql_columns]:
            share, why = share / 2, why + f", columns {value.columns} instead of {spec.sql_columns}"
        return share, why
    matching = sum(1 for w, g in zip(want_rows, got_rows, strict=False) if w == g)
    return (matching / max(len(want_rows), len(got_rows)),
            f"{matching}/{len(want_rows)} rows equal ({len(got_rows)} given)")


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    """Score the three axes over the best-reading candidate payload in the reply."""
    spec = Spec.model_validate(scenario.verifier.model_dump())
    if spec.expected is None and spec.format not in ("xml",):
        spec = spec.model_copy(update={"expected": scenario.expected})
    best: tuple[tuple[int, int, int], float, str] | None = None
    for payload, discipline in _candidates(reply.content, spec.format):
        value = _parse(spec.format, payload, spec)
        if value is _PARSE_FAILED:
            continue
        parseable = 2 if _shape_ok(spec.format, value, spec) else 1
        fraction, why = (_fraction_correct(spec.format, value, spec) if parseable == 2
                         else (0.0, "wrong top-level shape"))
        correct = 2 if fraction >= 1 else 1 if fraction >= 0.5 else 0
        axes = (parseable, correct, discipline)
        if best is None or axes > best[0]:
            best = (axes, fraction, why)
    if best is None:
        mode: FailureMode = "invalid_json" if spec.format == "json" else "wrong_structure"
        return Verdict(score=0, failure_mode=mode,
                       detail=f"no {spec.format} found that parses: {short(reply.content)!r}",
                       checks=[Check(name="parseable", ok=False, detail="0/2")])
    (parseable, correct, discipline), _, why = best
    checks = [Check(name=axis, ok=points == 2, detail=f"{points}/2")
              for axis, points in zip(WEIGHTS, (parseable, correct, discipline), strict=False)]
    discipline_note = {2: "clean", 1: "in one code fence", 0: "prose around the payload"}[discipline]
    detail = f"parseable {parseable}/2, correct {correct}/2 ({why}), discipline {discipline}/2 ({discipline_note})"
    if parseable == 1:
        mode = "schema_violation" if spec.format in ("json", "yaml") else "wrong_structure"
        return Verdict(score=0, failure_mode=mode, detail=detail, checks=checks)
    if correct == 0:
        return Verdict(score=0, failure_mode="wrong_answer", detail=detail, checks=checks)
    score = 100 * sum(WEIGHTS[a] * p / 2 for a, p in zip(WEIGHTS, (parseable, correct, discipline), strict=False))
    score = round(score, 2)
    return Verdict(score=score, failure_mode="passed" if score >= 85 else "verifier_fail", detail=detail, checks=checks)
