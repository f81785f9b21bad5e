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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson

#: Redshift COPY refuses a JSON record larger than 4 MB; the PostgreSQL path applies the same limit.
MAX_RECORD_BYTES = 4 * 1024 * 1024
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
_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}

# How records are found in an object's bytes. A value ends where a "}" or "]" is followed (after
# white space, if any) by a "{" or "[": in JSON nothing else can stand there but the gap between two
# records, or the inside of a string, which a failed parse tells apart. After a record that is not
# JSON, reading resumes at such a place or at a line that starts with "{" or "[" (the next record of
# an object a line), whichever comes first: a truncated line costs one record, not the object.
_SPACE = re.compile(rb"[ \t\r\n]*")


def _skip_space(data: bytes, position: int) -> int:
    """The first position from ``position`` on that is not white space (the pattern always matches)."""
    return _SPACE.match(data, position).end()  # type: ignore[union-attr]


_BOUNDARY = re.compile(rb"[}\]][ \t\r\n]*(?=[{\[])")
_RECORD_LINE = re.compile(rb"\n(?=[{\[])")
_OPENING = re.compile(rb"[{\[]")
_OPENINGS = b"{["
#: A line longer than this is cut at the places between records on it before it is parsed.
_LONG_LINE = 1 << 16
_TRUNCATED = "unexpected end of data"
_FOLLOWED = "unexpected content after document"

#: What :func:`split_records` finds: a record (its value), a stretch that is not one (the reason),
#: a record over the limit (the reason), or, reading a part of an object, one that may go on.
RECORD, BAD, TOO_LARGE, UNFINISHED = "record", "bad", "too large", "unfinished"


class Framed(NamedTuple):
    kind: str
    start: int
    end: int
    value: Any = None


def split_records(data: bytes, limit: int, *, final: bool = True) -> Iterator[Framed]:
    """The records of a run of an object's bytes that starts between two records, in order.

    Each one spans ``[start, end)`` (white space after it included). A record over ``limit`` bytes
    ends the reading (TOO_LARGE). With ``final`` False the bytes are only the start of what follows:
    the reading stops at the first record the rest might change (UNFINISHED).
    """
    view, size = memoryview(data), len(data)
    position = _skip_space(data, 0)
    while position < size:
        line_end = data.find(b"\n", position) + 1 or size
        if data[position] in _OPENINGS:
            found = _value(data, view, position, line_end, limit, final)
        else:
            found = _not_a_value(data, view, position, line_end, final)
        yield found
        if found.kind in (TOO_LARGE, UNFINISHED):
            return
        position = _skip_space(data, found.end)


def _value(data: bytes, view: memoryview, start: int, line_end: int, limit: int, final: bool) -> Framed:
    """The value that starts at ``start`` (a "{" or "["), parsed to the end of its line (of a long
    line, to the next place between records on it), then to the next such place, then to the end, as
    far as it needs; or the stretch that is not one."""
    size = len(data)
    window = line_end
    if line_end - start > _LONG_LINE:  # a line of many records: parse one at a time, not the rest of the line
        same_line = _BOUNDARY.search(data, start, line_end)
        window = same_line.start() + 1 if same_line else line_end
    failures: list[tuple[int, orjson.JSONDecodeError]] = []
    while True:
        try:
            value = orjson.loads(view[start:window])
        except orjson.JSONDecodeError as error:
            failures.append((window, error))
            if error.msg == _FOLLOWED:  # a whole value, then something else: the value is what comes before
                window = start + _bytes_before(view[start:window], error.pos)
                value = orjson.loads(view[start:window])
            elif error.msg == _TRUNCATED and window < size:
                following = _BOUNDARY.search(data, window) if len(failures) == 1 else None
                window = following.start() + 1 if following else size
                continue
            else:
                break
        length = len(data[start:window].rstrip())
        if length > limit:
            return Framed(TOO_LARGE, start, window, f"record of {length} bytes is over the limit of {limit}")
        return Framed(RECORD, start, window, value)
    if failures[-1][1].msg == _TRUNCATED:  # it runs on to the end of what was read
        if size - start > limit:
            return Framed(TOO_LARGE, start, size, f"record of more than {limit} bytes is over the limit of {limit}")
        if not final:
            return Framed(UNFINISHED, start, size)
    end = _resume(data, start, line_end)
    if end is None:
        if not final:
            return Framed(UNFINISHED, start, size)
        end = size
    # The reason is the parse that stayed within the stretch (not one that ran into the next record).
    _, reason = next((failure for failure in reversed(failures) if failure[0] <= end), failures[0])
    return Framed(BAD, start, end, f"not valid JSON ({reason})")


def _not_a_value(data: bytes, view: memoryview, start: int, line_end: int, final: bool) -> Framed:
    """A stretch that does not start a value, up to the next "{" or "[" on its line or the line's end
    (COPY counts an error for each such stretch, before a record or between two)."""
    opening = _OPENING.search(data, start + 1, line_end)
    if opening is None and line_end == len(data) and not data.endswith(b"\n") and not final:
        return Framed(UNFINISHED, start, line_end)
    end = opening.start() if opening else line_end
    try:
        value = orjson.loads(view[start:end])
    except orjson.JSONDecodeError as error:
        return Framed(BAD, start, end, f"not valid JSON ({error})")
    return Framed(BAD, start, end, not_an_object(value))


def _resume(data: bytes, start: int, line_end: int) -> int | None:
    """Where reading goes on after a stretch that is not a record; None if nothing says yet."""
    between = _BOUNDARY.search(data, start)
    record_line = _RECORD_LINE.search(data, line_end - 1)
    found = [match.end() for match in (between, record_line) if match]
    return min(found) if found else None


def _bytes_before(chunk: memoryview, characters: int) -> int:
    """The bytes of the first ``characters`` characters of UTF-8 text (the parser counts characters)."""
    text = str(chunk, "utf-8", "replace")
    return len(text[:characters].encode())


def not_an_object(value: object) -> str:
    if isinstance(value, list):
        return (f"expected a JSON object, got an array of {len(value)} values (a top-level array is one "
                "record, as Redshift's COPY reads it, not one per element)")
    return f"expected a JSON object, got {_JSON_NAMES.get(type(value), type(value).__name__)}"


def positioned(data: bytes, found: Iterable[Framed], first_line: int, first_ordinal: int
               ) -> Iterator[tuple[Framed, int, int]]:
    """Each record with its line and its place among the records that start on that line.

    ``first_ordinal`` counts the records of ``first_line`` before ``data`` (a part of an object that
    starts inside a line)."""
    line, counted, ordinal, previous = first_line, 0, first_ordinal - 1, first_line
    for record in found:
        line += data.count(b"\n", counted, record.start)
        counted = record.start
        ordinal = ordinal + 1 if line == previous else 0
        previous = line
        yield record, line, ordinal


def check_column_types(column_types: Iterable[str]) -> None:
    """Refuse a staging column of a type neither reading can write."""
    if unsupported := sorted(set(column_types) - COLUMN_TYPES.keys()):
        raise ValueError(f"cannot stage columns of type {', '.join(unsupported)}")


class TooManyBadRecords(Exception):
    """More bad records than ``max_errors`` allows; the first one is named, ``last`` is the one over the limit."""

    def __init__(self, rejected: list[Rejected], max_errors: int) -> None:
        super().__init__(f"{rejected[0]} ({len(rejected)} bad records, more than max_errors={max_errors})")
        self.last = rejected[-1]


class RecordTooLarge(Exception):
    """A record over the size limit, in the object ``key``: it fails the object whatever ``max_errors``,
    as Redshift's COPY fails on a JSON object or array over 4 MB."""

    def __init__(self, key: str | None, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.key, self.line, self.reason = key, line, reason


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
        constant: tuple = (),
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
        write: Callable[[tuple], object],
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

    def _count_unknown(self, record: dict) -> None:
        self.unknown_keys.update(record.keys() - self.known)

    def _convert(self, row: list, data: bytes, found: Framed) -> str | None:
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
