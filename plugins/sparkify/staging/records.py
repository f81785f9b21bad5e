"""From the bytes of objects to staging rows on the PostgreSQL path, and what happens to bad records.

An object holds JSON values one after another, as Redshift's ``COPY … FORMAT AS JSON`` reads them:
one object a line, an object over several lines (pretty-printed), several objects on one line,
separated by white space or by nothing (:func:`split_records`). Each value is a record, named by
the line it starts on.

A record is rejected when it is not a JSON object (malformed, truncated, not UTF-8, a bare value, a
top-level array, which COPY takes as one record and not one per element) or holds a value its
column cannot take. Values convert as COPY converts them (:meth:`RecordParser._convert`): a number
or an object for a text column loads as its text, a number written as text loads into a number
column, an empty string into a number column is NULL. A record over ``max_record_bytes`` (Redshift's
4 MB by default) fails its object whatever ``max_errors``, as it fails Redshift's COPY
(:class:`RecordTooLarge`). A rejected record is never dropped silently: up to ``max_errors`` of them
(Redshift's MAXERROR) are kept, with their object, line, reason and raw text, for the quarantine
table; one more fails the task with the first error named. Keys the JSONPaths do not name are
ignored and counted; missing keys stage as NULL.

This is the exact, record-by-record reading: ``binary_copy`` parses whole blocks of lines with
Arrow first and comes here only for a block Arrow cannot take as it is (a bad record, an unknown
key, a blank line, a record not alone on its line, a value to convert), so both must agree on
every valid record.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from sparkify.exceptions import RecordTooLarge, TooManyBadRecords
from sparkify.sources.json_records import (
    BAD,
    MAX_RECORD_BYTES,
    TOO_LARGE,
    Framed,
    not_an_object,
    positioned,
    split_records,
)

#: How much of a rejected record the quarantine keeps (it fits a VARCHAR(65535) column in bytes).
RAW_TEXT_KEPT = 16384

#: The column types staging can write (as ``format_type`` names them): the Python types a JSON
#: value may have for each, and the Arrow type ``binary_copy`` sends it as.
COLUMN_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "smallint": ((int,), "int16"),
    "integer": ((int,), "int32"),
    "bigint": ((int,), "int64"),
    "double precision": ((int, float), "float64"),
    "real": ((int, float), "float32"),
    "boolean": ((bool,), "bool"),
    "text": ((str,), "string"),
    "character varying": ((str,), "string"),
    "character": ((str,), "string"),
}
_EPOCH = datetime(1970, 1, 1)
_INTEGER_RANGES = {"smallint": 1 << 15, "integer": 1 << 31, "bigint": 1 << 63}
#: Text a number column takes, as COPY reads a field: an integer, or a decimal number for a float.
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_DECIMAL_TEXT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def check_column_types(column_types: Iterable[str]) -> None:
    """Refuse a staging column of a type neither reading can write."""
    if unsupported := sorted(set(column_types) - COLUMN_TYPES.keys()):
        raise ValueError(f"cannot stage columns of type {', '.join(unsupported)}")


@dataclass(frozen=True)
class Rejected:
    uri: str
    line: int
    error: str
    raw: str

    def __str__(self) -> str:
        return f"{self.uri} line {self.line}: {self.error}"


def raw_text(record: bytes) -> str:
    """A rejected record as text for the quarantine: without the white space after it, undecodable
    bytes replaced, NULs escaped, and clipped to RAW_TEXT_KEPT bytes, saying so."""
    record = record.rstrip()
    text = record[:RAW_TEXT_KEPT].decode("utf-8", errors="replace").replace("\x00", "\\u0000")
    if len(record) > RAW_TEXT_KEPT:
        text += f" … [cut: the first {RAW_TEXT_KEPT} of {len(record)} bytes]"
    return text


@dataclass(frozen=True)
class TimeBounds:
    """The times an object's records may have: its key's hours widened by a plausibility window.
    A record outside them (or without a time) would land in an hour no run of that object loads."""

    index: int
    field: str
    low_ms: int
    high_ms: int

    def check(self, value: object) -> str | None:
        if value is None:
            return f"field {self.field!r} is missing: the record has no time"
        if not self.low_ms <= value < self.high_ms:  # type: ignore[operator]
            low, high = (f"{_EPOCH + timedelta(milliseconds=ms):%Y-%m-%d %H:%M}" for ms in (self.low_ms, self.high_ms))
            return (f"field {self.field!r}: {value} is outside the times this object may hold "
                    f"({low} to {high} UTC: its hours and the plausibility window)")
        return None


class RecordParser:
    """Turns the bytes of objects into staging rows, holding what it rejected and ignored.

    :param fields: the JSON keys to stage, in column order (from the JSONPaths file)
    :param column_types: each field's column type, as PostgreSQL's ``format_type`` names it
    :param constant: values appended to every row (the run's ``batch_id``)
    """

    def __init__(
        self,
        fields: list[str],
        column_types: list[str],
        *,
        constant: tuple[Any, ...] = (),
        max_errors: int = 0,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self.fields = fields
        self.column_types = column_types
        self.constant = constant
        self.max_errors = max_errors
        self.max_record_bytes = max_record_bytes
        self.known = frozenset(fields)
        check_column_types(column_types)
        self.checks = [
            (index, COLUMN_TYPES[kind][0], _INTEGER_RANGES.get(kind)) for index, kind in enumerate(column_types)
        ]
        self.rows = 0
        self.rejected: list[Rejected] = []
        self.unknown_keys: Counter[str] = Counter()

    def stage(
        self,
        uri: str,
        data: bytes,
        write: Callable[[tuple[Any, ...]], object],
        refused: Mapping[tuple[int, int], str],
        first_line: int = 1,
        first_ordinal: int = 0,
        time_bounds: TimeBounds | None = None,
    ) -> tuple[int, list[tuple[int, int, int]]]:
        """Write the good rows of a run of an object's records; return how many, and where they fall.

        ``data`` starts between two records, on line ``first_line`` after ``first_ordinal`` records of
        that line. The second value lists ``(rows written before, line, ordinal)`` for each row that is
        not where the row before predicts (the first record of the next line), so a row number the
        server reports maps back to its record. ``refused`` maps the ``(line, ordinal)`` of records the
        server refused on an earlier pass to its reason; with ``time_bounds`` a record whose time is
        missing or outside them is rejected (see :class:`TimeBounds`).
        """
        fields, constant, known = self.fields, self.constant, self.known
        written, predicted = 0, None
        spans: list[tuple[int, int, int]] = []
        error: str | None
        for found, line, ordinal in positioned(data, split_records(data, self.max_record_bytes), first_line,
                                               first_ordinal):
            if found.kind == TOO_LARGE:
                raise RecordTooLarge(None, line, found.value)
            if refused and (line, ordinal) in refused:
                error = refused[line, ordinal]
            elif found.kind == BAD:
                error = found.value
            elif type(found.value) is not dict:
                error = not_an_object(found.value)
            else:
                record = found.value
                row = [*map(record.get, fields)]
                if not known.issuperset(record):
                    self._count_unknown(record)
                error = self._convert(row, data, found)
                if error is None and time_bounds is not None:
                    error = time_bounds.check(row[time_bounds.index])
                if error is None:
                    if predicted != (line, ordinal):
                        spans.append((written, line, ordinal))
                    write((*row, *constant))
                    written += 1
                    predicted = (line + 1, 0)
                    continue
            self.reject(Rejected(uri, line, error, raw_text(data[found.start:found.end])))
        self.rows += written
        return written, spans

    def reject(self, rejected: Rejected) -> None:
        """Keep a rejected record, or fail once there are more than ``max_errors``."""
        self.rejected.append(rejected)
        if len(self.rejected) > self.max_errors:
            raise TooManyBadRecords(self.rejected, self.max_errors)

    def _count_unknown(self, record: dict[str, Any]) -> None:
        self.unknown_keys.update(record.keys() - self.known)

    def _convert(self, row: list[Any], data: bytes, found: Framed) -> str | None:
        """Check each value against its column, converting what COPY converts; the first error."""
        numbers = None
        for index, kinds, bound in self.checks:
            value = row[index]
            if value is None or (type(value) in kinds and (not bound or -bound <= value < bound)):
                continue
            kind = self.column_types[index]
            if kinds == (str,):
                if type(value) in (int, float):  # its text as written: 1.50 stays 1.50
                    numbers = numbers or json.loads(data[found.start:found.end], parse_int=str, parse_float=str)
                    row[index] = numbers[self.fields[index]]
                    continue
                if type(value) in (dict, list):  # COPY loads an object or array as its JSON text
                    row[index] = orjson.dumps(value).decode()
                    continue
            elif type(value) is str:
                converted = _number_from_text(value, kind)
                if value == "" or (converted is not None and (not bound or -bound <= converted < bound)):
                    row[index] = converted
                    continue
            return self._describe(index, value)
        return None

    def _describe(self, index: int, value: object) -> str:
        shown = orjson.dumps(value).decode()
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"field {self.fields[index]!r}: {shown} is not a valid {self.column_types[index]}"


def _number_from_text(text: str, kind: str) -> int | float | None:
    """A number column's value written as text, as COPY reads it: an integer (a decimal number for
    a float column); None for the empty string (COPY loads it as NULL) or anything else."""
    if kind in _INTEGER_RANGES:
        return int(text) if _INTEGER_TEXT.fullmatch(text) else None
    if COLUMN_TYPES[kind][1].startswith("float") and _DECIMAL_TEXT.fullmatch(text):
        number = float(text)
        return number if abs(number) != float("inf") else None
    return None
