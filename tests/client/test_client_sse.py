import itertools

from hypothesis import given
from hypothesis import strategies as st

from trio_chat_client.sse import SseDecoder, SseEvent

STREAM = (
    ": keep-alive\n"
    "\n"
    "id: 7\n"
    "event: message\n"
    'data: {"a": 1}\n'
    "\n"
    ": keep-alive\r\n"
    "id: 8\r\n"
    "event: comment\r\n"
    "data: line one\r\n"
    "data: line two\r\n"
    "\r\n"
    "id: 9\r"
    "data:no-space\r"
    "\r"
)
EXPECTED = [
    SseEvent(data='{"a": 1}', event="message", id="7"),
    SseEvent(data="line one\nline two", event="comment", id="8"),
    SseEvent(data="no-space", event="message", id="9"),
]


def test_whole_stream():
    decoder = SseDecoder()
    assert decoder.feed(STREAM) + decoder.close() == EXPECTED
    assert decoder.comments == 2
    assert decoder.last_event_id == "9"


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_any_chunking_gives_the_same_events(cuts):
    decoder = SseDecoder()
    events = []
    bounds = [0, *sorted(cuts), len(STREAM)]
    for start, end in itertools.pairwise(bounds):
        events += decoder.feed(STREAM[start:end])
    events += decoder.close()
    assert events == EXPECTED


def test_crlf_split_between_chunks_is_one_line_end():
    decoder = SseDecoder()
    assert decoder.feed("data: x\r") == []
    # If the "\n" were taken as a second (empty) line, the event would dispatch here.
    assert decoder.feed("\n") == []
    assert decoder.feed("\r\n") == [SseEvent(data="x")]


def test_id_persists_and_frames_without_data_dispatch_nothing():
    decoder = SseDecoder()
    assert decoder.feed("id: 5\n\n") == []  # no data: nothing to dispatch
    assert decoder.last_event_id == "5"
    assert decoder.feed("data: a\n\n") == [SseEvent(data="a", id="5")]


def test_unknown_fields_retry_and_unterminated_frames_are_ignored():
    decoder = SseDecoder()
    assert decoder.feed("retry: 10\nfoo: bar\ndata: ok\n\n") == [SseEvent(data="ok")]
    assert decoder.feed("data: cut off") == []
    assert decoder.close() == []
