"""From JSON lines to staging rows on the PostgreSQL path, and what happens to bad records.

A record is rejected when its line is not one JSON object (malformed, truncated,
not UTF-8), is longer than ``max_record_bytes`` (Redshift's COPY limit by
default), or holds a value of the wrong type for its column. A rejected record
is never dropped silently: up to ``max_errors`` of them (Redshift's MAXERROR)
are kept, with their object, line, reason and raw text, for the quarantine
table; one more fails the task with the first error named. Keys the JSONPaths
do not name are ignored and counted; missing keys stage as NULL.

The happy path costs one ``orjson.loads``, one tuple and one ``write`` per line:
text values are checked by psycopg's binary COPY dumpers (which raise on a
wrong type and write nothing), numbers here, since a binary dumper would take
``True`` for 1 or wrap an integer too large for its column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import orjson

#: Redshift COPY refuses a JSON record larger than 4 MB; the PostgreSQL path applies the same limit.
MAX_RECORD_BYTES = 4 * 1024 * 1024
#: How much of a rejected line the quarantine keeps (it fits a VARCHAR(65535) column in bytes).
RAW_TEXT_KEPT = 16384

# The Python types a JSON value may have for each PostgreSQL column type, and integer ranges.
_NUMBER_TYPES: dict[str, tuple[type, ...]] = {
    "smallint": (int,),
    "integer": (int,),
    "bigint": (int,),
    "double precision": (int, float),
    "real": (int, float),
}
_INTEGER_RANGES = {"smallint": 1 << 15, "integer": 1 << 31, "bigint": 1 << 63}


class TooManyBadRecords(Exception):
    """More bad records than ``max_errors`` allows; the first one is named."""


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
        self.numbers = [
            (index, _NUMBER_TYPES[kind], _INTEGER_RANGES.get(kind))
            for index, kind in enumerate(column_types)
            if kind in _NUMBER_TYPES
        ]
        self.rows = 0
        self.rejected: list[Rejected] = []
        self.unknown_keys: Counter[str] = Counter()

    def stage(
        self, uri: str, lines: Iterable[bytes], write: Callable[[tuple], object], refused: Mapping[int, str]
    ) -> tuple[int, list[tuple[int, int]]]:
        """Write one object's good rows; return how many, and where its lines fall in the stream.

        The second value lists ``(rows written before, line number)`` each time the
        stream and the object's lines stop counting together (at the start and after
        every line not written), so a row number the server reports maps back to a line.
        ``refused`` maps the lines the server refused on an earlier pass to its reason.
        """
        loads, fields, constant, limit = orjson.loads, self.fields, self.constant, self.max_record_bytes
        checks_numbers, known = bool(self.numbers), self.known
        written, spans = 0, [(0, 1)]
        for number, line in enumerate(lines, start=1):
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
                if checks_numbers:
                    error = self._wrong_number(row)
                if error is None:
                    try:
                        write(row)
                        written += 1
                        continue
                    except (TypeError, ValueError, OverflowError):
                        error = self._wrong_text(row)
            self.reject(Rejected(uri, number, error, raw_text(line)))
            spans.append((written, number + 1))
        self.rows += written
        return written, spans

    def reject(self, rejected: Rejected) -> None:
        """Keep a rejected record, or fail once there are more than ``max_errors``."""
        self.rejected.append(rejected)
        if len(self.rejected) > self.max_errors:
            raise TooManyBadRecords(
                f"{self.rejected[0]} ({len(self.rejected)} bad records, more than max_errors={self.max_errors})"
            )

    def _count_unknown(self, record: dict) -> None:
        self.unknown_keys.update(record.keys() - self.known)

    def _wrong_number(self, row: tuple) -> str | None:
        for index, kinds, bound in self.numbers:
            value = row[index]
            if value is not None and (type(value) not in kinds or (bound and not -bound <= value < bound)):
                return self._describe(index, value)
        return None

    def _wrong_text(self, row: tuple) -> str:
        for index, value in enumerate(row[: len(self.fields)]):
            if value is not None and self.column_types[index] not in _NUMBER_TYPES and not isinstance(value, str):
                return self._describe(index, value)
        return "a value does not fit its column"

    def _describe(self, index: int, value: object) -> str:
        shown = orjson.dumps(value).decode()
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"field {self.fields[index]!r}: {shown} is not a valid {self.column_types[index]}"
