"""The SSE parser: exact behaviour on the awkward cases, and chunking independence as a property."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentic.eventstream import SSEDecoder, SSEEvent


def decode(*chunks: str | bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def test_basic_events_and_done() -> None:
    assert decode('data: {"a":1}\n\ndata: [DONE]\n\n') == [SSEEvent('{"a":1}'), SSEEvent("[DONE]")]


def test_comments_and_keep_alives_are_ignored() -> None:
    stream = ": OPENROUTER PROCESSING\n\n: another\ndata: x\n\n"
    assert decode(stream) == [SSEEvent("x")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode("data: one\ndata: two\ndata:three\n\n") == [SSEEvent("one\ntwo\nthree")]


def test_event_and_id_fields() -> None:
    assert decode("event: ping\nid: 7\ndata: {}\n\n") == [SSEEvent("{}", event="ping", id="7")]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    assert decode("data: a\r", "\n\r", "\ndata: b\r\n\r\n") == [SSEEvent("a"), SSEEvent("b")]


def test_lone_cr_line_ends() -> None:
    assert decode("data: a\r\rdata: b\r\r") == [SSEEvent("a"), SSEEvent("b")]


def test_utf8_sequence_split_across_chunks() -> None:
    raw = "data: héllo 🎉\n\n".encode()
    assert decode(raw[:8], raw[8:13], raw[13:]) == [SSEEvent("héllo 🎉")]


def test_final_event_without_blank_line_is_flushed() -> None:
    assert decode("data: a\n\ndata: [DONE]") == [SSEEvent("a"), SSEEvent("[DONE]")]


def test_leading_bom_is_dropped() -> None:
    assert decode(b"\xef\xbb", b"\xbfdata: x\n\n") == [SSEEvent("x")]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode("event: nothing\n\ndata: y\n\n") == [SSEEvent("y")]


def test_only_one_leading_space_is_stripped() -> None:
    assert decode("data:  two spaces\n\n") == [SSEEvent(" two spaces")]


# --- property: any split of a valid byte stream gives the same events ------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
_line_end = st.sampled_from(["\n", "\r\n", "\r"])
_event = st.tuples(st.lists(_text, min_size=1, max_size=4),
                   st.one_of(st.none(), st.from_regex(r"[a-z_]{1,10}", fullmatch=True)),
                   st.booleans())


Spec = list[tuple[list[str], str | None, bool]]


def _encode(events: Spec, ends: list[str]) -> tuple[bytes, list[SSEEvent]]:
    out: list[str] = []
    expected: list[SSEEvent] = []
    for index, (lines, name, with_comment) in enumerate(events):
        end = ends[index % len(ends)]
        if with_comment:
            out.append(": keep-alive" + end)
        if name is not None:
            out.append(f"event: {name}{end}")
        out.extend(f"data: {line}{end}" for line in lines)
        out.append(end)
        expected.append(SSEEvent("\n".join(lines), event=name or "message"))
    return "".join(out).encode(), expected


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=6), st.lists(_line_end, min_size=1, max_size=3),
       st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_chunking_yields_the_same_events(events: Spec, ends: list[str], cuts: list[int]) -> None:
    raw, expected = _encode(events, ends)
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert decode(*chunks) == expected
    assert decode(raw) == expected
