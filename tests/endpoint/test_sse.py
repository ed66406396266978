"""The SSE parser: framing rules and byte streams split at awkward places."""

from __future__ import annotations

import pytest

from harness.endpoint.sse import SseEvent, iter_sse_events, iter_sse_lines


def events(text: str) -> list[tuple[str | None, str]]:
    return [(event.event, event.data) for event in iter_sse_events(text.split("\n"))]


def test_named_events_dispatch_on_blank_lines() -> None:
    stream = 'event: message_start\ndata: {"a":1}\n\nevent: ping\ndata: {}\n\n'
    assert events(stream) == [("message_start", '{"a":1}'), ("ping", "{}")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert events("data: one\ndata: two\ndata:\n\n") == [(None, "one\ntwo\n")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    assert events(": keep-alive\nid: 7\nretry: 10\ndata: x\n\n: bye\n\n") == [(None, "x")]


def test_data_with_and_without_the_space_after_the_colon() -> None:
    # Only one leading space is framing; a second belongs to the value.
    assert events("data:x\n\ndata: y\n\ndata:  z\n\n") == [(None, "x"), (None, "y"), (None, " z")]


def test_a_last_event_without_a_trailing_blank_line_is_still_yielded() -> None:
    assert events("data: first\n\ndata: [DONE]") == [(None, "first"), (None, "[DONE]")]


def test_blank_lines_without_data_dispatch_nothing_and_reset_the_name() -> None:
    assert events("\n\nevent: lonely\n\ndata: after\n\n") == [(None, "after")]


def test_lines_may_keep_their_line_endings() -> None:
    lines = ["event: e\r\n", "data: d\r\n", "\r\n"]
    assert list(iter_sse_events(lines)) == [SseEvent(event="e", data="d")]


STREAM = 'event: delta\r\ndata: {"text": "héllo \u2028 wörld"}\r\n\r\ndata: a\rdata: b\r\rdata: [DONE]\n\n'.encode()


def test_byte_lines_split_on_lf_crlf_and_cr_only() -> None:
    lines = list(iter_sse_lines([STREAM]))
    assert lines == [
        "event: delta",
        'data: {"text": "héllo \u2028 wörld"}',
        "",
        "data: a",
        "data: b",
        "",
        "data: [DONE]",
        "",
    ]


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_any_chunk_boundary_gives_the_same_events(cut: int) -> None:
    # Boundaries inside CRLF and inside multi-byte UTF-8 characters are the interesting ones.
    whole = list(iter_sse_events(iter_sse_lines([STREAM])))
    assert list(iter_sse_events(iter_sse_lines([STREAM[:cut], STREAM[cut:]]))) == whole
    assert [event.data for event in whole] == ['{"text": "héllo \u2028 wörld"}', "a\nb", "[DONE]"]


def test_one_byte_at_a_time() -> None:
    chunks = [STREAM[index : index + 1] for index in range(len(STREAM))]
    assert list(iter_sse_lines(chunks)) == list(iter_sse_lines([STREAM]))


def test_a_trailing_line_without_newline_is_kept() -> None:
    assert list(iter_sse_lines([b"data: a\n", b"data: b"])) == ["data: a", "data: b"]
