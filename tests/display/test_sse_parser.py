"""The bounded SSE parser: chunking, line endings, over-long lines and bad bytes."""

from hypothesis import given, settings
from hypothesis import strategies as st

from display.core.sse import SSEParser


def feed_all(parser: SSEParser, data: bytes, size: int) -> list:
    out = []
    for i in range(0, len(data), size):
        out.extend(parser.feed(data[i : i + size]))
    return out


def test_events_survive_any_chunking_and_line_ending():
    raw = b': ping\r\nid: a:1\r\nevent: token\r\ndata: {"x": 1}\r\n\r\nevent: vitals\ndata: {}\n\n'
    for size in (1, 2, 3, 7, 1000):
        events = feed_all(SSEParser(), raw, size)
        assert [(e.event, e.data, e.id) for e in events] == [("token", '{"x": 1}', "a:1"), ("vitals", "{}", "a:1")]


def test_an_over_long_line_is_dropped_without_holding_it():
    parser = SSEParser(max_line_bytes=1024)
    events = parser.feed(b"event: token\ndata: " + b"x" * 10_000_000 + b"\n\nevent: vitals\ndata: {}\n\n")
    assert [e.malformed for e in events] == [True, False]
    assert len(parser._buf) == 0
    assert parser.dropped_lines == 1


def test_invalid_utf8_marks_the_event_malformed():
    events = SSEParser().feed(b"event: token\ndata: \xff\xfe\n\n")
    assert len(events) == 1 and events[0].malformed


def test_comments_alone_dispatch_nothing():
    assert SSEParser().feed(b": ping\n\n: ping\n\n") == []


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=20))
def test_any_bytes_in_any_chunks_never_raise_and_never_hold_more_than_a_line(chunks):
    parser = SSEParser(max_line_bytes=128, max_event_bytes=512)
    for chunk in chunks:
        for ev in parser.feed(chunk):
            assert len(ev.data.encode("utf-8", "surrogatepass")) <= 512 + 64
        assert len(parser._buf) <= 128
