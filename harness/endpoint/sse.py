"""Server-sent events: the one parser for every streamed reply (OpenAI and Anthropic).

Pure: bytes or text lines in, ``SseEvent`` records out. The framing follows the WHATWG
event-stream rules that matter to model servers: ``event:`` names, multi-line ``data:``,
``:`` comments, dispatch on a blank line, and a last event that arrives without one.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

from pydantic import BaseModel

# Only these end a line in an event stream; str.splitlines would also split on U+2028 etc.
_LINE_END = re.compile(r"\r\n|\r|\n")


class SseEvent(BaseModel):
    """One dispatched event: its ``event:`` name (None when unnamed) and joined ``data:``."""

    event: str | None = None
    data: str


def iter_sse_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Split a byte stream into lines (LF, CRLF or CR), decoding UTF-8 across chunk edges."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        start = 0
        for match in _LINE_END.finditer(pending):
            if match.group() == "\r" and match.end() == len(pending):
                break  # may be the first half of a CRLF split across chunks
            yield pending[start : match.start()]
            start = match.end()
        pending = pending[start:]
    pending += decoder.decode(b"", final=True)
    tail = _LINE_END.split(pending)
    if tail[-1] == "":
        tail.pop()
    yield from tail


def iter_sse_events(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Parse event-stream lines into events; a trailing undispatched event is still yielded."""
    event_name: str | None = None
    data_lines: list[str] = []
    for raw_line in lines:
        line = raw_line.rstrip("\r\n")
        if not line:
            if data_lines:
                yield SseEvent(event=event_name, data="\n".join(data_lines))
            event_name, data_lines = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data_lines.append(value)
        elif field == "event":
            event_name = value or None
        # "id" and "retry" steer browser reconnection; a one-shot client has no use for them.
    if data_lines:
        yield SseEvent(event=event_name, data="\n".join(data_lines))
