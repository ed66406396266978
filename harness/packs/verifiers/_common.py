"""Small pure helpers the verifiers share: value matching, code fences, JSON spans, typography."""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

_FENCE_RE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n(.*?)\n?```", re.DOTALL)


class SpecModel(BaseModel):
    """Base of every verifier spec: unknown fields are errors, so typos fail at load time."""

    model_config = ConfigDict(extra="forbid")


def numbers_close(a: Any, b: Any, tolerance: float) -> bool:
    """True when both are numbers (not bools) within tolerance (None is never close)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), abs_tol=tolerance, rel_tol=0)
    return False


def values_equal(expected: Any, actual: Any, tolerance: float = 1e-9) -> bool:
    """Deep equality: numbers within tolerance, strings exact after trimming, bools/null exact."""
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(values_equal(v, actual[k], tolerance) for k, v in expected.items()))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(values_equal(e, a, tolerance) for e, a in zip(expected, actual, strict=False)))
    if isinstance(expected, str):
        return isinstance(actual, str) and expected.strip() == actual.strip()
    if expected is None or isinstance(expected, bool):
        return actual is expected
    return numbers_close(expected, actual, tolerance)


def match_value(matcher: Any, actual: Any) -> bool:
    """Match a tool argument: a literal (strings trimmed and case-insensitive, numbers ±0.01)
    or one operator object: {"equals"|"ci"|"contains"|"regex"|"one_of"|"approx"|"present"|"evaluates"}
    ("evaluates": an arithmetic expression whose value is the number given)."""
    if isinstance(matcher, dict) and len(matcher) == 1 and next(iter(matcher)) in _OPS:
        op, arg = next(iter(matcher.items()))
        return _OPS[op](arg, actual)
    return _literal(matcher, actual)


def _literal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str):
        return isinstance(actual, (str, int, float)) and not isinstance(actual, bool) \
            and expected.strip().casefold() == str(actual).strip().casefold()
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(actual, str):
            try:
                actual = float(actual.strip())
            except ValueError:
                return False
        return numbers_close(expected, actual, 0.01)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) \
            and all(_literal(e, a) for e, a in zip(expected, actual, strict=False))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and match_value(v, actual[k]) for k, v in expected.items())
    return actual is expected


_OPS = {
    "equals": lambda arg, actual: values_equal(arg, actual),
    "ci": _literal,
    "contains": lambda arg, actual: isinstance(actual, str) and str(arg).casefold() in actual.casefold(),
    "regex": lambda arg, actual: isinstance(actual, (str, int, float)) and re.search(arg, str(actual)) is not None,
    "one_of": lambda arg, actual: any(_literal(option, actual) for option in arg),
    "approx": lambda arg, actual: _literal(float(arg), actual),
    "present": lambda arg, actual: (actual is not None) == bool(arg),
    "evaluates": lambda arg, actual: isinstance(actual, str) and numbers_close(float(arg), evaluate(actual), 1e-6),
}

_TYPOGRAPHY = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
                             "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2212": "-", "\u2013": "-",
                             "\u2014": "-", "\u00b2": "^2", "\u00b3": "^3", "\u00ba": "\u00b0"})


def plain_text(text: str) -> str:
    """Text with typographic quotes, dashes, odd spaces and superscripts made plain ASCII-ish,
    so checks do not fail on ``can\u2019t`` versus ``can't``."""
    return text.translate(_TYPOGRAPHY)


_ARITHMETIC: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Mod: operator.mod}


def evaluate(expression: str) -> float | None:
    """The value of a plain arithmetic expression (numbers, + - * / ** % ^ x, parentheses), else
    None. Nothing is executed: the expression is walked as a syntax tree."""
    text = plain_text(expression).replace("^", "**").replace("\u00d7", "*").replace("\u00f7", "/")
    text = re.sub(r"(?<=[\d)\s])x(?=[\d(\s])", "*", text).replace(",", "")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ValueError("exponent too large")
            return float(_ARITHMETIC[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _ARITHMETIC:
            return float(_ARITHMETIC[type(node.op)](walk(node.operand)))
        raise ValueError("not arithmetic")

    try:
        return walk(tree.body)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every ``` fenced block in text."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE_RE.finditer(text)]


def is_single_fence(text: str) -> bool:
    """True when the whole (trimmed) text is exactly one fenced block."""
    match = _FENCE_RE.fullmatch(text.strip())
    return match is not None


def json_candidates(text: str) -> list[str]:
    """Places JSON may hide in a reply: the whole text, fenced blocks, the outermost {...}/[...] span."""
    stripped = text.strip()
    found = [stripped] + [body for _, body in fenced_blocks(text)]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opener), stripped.rfind(closer)
        if 0 <= start < end:
            found.append(stripped[start:end + 1])
    return found


def parse_json_reply(text: str) -> tuple[Any, bool]:
    """(value, found): the first candidate that parses as JSON; found False when none does."""
    for candidate in json_candidates(text):
        try:
            return json.loads(candidate), True
        except ValueError:
            continue
    return None, False


def short(text: str, limit: int = 70) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
