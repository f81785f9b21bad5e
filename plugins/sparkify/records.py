"""From JSON lines to staging rows on the PostgreSQL path, and what happens to bad records.

A record is rejected when its line is not one JSON object (malformed, truncated,
not UTF-8), is longer than ``max_record_bytes`` (Redshift's COPY limit by
default), or holds a value of the wrong type for its column. A rejected record
is never dropped silently: up to ``max_errors`` of them (Redshift's MAXERROR)
are kept, with their object, line, reason and raw text, for the quarantine
table; one more fails the task with the first error named. Keys the JSONPaths
do not name are ignored and counted; missing keys stage as NULL.

This is the exact, line-by-line reading: ``binary_copy`` parses whole blocks of
lines with Arrow first and comes here only for a block Arrow cannot take as it
is (a bad record, an unknown key, a blank line), so both must agree on every
valid record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

#: Redshift COPY refuses a JSON record larger than 4 MB; the PostgreSQL path applies the same limit.
MAX_RECORD_BYTES = 4 * 1024 * 1024
#: How much of a rejected line the quarantine keeps (it fits a VARCHAR(65535) column in bytes).
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


def check_column_types(column_types: Iterable[str]) -> None:
    """Refuse a staging column of a type neither reading can write."""
    if unsupported := sorted(set(column_types) - COLUMN_TYPES.keys()):
        raise ValueError(f"cannot stage columns of type {', '.join(unsupported)}")


class TooManyBadRecords(Exception):
    """More bad records than ``max_errors`` allows; the first one is named, ``last`` is the one over the limit."""

    def __init__(self, rejected: list[Rejected], max_errors: int) -> None:
        super().__init__(f"{rejected[0]} ({len(rejected)} bad records, more than max_errors={max_errors})")
        self.last = rejected[-1]


@dataclass(frozen=True)
class Rejected:
    uri: str
    line: int
    error: str
    raw: str

    def __str__(self) -> str:
        return f"{self.uri} line {self.line}: {self.error}"


def raw_text(line: bytes) -> str:
    """A rejected line as text for the quarantine: undecodable bytes replaced, NULs escaped, clipped."""
    text = line[:RAW_TEXT_KEPT].decode("utf-8", errors="replace").replace("\x00", "\\u0000")
    return text.rstrip("\r\n")


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
    """Turns the lines of objects into staging rows, holding what it rejected and ignored.

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
        lines: Iterable[bytes],
        write: Callable[[tuple], object],
        refused: Mapping[int, str],
        first_line: int = 1,
        time_bounds: TimeBounds | None = None,
    ) -> tuple[int, list[tuple[int, int]]]:
        """Write the good rows of an object's lines; return how many, and where its lines fall.

        The second value lists ``(rows written before, line number)`` each time the
        rows and the object's lines stop counting together (at the start and after
        every line not written), so a row number the server reports maps back to a line.
        ``refused`` maps the lines the server refused on an earlier pass to its reason;
        ``first_line`` is the number of the first of ``lines`` in its object; with ``time_bounds``
        a record whose time is missing or outside them is rejected (see :class:`TimeBounds`).
        """
        loads, fields, constant, limit = orjson.loads, self.fields, self.constant, self.max_record_bytes
        known = self.known
        written, spans = 0, [(0, first_line)]
        for number, line in enumerate(lines, start=first_line):
            error = None
            if refused and number in refused:
                error = refused[number]
            elif len(line) > limit:
                error = f"record of {len(line)} bytes is over the limit of {limit}"
            else:
                try:
                    record = loads(line)
                except orjson.JSONDecodeError as failure:
                    if not line.strip():  # blank lines carry no record
                        spans.append((written, number + 1))
                        continue
                    error = f"not valid JSON ({failure})"
                else:
                    if type(record) is not dict:
                        error = f"expected a JSON object, got {type(record).__name__}"
            if error is None:
                row = (*map(record.get, fields), *constant)
                if not known.issuperset(record):
                    self._count_unknown(record)
                error = self._wrong_value(row)
                if error is None and time_bounds is not None:
                    error = time_bounds.check(row[time_bounds.index])
                if error is None:
                    write(row)
                    written += 1
                    continue
            self.reject(Rejected(uri, number, error, raw_text(line)))
            spans.append((written, number + 1))
        self.rows += written
        return written, spans

    def reject(self, rejected: Rejected) -> None:
        """Keep a rejected record, or fail once there are more than ``max_errors``."""
        self.rejected.append(rejected)
        if len(self.rejected) > self.max_errors:
            raise TooManyBadRecords(self.rejected, self.max_errors)

    def _count_unknown(self, record: dict) -> None:
        self.unknown_keys.update(record.keys() - self.known)

    def _wrong_value(self, row: tuple) -> str | None:
        for index, kinds, bound in self.checks:
            value = row[index]
            if value is not None and (type(value) not in kinds or (bound and not -bound <= value < bound)):
                return self._describe(index, value)
        return None

    def _describe(self, index: int, value: object) -> str:
        shown = orjson.dumps(value).decode()
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"field {self.fields[index]!r}: {shown} is not a valid {self.column_types[index]}"
