"""The two readings of JSON lines behind PostgreSQL staging agree, and segments keep their order.

Arrow (``BinaryRows._parse``) takes a segment only when every line is one good
record; ``RecordParser`` reads any segment line by line. For valid records both
must give the same binary COPY bytes, and for anything else the segment must
fall back to the line-by-line reading, whose rejects the operator tests check.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkify import binary_copy
from sparkify.binary_copy import BinaryRows, StagedRows
from sparkify.sources import _pieces
from test_bad_input import _EVENT, FIELDS

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


def line_by_line(encoder: BinaryRows, pieces: list) -> binary_copy.Segment:
    return encoder._encode_each_line([(key, line, data) for key, line, data in pieces], {})


@settings(max_examples=60, deadline=None)
@given(events=st.lists(_EVENT, min_size=1, max_size=20))
def test_arrow_and_the_line_by_line_reading_give_the_same_bytes(events):
    encoder = rows_encoder()
    data = lines(*events)
    assert encoder._parse(data, binary_copy.np.flatnonzero(binary_copy.np.frombuffer(data, "u1") == 10)) is not None
    fast = encoder.encode([("k", 1, data)], {})
    slow = line_by_line(encoder, [("k", 1, data)])
    assert b"".join(fast.data) == b"".join(slow.data)
    assert fast.rows == slow.rows == len(events) and not slow.rejected


@pytest.mark.parametrize("bad", [
    pytest.param(b"\n", id="blank line"),
    pytest.param(b"  \r\n", id="whitespace line"),
    pytest.param(b'\xef\xbb\xbf{"ts": 1}\n', id="byte order mark"),
    pytest.param(b'{"length": NaN}\n', id="NaN"),
    pytest.param(b'{"length": -Infinity}\n', id="Infinity"),
    pytest.param(b'{"ts": 1}{"ts": 2}\n', id="two objects on one line"),
    pytest.param(b'{"ts": 1, "newKey": 3}\n', id="unknown key"),
    pytest.param(b'  {"ts": 1}\n', id="indented"),
    pytest.param(b'{"artist": "\xff"}\n', id="not UTF-8"),
    pytest.param(b'{"sessionId": 3000000000}\n', id="out of range"),
    pytest.param(b'{"ts": 1, "ts": 2}\n', id="duplicate key"),
])
def test_a_segment_arrow_cannot_take_as_it_is_is_read_line_by_line(bad):
    encoder = rows_encoder()
    data = lines(VALID, bad, VALID)
    segment = encoder.encode([("k", 1, data)], {})
    slow = line_by_line(encoder, [("k", 1, data)])
    assert (segment.rows, segment.runs, segment.rejected, segment.unknown_keys) == (
        slow.rows, slow.runs, slow.rejected, slow.unknown_keys)
    assert b"".join(segment.data) == b"".join(slow.data)


def test_lines_the_server_refused_before_send_their_segment_line_by_line():
    encoder = rows_encoder()
    data = lines(VALID, VALID, VALID)
    segment = encoder.encode([("k", 10, data)], {"k": {11: "value too long"}})
    assert segment.rows == 2
    assert [(bad.line, bad.error) for bad in segment.rejected] == [(11, "value too long")]
    # Row 0 is line 10; the next row is line 12.
    assert segment.runs == [(0, "k", 10), (1, "k", 12)]


def test_segments_come_back_in_order_and_rows_map_to_their_objects_and_lines(monkeypatch):
    monkeypatch.setattr(binary_copy, "SEGMENT_BYTES", 300)
    encoder = rows_encoder()
    objects = {f"o{index}": lines(*({**VALID, "ts": index * 100 + row} for row in range(index + 1)))
               for index in range(12)}
    pieces = [piece for key, data in objects.items() for piece in _pieces(key, [data[:150], data[150:]])]
    staged = StagedRows(max_errors=0)
    sent = b""
    for segment in encoder.encode_all(pieces, {}):
        staged.add(segment)
        sent += b"".join(segment.data)
    one_at_a_time = b"".join(b"".join(encoder.encode([piece], {}).data) for piece in pieces)
    assert sent == one_at_a_time
    assert staged.rows == sum(range(1, 13))
    assert staged.locate(0) == ("o0", 1)
    assert staged.locate(1) == ("o1", 1) and staged.locate(2) == ("o1", 2)
    assert staged.locate(staged.rows - 1) == ("o11", 12)


def test_too_many_bad_records_name_the_first_in_stream_order(monkeypatch):
    monkeypatch.setattr(binary_copy, "SEGMENT_BYTES", 1)
    encoder = rows_encoder(max_errors=1)
    pieces = [("a", 1, lines(VALID, b"{oops\n")), ("b", 1, lines(b"[1]\n"))]
    staged = StagedRows(max_errors=1)
    with pytest.raises(binary_copy.TooManyBadRecords, match=r"file:///bucket/a line 2: not valid JSON .*\(2 bad"):
        for segment in encoder.encode_all(pieces, {}):
            staged.add(segment)


@pytest.mark.parametrize("blocks, expected", [
    ([b"1\n2\n3\n"], [(1, b"1\n2\n3\n")]),
    ([b"1\n2", b"2\n3"], [(1, b"1\n"), (2, b"22\n"), (3, b"3")]),
    ([b"a long", b" line", b"\nnext\n"], [(1, b"a long line\nnext\n")]),
    ([b"", b"x"], [(1, b"x")]),
    ([b"ab", b"cd", b"ef\ngh", b"\n"], [(1, b"abcdef\n"), (2, b"gh\n")]),
])
def test_pieces_end_lines_and_count_them(blocks, expected):
    assert list(_pieces("k", blocks)) == [("k", line, data) for line, data in expected]


def test_a_column_type_staging_cannot_write_is_refused():
    with pytest.raises(ValueError, match="cannot stage columns of type numeric"):
        BinaryRows(["x"], ["numeric"], [("run", "text")], str)
