"""The two readings of JSON records behind PostgreSQL staging agree, and segments keep their order.

Arrow (``BinaryRows._parse``) takes a segment only when every line is one good
record; ``RecordParser`` reads any segment record by record. For valid records both
must give the same binary COPY bytes, and for anything else the segment must
fall back to the record-by-record reading, whose rejects the operator tests check.
The same records give the same rows however the object lays them out (one a line,
pretty-printed, several on a line, cut into pieces anywhere), and values COPY
converts (a number for text, a number written as text) give the rows their
converted values would.
"""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkify.exceptions import RecordTooLarge, TooManyBadRecords
from sparkify.sources import json_records
from sparkify.sources.json_records import Piece
from sparkify.staging import binary_copy, segments
from sparkify.staging.binary_copy import BinaryRows
from sparkify.staging.segments import Segment, StagedRows
from tests.support.event_strategies import ANY_VALID_EVENT, FIELDS

TYPES = {"itemInSession": "integer", "sessionId": "integer", "status": "integer", "ts": "bigint",
         "length": "double precision", "registration": "double precision"}
VALID = {"artist": "A", "ts": 1541105830796, "length": 210.5, "sessionId": 7, "userId": "12"}


def rows_encoder(max_errors: int = 10) -> BinaryRows:
    return BinaryRows(
        FIELDS, [TYPES.get(field, "character varying") for field in FIELDS], [("run_1", "character varying")],
        lambda key: f"file:///bucket/{key}", max_errors=max_errors,
    )


def lines(*records: object) -> bytes:
    return b"".join(record if isinstance(record, bytes) else orjson.dumps(record) + b"\n" for record in records)


def record_by_record(encoder: BinaryRows, pieces: list) -> Segment:
    return encoder._encode_each_record([Piece(*piece) for piece in pieces], {})


@settings(max_examples=60, deadline=None)
@given(events=st.lists(ANY_VALID_EVENT, min_size=1, max_size=20))
def test_arrow_and_the_record_by_record_reading_give_the_same_bytes(events):
    encoder = rows_encoder()
    data = lines(*events)
    assert encoder._parse(data, binary_copy.np.flatnonzero(binary_copy.np.frombuffer(data, "u1") == 10)) is not None
    fast = encoder.encode([Piece("k", 1, data)], {})
    slow = record_by_record(encoder, [("k", 1, data)])
    assert b"".join(fast.data) == b"".join(slow.data)
    assert fast.rows == slow.rows == len(events) and not slow.rejected


@pytest.mark.parametrize("bad", [
    pytest.param(b"\n", id="blank line"),
    pytest.param(b"  \r\n", id="whitespace line"),
    pytest.param(b'\xef\xbb\xbf{"ts": 1}\n', id="byte order mark"),
    pytest.param(b'{"length": NaN}\n', id="NaN"),
    pytest.param(b'{"length": -Infinity}\n', id="Infinity"),
    pytest.param(b'{"ts": 1}{"ts": 2}\n', id="two objects on one line"),
    pytest.param(b'{"ts": 1,\n "length": 2.5}\n', id="an object over two lines"),
    pytest.param(b'{"ts": 1, "userId": 39}\n', id="a number for text"),
    pytest.param(b'{"ts": 1, "sessionId": "7"}\n', id="a number written as text"),
    pytest.param(b'{"ts": 1}  \n', id="spaces after the object"),
    pytest.param(b'{"ts": 1, "newKey": 3}\n', id="unknown key"),
    pytest.param(b'  {"ts": 1}\n', id="indented"),
    pytest.param(b'{"artist": "\xff"}\n', id="not UTF-8"),
    pytest.param(b'{"sessionId": 3000000000}\n', id="out of range"),
    pytest.param(b'{"ts": 1, "ts": 2}\n', id="duplicate key"),
])
def test_a_segment_arrow_cannot_take_as_it_is_is_read_record_by_record(bad):
    encoder = rows_encoder()
    data = lines(VALID, bad, VALID)
    segment = encoder.encode([Piece("k", 1, data)], {})
    slow = record_by_record(encoder, [("k", 1, data)])
    assert (segment.rows, segment.runs, segment.rejected, segment.unknown_keys) == (
        slow.rows, slow.runs, slow.rejected, slow.unknown_keys)
    assert b"".join(segment.data) == b"".join(slow.data)


def test_records_the_server_refused_before_send_their_segment_record_by_record():
    encoder = rows_encoder()
    data = lines(VALID, VALID, VALID)
    segment = encoder.encode([Piece("k", 10, data)], {"k": {(11, 0): "value too long"}})
    assert segment.rows == 2
    assert [(bad.line, bad.error) for bad in segment.rejected] == [(11, "value too long")]
    # Row 0 is line 10; the next row is line 12.
    assert segment.runs == [(0, "k", 10, 0), (1, "k", 12, 0)]


def test_a_refused_record_among_several_on_a_line_is_the_only_one_rejected():
    encoder = rows_encoder()
    data = lines(VALID) + b" ".join([lines(VALID).strip()] * 3) + b"\n" + lines(VALID)
    segment = encoder.encode([Piece("k", 1, data)], {"k": {(2, 1): "value too long"}})
    assert (segment.rows, [(bad.line, bad.error) for bad in segment.rejected]) == (4, [(2, "value too long")])
    staged = StagedRows(max_errors=1)
    staged.add(segment)
    # Rows: line 1; line 2 first and third record; line 3.
    assert [staged.locate(row) for row in range(4)] == [("k", 1, 0), ("k", 2, 0), ("k", 2, 2), ("k", 3, 0)]


def test_segments_come_back_in_order_and_rows_map_to_their_objects_and_lines(monkeypatch):
    monkeypatch.setattr(segments, "SEGMENT_BYTES", 300)
    encoder = rows_encoder()
    objects = {f"o{index}": lines(*({**VALID, "ts": index * 100 + row} for row in range(index + 1)))
               for index in range(12)}
    pieces = [piece for key, data in objects.items() for piece in json_records.pieces(key, [data[:150], data[150:]])]
    staged = StagedRows(max_errors=0)
    sent = b""
    for segment in encoder.encode_all(pieces, {}):
        staged.add(segment)
        sent += b"".join(segment.data)
    one_at_a_time = b"".join(b"".join(encoder.encode([piece], {}).data) for piece in pieces)
    assert sent == one_at_a_time
    assert staged.rows == sum(range(1, 13))
    assert staged.locate(0) == ("o0", 1, 0)
    assert staged.locate(1) == ("o1", 1, 0) and staged.locate(2) == ("o1", 2, 0)
    assert staged.locate(staged.rows - 1) == ("o11", 12, 0)


def test_too_many_bad_records_name_the_first_in_stream_order(monkeypatch):
    monkeypatch.setattr(segments, "SEGMENT_BYTES", 1)
    encoder = rows_encoder(max_errors=1)
    pieces = [Piece("a", 1, lines(VALID, b"{oops\n")), Piece("b", 1, lines(b"[1]\n"))]
    staged = StagedRows(max_errors=1)
    with pytest.raises(TooManyBadRecords, match=r"file:///bucket/a line 2: not valid JSON .*\(2 bad"):
        for segment in encoder.encode_all(pieces, {}):
            staged.add(segment)


@pytest.mark.parametrize("blocks, expected", [
    ([b'{"a":1}\n{"a":2}\n'], [(1, b'{"a":1}\n', 0), (2, b'{"a":2}\n', 0)]),
    ([b'{"a":1}\n{"a":', b'2}\n{"a":3}'], [(1, b'{"a":1}\n', 0), (2, b'{"a":2}\n', 0), (3, b'{"a":3}', 0)]),
    ([b'{"a": "a long', b' line"}', b'\n{"b":2}\n'], [(1, b'{"a": "a long line"}\n', 0), (2, b'{"b":2}\n', 0)]),
    ([b"", b"x"], [(1, b"x", 0)]),
    # Pretty-printed: cut only where one object ends and the next begins, never inside one.
    ([b'{\n  "a": 1\n}\n{\n  "a"', b': 2\n}\n'], [(1, b'{\n  "a": 1\n}\n', 0), (4, b'{\n  "a": 2\n}\n', 0)]),
    # A "}" then a "{" on the next line inside a string cannot be: strings hold no line break.
    ([b'{"a": [\n{"x": 1},\n{"x": 2}\n]}\n', b'{"b": 1}'], [(1, b'{"a": [\n{"x": 1},\n{"x": 2}\n]}\n', 0),
                                                           (5, b'{"b": 1}', 0)]),
])
def test_pieces_end_between_records_and_count_lines(blocks, expected):
    expected_pieces = [Piece("k", line, data, ordinal) for line, data, ordinal in expected]
    assert list(json_records.pieces("k", blocks)) == expected_pieces


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.sampled_from([b'{"a": 1}', b"{", b"}", b"[", b"]", b"\n", b"\r\n", b" ", b'"x"', b",",
                                       b"\xc3\xa9"]), max_size=80),
       block=st.integers(1, 40))
def test_pieces_hold_every_byte_and_end_only_between_records_wherever_blocks_end(parts, block):
    data = b"".join(parts)
    pieces = list(json_records.pieces("k", [data[start:start + block] for start in range(0, len(data), block)]))
    assert b"".join(piece.data for piece in pieces) == data
    offset = 0
    for number, piece in enumerate(pieces):
        assert piece.line == 1 + data.count(b"\n", 0, offset) and piece.ordinal == 0
        offset += len(piece.data)
        if number < len(pieces) - 1:  # a "}" or "]", white space with a line break, then a "{" or "["
            assert re.fullmatch(rb"(?s).*[}\]][ \t\r]*\n[ \t\r\n]*", data[:offset])
            assert data[offset:offset + 1] in (b"{", b"[")


def test_a_long_line_of_records_is_cut_after_a_whole_record_with_its_place_on_the_line():
    records = [b'{"ts": %d, "song": "x} {y"}' % number for number in range(40)]
    data = b'{"first": 0}\n' + b"".join(records) + b"\n"
    blocks = [data[start:start + 64] for start in range(0, len(data), 64)]
    pieces = list(json_records.pieces("k", blocks, record_limit=100))
    assert b"".join(piece.data for piece in pieces) == data
    assert max(len(piece.data) for piece in pieces) <= 100 + 2 * 64  # a record and two blocks at most
    on_the_line = [piece for piece in pieces if piece.line == 2]
    assert len(on_the_line) > 3
    for piece in on_the_line:  # each piece starts with a whole record, and knows how many came before it
        assert piece.data.startswith(b'{"ts": %d,' % piece.ordinal)


def test_a_file_of_records_without_a_line_break_stages_each_one_in_bounded_pieces():
    """Objects written one after another with nothing between (as a stream writer may): one line of
    a megabyte, parsed a record at a time, even with "} {" inside its strings."""
    events = [{**VALID, "ts": number, "artist": "a} {b"} for number in range(13000)]
    data = b"".join(orjson.dumps(event) for event in events)
    encoder = rows_encoder(max_errors=0)
    blocks = [data[start:start + (1 << 16)] for start in range(0, len(data), 1 << 16)]
    pieces = list(json_records.pieces("k", blocks, record_limit=1 << 16))
    assert len(pieces) > 4 and max(len(piece.data) for piece in pieces) <= 3 << 16  # a record and two blocks
    segments = [encoder.encode([piece], {}) for piece in pieces]
    assert sum(segment.rows for segment in segments) == len(events)
    assert b"".join(b"".join(segment.data) for segment in segments) == b"".join(
        encoder.encode([Piece("k", 1, lines(*events))], {}).data)


@pytest.mark.parametrize("layout", ["one line", "an array", "pretty-printed"])
def test_a_record_over_the_limit_fails_its_object_without_being_held(layout):
    element = b'{"ts": 1541105830796, "song": "' + b"x" * 40 + b'"}'
    if layout == "one line":
        data = b'{"first": 0}\n{"songs": [' + b",".join([element] * 100) + b"]}\n"
    elif layout == "an array":
        data = b'{"first": 0}\n[\n' + b",\n".join([element] * 100) + b"\n]\n"
    else:
        members = b"".join(b'  "k%d": %s,\n' % (number, element) for number in range(100))
        data = b'{"first": 0}\n{\n' + members + b'  "end": 1\n}\n'
    blocks = [data[start:start + 256] for start in range(0, len(data), 256)]
    read = []
    with pytest.raises(RecordTooLarge, match=r"line 2: record of more than 1000 bytes is over the limit of 1000"):
        read.extend(json_records.pieces("k", blocks, record_limit=1000))
    assert [piece.data for piece in read] == [b'{"first": 0}\n']


def events_laid_out(events: list[dict], layout: str) -> bytes:
    if layout == "pretty-printed":
        return b"".join(orjson.dumps(event, option=orjson.OPT_INDENT_2) + b"\n" for event in events)
    if layout == "several a line":
        return b"".join(orjson.dumps(event) + (b" " if number % 3 else b"\n") for number, event in enumerate(events))
    if layout == "all on one line":
        return b"".join(orjson.dumps(event) for event in events)
    return lines(*events)


@settings(max_examples=40, deadline=None)
@given(events=st.lists(ANY_VALID_EVENT, min_size=1, max_size=12),
       layout=st.sampled_from(["pretty-printed", "several a line", "all on one line"]),
       block=st.integers(16, 400))
def test_the_same_records_give_the_same_rows_however_the_object_lays_them_out(events, layout, block):
    encoder = rows_encoder(max_errors=0)
    expected = encoder.encode([Piece("k", 1, lines(*events))], {})
    data = events_laid_out(events, layout)
    pieces = list(json_records.pieces("k", [data[start:start + block] for start in range(0, len(data), block)],
                          record_limit=max(len(orjson.dumps(event, option=orjson.OPT_INDENT_2)) for event in events)))
    segments = [encoder.encode([piece], {}) for piece in pieces]
    assert b"".join(b"".join(segment.data) for segment in segments) == b"".join(expected.data)
    assert not any(segment.rejected for segment in segments)
    staged = StagedRows(max_errors=0)
    for segment in segments:
        staged.add(segment)
    # Each row is named by the line its record starts on, and its place among that line's records.
    assert [staged.locate(row)[1:] for row in range(len(events))] == _record_starts(data)


def _record_starts(data: bytes) -> list[tuple[int, int]]:
    """Where each record starts, from the layout: at a "{" outside any record and any string."""
    starts, depth, line, in_string, escaped = [], 0, 1, False, False
    for byte in data:
        if in_string:
            in_string = escaped or byte != ord('"')
            escaped = not escaped and byte == ord("\\")
        elif byte == ord('"'):
            in_string = True
        elif byte in b"{[":
            if depth == 0:
                starts.append((line, starts[-1][1] + 1 if starts and starts[-1][0] == line else 0))
            depth += 1
        elif byte in b"}]":
            depth -= 1
        line += byte == ord("\n")
    return starts


@settings(max_examples=40, deadline=None)
@given(events=st.lists(ANY_VALID_EVENT, min_size=1, max_size=8), data=st.data())
def test_values_copy_converts_give_the_rows_of_their_converted_values(events, data):
    """A number for a text column loads as its text, a number column takes its number written as text
    and the empty string as NULL: as Redshift's COPY reads a JSON value for a column."""
    encoder = rows_encoder(max_errors=0)
    typed, written = [], []
    for event in events:
        event = {**event, "userId": data.draw(st.none() | st.integers(-(10**9), 10**9))}
        raw = {**event}
        for name in ("itemInSession", "sessionId", "status", "ts", "length", "registration"):
            if event[name] is not None and data.draw(st.booleans()):
                raw[name] = orjson.dumps(event[name]).decode()  # "42", "210.5", "1e+16"
        if data.draw(st.booleans()):
            raw["status"], event["status"] = "", None
        typed.append({**event, "userId": None if event["userId"] is None else str(event["userId"])})
        written.append(raw)
    expected = encoder.encode([Piece("k", 1, lines(*typed))], {})
    converted = encoder.encode([Piece("k", 1, lines(*written))], {})
    assert (converted.rows, converted.rejected) == (len(events), [])
    assert b"".join(converted.data) == b"".join(expected.data)


def test_a_column_type_staging_cannot_write_is_refused():
    with pytest.raises(ValueError, match="cannot stage columns of type numeric"):
        BinaryRows(["x"], ["numeric"], [("run", "text")], str)
