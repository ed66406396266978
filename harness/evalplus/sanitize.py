"""From a model reply to a runnable solution: think-strip, fenced code first, then EvalPlus.

EvalPlus's sanitizer first runs `code_extract`, which searches every line range for the
longest one that parses: cubic in the number of lines (seconds at 200 lines, minutes at
800). We give it the fenced code block when the reply has one; when that code parses as a
whole, the search can only return it unchanged, so we skip it; otherwise the search sees
at most MAX_FALLBACK_LINES lines. Pure functions; codegen calls `extract_solution` in a
worker process, off the request path.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types

from pydantic import BaseModel

from harness.endpoint.client import strip_think

MAX_SANITIZE_CHARS = 64_000
MAX_FALLBACK_LINES = 100
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


class Extracted(BaseModel):
    """The solution taken from a reply, and where it came from."""

    solution: str
    recovered_from_reasoning: bool = False


def fenced_code(text: str, entry_point: str) -> str | None:
    """The fenced block that defines entry_point, else the first python/unlabelled block."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    if not blocks:
        return None
    for _lang, body in blocks:
        if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", body):
            return body
    for lang, body in blocks:
        if lang in ("python", "py", "python3", ""):
            return body
    return blocks[0][1]


def _evalplus_sanitize():
    # evalplus.sanitize imports evalplus.data, which imports HuggingFace `datasets` only for
    # EvalPerf. We do not install that (it drags in pyarrow, pandas, ...), so give the import
    # a placeholder unless the real package is present.
    if "datasets" not in sys.modules and importlib.util.find_spec("datasets") is None:
        placeholder = types.ModuleType("datasets")

        def load_dataset(*_args, **_kwargs):
            raise RuntimeError("HuggingFace datasets is not installed (EvalPerf is not supported)")

        placeholder.load_dataset = load_dataset
        sys.modules["datasets"] = placeholder
    from evalplus import sanitize

    return sanitize


def parses(code: str) -> bool:
    """Whether code is Python that parses (a reply's prose or a cut-off block does not)."""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def sanitize_code(text: str, entry_point: str) -> str:
    """EvalPlus's sanitizer on a bounded input (fenced code first)."""
    code = fenced_code(text, entry_point)
    code = (code if code is not None else text)[:MAX_SANITIZE_CHARS]
    module = _evalplus_sanitize()
    if not parses(code):
        return module.sanitize("\n".join(code.split("\n")[:MAX_FALLBACK_LINES]), entry_point)
    search = module.code_extract
    module.code_extract = lambda whole: whole  # the longest parsing range is the whole text
    try:
        return module.sanitize(code, entry_point)
    finally:
        module.code_extract = search


def extract_solution(content: str | None, reasoning: str | None, entry_point: str) -> Extracted:
    """The solution from a chat reply; falls back to code in the reasoning when content is empty."""
    visible = strip_think(content or "")
    if visible.strip():
        return Extracted(solution=sanitize_code(visible, entry_point))
    code = fenced_code(reasoning or "", entry_point)
    if code and code.strip():
        return Extracted(solution=sanitize_code(code, entry_point), recovered_from_reasoning=True)
    return Extracted(solution="")
