"""DataExtract: messy document in, JSON out; every atomic expected field is compared.

Strings are trimmed and compared exactly, numbers within 0.01, nulls exactly; arrays of
objects are matched by an anchor key (``anchors``: array path -> key) rather than by
position. Score = % of expected fields right. The declared top-level shape is enforced.

Options a pack sets (upstream packs keep the plain rules): ``normalize`` compares strings
without regard to case, spacing or a trailing period, and phone numbers by their digits;
``accept`` lists other spellings of one field ("hq.state": ["Texas"]); ``require_all`` makes
one wrong field a failed extraction (the field share stays the score, capped below a pass).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from harness.packs.schema import PASS_SCORE, Check, FailureMode, Reply, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, parse_json_reply, plain_text, short, values_equal

NUMBER_TOLERANCE = 0.01
_PHONE_RE = re.compile(r"\+?[\d\s().-]{7,}")


class Spec(SpecModel):
    type: Literal["data_extract"]
    expected: Any = None
    shape: Literal["object", "array"] | None = None
    anchors: dict[str, str] = {}
    normalize: bool = False
    accept: dict[str, list[Any]] = {}
    require_all: bool = False
    asserts: list[dict] = []


# Spellings that name the same thing (British and American), compared as one.
_VARIANTS = {"cancelled": "canceled", "cancelling": "canceling", "colour": "color", "grey": "gray",
             "organisation": "organization", "centre": "center", "licence": "license", "catalogue": "catalog"}


def _normal(value: str) -> str:
    """A string as the document means it: case, spacing, a trailing full stop, a leading "#" on an id,
    ":00" seconds, phone punctuation and British/American spellings do not change it."""
    text = " ".join(plain_text(value).casefold().split()).rstrip(".")
    text = re.sub(r"^#\s*(?=\w)", "", text)
    text = re.sub(r"^(\d{1,2}:\d{2}):00$", r"\1", text)
    phone = _PHONE_RE.fullmatch(text) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)
    if phone:
        return re.sub(r"[\s().-]", "", text)
    return " ".join(_VARIANTS.get(word, word) for word in text.split())


def _as_number(value: str) -> float | None:
    try:
        return float(value.strip().replace(",", ""))
    except ValueError:
        return None


def _same(want: Any, got: Any, normalize: bool) -> bool:
    if normalize and isinstance(want, str) and isinstance(got, str):
        return _normal(want) == _normal(got)
    if normalize and isinstance(want, int | float) and not isinstance(want, bool) and isinstance(got, str):
        number = _as_number(got)  # "2019" for 2019: the value is right, only its JSON type differs
        return number is not None and values_equal(want, number, NUMBER_TOLERANCE)
    return values_equal(want, got, NUMBER_TOLERANCE)


def _compare(want: Any, got: Any, path: str, spec: Spec, out: list[Check]) -> None:
    if isinstance(want, dict):
        for key, value in want.items():
            child = got.get(key) if isinstance(got, dict) else None
            if isinstance(got, dict) and key not in got:
                child = _MISSING
            _compare(value, child, f"{path}.{key}" if path else key, spec, out)
        return
    if isinstance(want, list) and want and all(isinstance(x, dict) for x in want) and path in spec.anchors:
        key = spec.anchors[path]
        fold = _normal if spec.normalize else str.strip
        by_anchor = {fold(str(x.get(key))): x for x in got if isinstance(x, dict)} if isinstance(got, list) else {}
        for item in want:
            anchor = str(item.get(key)).strip()
            _compare(item, by_anchor.get(fold(anchor), _MISSING), f"{path}[{key}={anchor}]", spec, out)
        return
    if isinstance(want, list):
        for index, item in enumerate(want):
            child = got[index] if isinstance(got, list) and index < len(got) else _MISSING
            _compare(item, child, f"{path}[{index}]", spec, out)
        return
    options = [want, *spec.accept.get(path, [])]
    ok = got is not _MISSING and any(_same(option, got, spec.normalize) for option in options)
    out.append(Check(name=path or "$", ok=ok, detail="" if ok else
                     f"expected {want!r}, got {'(missing)' if got is _MISSING else repr(got)}"))


_MISSING = object()


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    """Score = % of expected atomic fields extracted correctly."""
    spec = Spec.model_validate(scenario.verifier.model_dump())
    expected = spec.expected if spec.expected is not None else scenario.expected
    value, found = parse_json_reply(reply.content)
    if not found:
        return Verdict(score=0, failure_mode="invalid_json", detail=f"no JSON in reply: {short(reply.content)!r}")
    if spec.shape and not isinstance(value, dict if spec.shape == "object" else list):
        return Verdict(score=0, failure_mode="schema_violation",
                       detail=f"top level must be a JSON {spec.shape}, got {type(value).__name__}")
    checks: list[Check] = []
    _compare(expected, value, "", spec, checks)
    right = sum(c.ok for c in checks)
    score = 100.0 * right / max(1, len(checks))
    wrong = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    if spec.require_all and wrong:
        score = min(score, PASS_SCORE - 1)  # one wrong field is a failed extraction
    detail = f"{right}/{len(checks)} fields right" + ("; " + "; ".join(wrong[:4]) if wrong else "")
    mode: FailureMode = "passed" if score >= PASS_SCORE else "wrong_answer"
    return Verdict(score=round(score, 2), failure_mode=mode, detail=detail, checks=checks)
