"""JSON records to PostgreSQL's binary COPY format, parsed on every core.

Staging into PostgreSQL is bound by parsing: the server takes binary rows
faster than one Python thread can make them. So objects are cut into segments
of whole records; a few threads parse segments with Arrow's JSON reader (C++,
without the GIL) and pgpq writes the Arrow columns as binary COPY tuples, while
the caller sends finished segments, in order, to one COPY. Memory is a few
segments, whatever the size of an object.

Arrow takes a segment only when every line in it is one valid record of known
keys and of its columns' types; anything else (a bad record, an unknown key, a
blank line, a record over several lines or several on one, a value to convert,
a record the server refused on an earlier pass) sends the segment through
``RecordParser`` record by record, which names, quarantines, converts or counts
each case exactly. Both paths give the same row for a valid record
(``tests/operators/test_binary_copy.py`` holds them to it).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pgpq
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from sparkify.exceptions import RecordTooLarge, TooManyBadRecords
from sparkify.sources.json_records import MAX_RECORD_BYTES, Piece
from sparkify.staging.records import (
    COLUMN_TYPES,
    RecordParser,
    TimeBounds,
    check_column_types,
)
from sparkify.staging.segments import Coverage, Segment, cover, segments

#: Per object key, the records (line, place among that line's records) the server refused on an
#: earlier pass, and why.
Refused = Mapping[str, Mapping[tuple[int, int], str]]

#: Threads parsing segments while the caller sends the previous ones.
PARSERS = max(1, min(4, os.cpu_count() or 1))

#: The end of a binary COPY stream: a tuple of -1 fields.
_TRAILER = b"\xff\xff"
_NEWLINE, _RETURN, _OPEN_BRACE, _CLOSE_BRACE = ord("\n"), ord("\r"), ord("{"), ord("}")


class BinaryRows:
    """Encodes segments of an object's lines as binary COPY tuples for one staging table.

    :param fields: the JSON keys to stage, in column order (from the JSONPaths file)
    :param column_types: each field's column type, as PostgreSQL's ``format_type`` names it
    :param constant: ``(value, column type)`` of the columns appended to every row (the run's ``batch_id``)
    :param uri: an object's URI from its key, for the records it rejects
    :param key_type: the column type of the object's key, written after the fields when given
    :param time_field: the field whose smallest and largest value each object's coverage records
    :param time_bounds: per object key, the ``[low, high)`` its records' times must fall in
    """

    def __init__(
        self,
        fields: list[str],
        column_types: list[str],
        constant: Sequence[tuple[object, str]],
        uri: Callable[[str], str],
        *,
        key_type: str | None = None,
        time_field: str | None = None,
        time_bounds: Mapping[str, tuple[int, int]] | None = None,
        max_errors: int = 0,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self.fields, self.column_types, self.uri = fields, column_types, uri
        self.constant = tuple(value for value, _ in constant)
        self.max_errors, self.max_record_bytes = max_errors, max_record_bytes
        self.tag_key = key_type is not None
        self.time_index = fields.index(time_field) if time_field else None
        self.time_field, self.time_bounds = time_field, time_bounds or {}
        all_types = [*column_types, *([key_type] if key_type else []), *(kind for _, kind in constant)]
        check_column_types(all_types)
        types = [pa.type_for_alias(COLUMN_TYPES[kind][1]) for kind in all_types]
        self.json_schema = pa.schema(list(zip(fields, types[: len(fields)], strict=True)))
        self.schema = pa.schema([pa.field(f"c{index}", kind) for index, kind in enumerate(types)])
        self.floats = [column.name for column in self.json_schema if pa.types.is_floating(column.type)]
        self.parse_options = pa_json.ParseOptions(explicit_schema=self.json_schema, unexpected_field_behavior="error")

    def header(self) -> bytes:
        return bytes(pgpq.ArrowToPostgresBinaryEncoder(self.schema).write_header())

    @staticmethod
    def trailer() -> bytes:
        return _TRAILER

    def encode_all(self, pieces: Iterable[Piece], refused: Refused) -> Iterator[Segment]:
        """Every piece, encoded by ``PARSERS`` threads, in the order of ``pieces``."""
        with ThreadPoolExecutor(PARSERS, thread_name_prefix="staging-parser") as pool:
            pending: deque[Any] = deque()
            try:
                try:
                    for segment in segments(pieces):
                        pending.append(pool.submit(self.encode, segment, refused))
                        if len(pending) > PARSERS:
                            yield pending.popleft().result()
                except RecordTooLarge:  # found reading: the segments before it come first, in stream order
                    while pending:
                        yield pending.popleft().result()
                    raise
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def encode(self, pieces: list[Piece], refused: Refused) -> Segment:
        """One segment: with Arrow when every line is one good record, else record by record."""
        pieces = [piece if piece.data.endswith(b"\n") else piece._replace(data=piece.data + b"\n") for piece in pieces]
        data = pieces[0].data if len(pieces) == 1 else b"".join(piece.data for piece in pieces)
        line_ends = np.flatnonzero(np.frombuffer(data, np.uint8) == _NEWLINE)
        piece_ends = np.cumsum([len(piece.data) for piece in pieces])
        lines = np.diff(np.searchsorted(line_ends, piece_ends), prepend=0).tolist()
        table = None
        if not any(refused.get(piece.key) and any(piece.line <= number <= piece.line + count
                                                  for number, _ in refused[piece.key])
                   for piece, count in zip(pieces, lines, strict=True)):
            table = self._parse(data, line_ends)
        if table is None:
            return self._encode_each_record(pieces, refused)
        runs: list[tuple[int, str, int, int]] = []
        coverage: dict[str, Coverage] = {}
        before = 0
        time_column = None if self.time_index is None else table.column(self.time_index)
        for (key, line, _, ordinal), count in zip(pieces, lines, strict=True):
            runs.append((before, key, line, ordinal))
            if time_column is None:
                cover(coverage, key, count, None, None)
            else:
                times = time_column.slice(before, count)
                low, high = (value.as_py() for value in pc.min_max(times).values())
                allowed = self.time_bounds.get(key)
                if allowed and count and (times.null_count or low < allowed[0] or high >= allowed[1]):
                    return self._encode_each_record(pieces, refused)  # names each record out of bounds
                cover(coverage, key, count, low, high)
            before += count
        if self.tag_key:
            kind = self.schema.field(len(self.fields)).type
            keys = pa.concat_arrays([pa.repeat(pa.scalar(piece.key, kind), count)
                                     for piece, count in zip(pieces, lines, strict=True)])
            table = table.set_column(len(self.fields), self.schema.field(len(self.fields)).name, keys)
        return Segment(self._binary(table), table.num_rows, runs, coverage=coverage)

    def _parse(self, data: bytes, line_ends: np.ndarray) -> pa.Table | None:
        """The segment's rows as Arrow columns, or None if some line is not exactly one good record."""
        raw = np.frombuffer(data, np.uint8)
        line_starts = np.concatenate(([0], line_ends[:-1] + 1))
        # Every line starts a JSON object (no blank line, which Arrow skips, no byte order mark) and ends
        # one (before a carriage return, if any): in JSON a "}" then a "{" on the next line can only be
        # between two records, so each line holds whole records, and as many rows as lines, one each.
        if not (raw[line_starts] == _OPEN_BRACE).all():
            return None
        last = raw[line_ends - 1]
        last = np.where(last == _RETURN, raw[np.maximum(line_ends - 2, 0)], last)
        if not (last == _CLOSE_BRACE).all():
            return None
        if len(data) > self.max_record_bytes and (line_ends - line_starts).max() >= self.max_record_bytes:
            return None
        try:
            table = pa_json.read_json(
                pa.py_buffer(data),
                read_options=pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1),
                parse_options=self.parse_options,
            )
            # The reader leaves strings' UTF-8 unchecked, but only raw bytes can be invalid: text all
            # ASCII (escapes included: the reader refuses a lone surrogate) gives valid strings.
            if not data.isascii():
                table.validate(full=True)
        except (pa.ArrowException, ValueError):  # not JSON, a wrong type, an unknown key, not UTF-8
            return None
        # One row per line (not two objects on one line), and no NaN or Infinity, which JSON has not.
        if table.num_rows != len(line_ends) or any(pc.any(pc.invert(pc.is_finite(table[name]))).as_py()
                                                   for name in self.floats):
            return None
        rows = table.num_rows
        # The key column, when there is one, is filled in per object by encode().
        first_constant = len(self.fields) + self.tag_key
        keys = [pa.nulls(rows, self.schema[len(self.fields)].type)] if self.tag_key else []
        constants = [pa.repeat(pa.scalar(value, self.schema[index].type), rows)
                     for index, value in enumerate(self.constant, start=first_constant)]
        return pa.Table.from_arrays([*table.select(self.fields).columns, *keys, *constants], schema=self.schema)

    def _encode_each_record(self, pieces: list[Piece], refused: Refused) -> Segment:
        parser = RecordParser(self.fields, self.column_types, constant=self.constant, max_errors=self.max_errors,
                              max_record_bytes=self.max_record_bytes)
        rows: list[tuple[Any, ...]] = []
        runs = []
        coverage: dict[str, Coverage] = {}
        try:
            for key, line, data, ordinal in pieces:
                before = len(rows)
                if self.tag_key:
                    parser.constant = (key, *self.constant)
                allowed = self.time_bounds.get(key)
                bounds = None
                if allowed:
                    assert self.time_index is not None and self.time_field, "time bounds need a time field"
                    bounds = TimeBounds(self.time_index, self.time_field, *allowed)
                try:
                    _, spans = parser.stage(self.uri(key), data, rows.append, refused.get(key, {}), line, ordinal,
                                            bounds)
                except RecordTooLarge as error:
                    raise RecordTooLarge(key, error.line, error.reason) from None
                runs += [(before + written, key, number, place) for written, number, place in spans]
                times = [] if self.time_index is None else [
                    row[self.time_index] for row in rows[before:] if row[self.time_index] is not None]
                cover(coverage, key, len(rows) - before, min(times, default=None), max(times, default=None))
        except TooManyBadRecords:
            return Segment([], 0, [], parser.rejected, parser.unknown_keys)  # the run fails on it
        columns = zip(*rows, strict=True) if rows else [()] * len(self.schema)
        arrays = [pa.array(column, kind) for column, kind in zip(columns, self.schema.types, strict=True)]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        return Segment(self._binary(table), len(rows), runs, parser.rejected, parser.unknown_keys, coverage)

    def _binary(self, table: pa.Table) -> list[bytes]:
        """The table's rows as binary COPY tuples (an encoder buffers until it finishes: one per segment)."""
        encoder = pgpq.ArrowToPostgresBinaryEncoder(self.schema)
        encoder.write_header()
        data = [encoder.write_batch(batch) for batch in table.to_batches()]
        data.append(encoder.finish()[: -len(_TRAILER)])
        return data
