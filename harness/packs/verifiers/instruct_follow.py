"""InstructFollow: a checklist of machine-checkable constraints; score = % of items met.

The reply is read with typography made plain (curly quotes, dashes). ``line`` points an item
at one non-empty line (0 is the first, -1 the last); ``section_sentences`` bounds the
sentences under every markdown header; ``paragraph_mentions`` wants item i in paragraph i;
``title_case`` accepts standard title case (short words such as "the" or "of" may stay lower).
"""

from __future__ import annotations

import re
from typing import Literal

from harness.packs.schema import Check, Reply, Scenario, Verdict
from harness.packs.verifiers._common import SpecModel, plain_text, short

_BULLET_RE = re.compile(r"^\s*[-*•+]\s+\S")
_NUMBERED_RE = re.compile(r"^\s*\d+[.)]\s+\S")
_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")


class Item(SpecModel):
    check: Literal["word_count", "sentence_count", "bullet_count", "numbered_count", "line_count",
                   "paragraph_count", "max_chars", "contains", "not_contains", "starts_with", "ends_with",
                   "regex", "not_regex", "lowercase", "uppercase", "headers", "order", "every_line",
                   "bullet_max_words", "mentions_any", "section_sentences", "paragraph_mentions", "title_case"]
    min: int | None = None
    max: int | None = None
    text: str | None = None
    any: list[str] = []
    items: list[str] = []
    pattern: str | None = None
    case_sensitive: bool = False
    label: str | None = None
    line: int | None = None


class Spec(SpecModel):
    type: Literal["instruct_follow"]
    asserts: list[Item]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# A full stop after these does not end a sentence ("e.g.", "5 a.m.", "by Fri.", "Dr. Lee").
_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs approx ca cf a.m p.m mr mrs ms dr st no fig jan feb mar apr jun jul aug sep sept oct nov dec "
    "mon tue tues wed thu thur thurs fri sat sun".split())


def _sentences(text: str) -> int:
    count, pending = 0, False
    for piece in re.split(r"(?<=[.!?])\s+", text.strip()):
        if not _WORD_RE.search(piece):
            continue
        pending = True
        last = piece.rsplit(None, 1)[-1].lstrip("(\"'*_").casefold()
        if last.endswith(".") and (last[:-1] in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.", last)):
            continue  # the sentence goes on after the abbreviation or initial
        count, pending = count + 1, False
    return count + pending


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _sections(text: str) -> list[tuple[str, str]]:
    """(header, body) under every markdown header."""
    parts = re.split(r"^\s*#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)
    return [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]


_MINOR_WORDS = {"a", "an", "the", "and", "but", "or", "nor", "for", "so", "yet", "as", "at", "by", "in", "of",
                "off", "on", "per", "to", "up", "via", "from", "into", "onto", "over", "with", "than", "vs"}


def _title_case(line: str) -> tuple[bool, str]:
    words = [w.strip("\"'()[]:;,.!?*_") for w in line.split()]
    words = [w for w in words if w and w[0].isalpha()]
    if not words:
        return False, "no words"
    lower = [w for i, w in enumerate(words) if not w[0].isupper()
             and (i in (0, len(words) - 1) or w.casefold() not in _MINOR_WORDS)]
    return not lower, f"not capitalised: {lower[:3]}"


def _count(item: Item, text: str) -> int:
    if item.check == "word_count":
        return len(_WORD_RE.findall(text))
    if item.check == "sentence_count":
        return _sentences(text)
    if item.check == "bullet_count":
        return sum(1 for line in text.splitlines() if _BULLET_RE.match(line))
    if item.check == "numbered_count":
        return sum(1 for line in text.splitlines() if _NUMBERED_RE.match(line))
    if item.check == "line_count":
        return len(_lines(text))
    if item.check == "paragraph_count":
        return len(_paragraphs(text))
    return len(text)  # max_chars


def _fold(item: Item, text: str) -> str:
    return text if item.case_sensitive else text.casefold()


def _headers(text: str) -> list[str]:
    return [m.group(1).strip().rstrip(":").casefold()
            for m in re.finditer(r"^\s*#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)]


def _judge(item: Item, text: str) -> tuple[bool, str]:
    if item.line is not None:
        lines = _lines(text)
        if not -len(lines) <= item.line < len(lines):
            return False, f"no line {item.line}"
        text = lines[item.line].strip()
    if item.check == "title_case":
        return _title_case(text)
    if item.check == "section_sentences":
        sections = _sections(text)
        low, high = item.min if item.min is not None else 1, item.max if item.max is not None else 10**9
        off = [(h, _sentences(b)) for h, b in sections if not low <= _sentences(b) <= high]
        return bool(sections) and not off, f"sentences per section: {off}" if off else "no sections"
    if item.check == "paragraph_mentions":
        paragraphs = [p.casefold() for p in _paragraphs(text)]
        missing = [w for i, w in enumerate(item.items) if i >= len(paragraphs) or w.casefold() not in paragraphs[i]]
        return not missing, f"paragraphs missing {missing}"
    if item.check in ("word_count", "sentence_count", "bullet_count", "numbered_count", "line_count",
                      "paragraph_count", "max_chars"):
        n = _count(item, text)
        low, high = item.min if item.min is not None else 0, item.max if item.max is not None else 10**9
        return low <= n <= high, f"counted {n}"
    if item.check in ("contains", "not_contains", "starts_with", "ends_with"):
        target, body = _fold(item, item.text or ""), _fold(item, text.strip())
        found = {"contains": target in body, "not_contains": target not in body,
                 "starts_with": body.startswith(target), "ends_with": body.endswith(target)}
        return found[item.check], f"reply: {short(text, 50)!r}"
    if item.check in ("regex", "not_regex"):
        flags = 0 if item.case_sensitive else re.IGNORECASE
        hit = re.search(item.pattern or "", text, flags | re.MULTILINE) is not None
        return hit == (item.check == "regex"), f"pattern {'found' if hit else 'not found'}"
    if item.check == "lowercase":
        return text.strip() != "" and text == text.lower(), "has uppercase letters"
    if item.check == "uppercase":
        return text.strip() != "" and text == text.upper(), "has lowercase letters"
    if item.check == "headers":
        headers, wanted = _headers(text), [h.casefold() for h in item.items]
        return headers == wanted, f"headers found: {headers}"
    if item.check == "order":
        body = _fold(item, text)
        positions = [body.find(_fold(item, part)) for part in item.items]
        return all(p >= 0 for p in positions) and positions == sorted(positions), f"positions {positions}"
    if item.check == "every_line":
        bad = [line for line in _lines(text) if not re.search(item.pattern or "", line)]
        return bool(_lines(text)) and not bad, f"first offending line: {short(bad[0], 40)!r}" if bad else "no lines"
    if item.check == "bullet_max_words":
        bullets = [line for line in text.splitlines() if _BULLET_RE.match(line)]
        long = [b for b in bullets if len(_WORD_RE.findall(b)) > (item.max or 0)]
        return bool(bullets) and not long, f"{len(long)} bullet(s) too long" if bullets else "no bullets"
    body = text.casefold()  # mentions_any
    mentioned = [word for word in item.any if word.casefold() in body]
    return bool(mentioned), f"mentions {mentioned[0]!r}" if mentioned else "mentions none of them"


def _label(item: Item) -> str:
    if item.label:
        return item.label
    high = item.max if item.max is not None else "∞"
    bounds = "" if item.min is None and item.max is None else f" in [{item.min or 0}, {high}]"
    subject = item.text or item.pattern or (", ".join(item.items or item.any))
    return f"{item.check}{bounds}" + (f" {short(subject, 40)!r}" if subject else "")


def verify(scenario: Scenario, reply: Reply) -> Verdict:
    """Score = % of checklist items met."""
    spec = Spec.model_validate(scenario.verifier.model_dump())
    checks = []
    text = plain_text(reply.content)
    for item in spec.asserts:
        ok, why = _judge(item, text)
        checks.append(Check(name=_label(item), ok=ok, detail="" if ok else why))
    met = sum(c.ok for c in checks)
    score = 100.0 * met / len(checks)
    failed = [f"{c.name} ({c.detail})" for c in checks if not c.ok]
    detail = f"{met}/{len(checks)} constraints met" + ("; missed: " + "; ".join(failed) if failed else "")
    return Verdict(score=score, failure_mode="passed" if score >= 85 else "verifier_fail", detail=detail, checks=checks)
