"""The segments a binary COPY stream is made of, and the account the stream keeps of them: rows, bad
records, keys ignored, what each object covers, and which record each row of the stream came from (a row
the server refuses is named by its object and line)."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sparkify.exceptions import TooManyBadRecords
from sparkify.sources.json_records import Piece
from sparkify.staging.records import Rejected

#: What an object's rows cover: ``[rows, smallest, largest]`` time value (None while no row had one).
Coverage = list[Any]

#: Bytes of JSON records parsed at a time: big enough that Arrow's per-call cost vanishes,
#: small enough that a few in flight stay a few megabytes. Objects are read in blocks of this size,
#: so a large object's pieces (whole records, a little under a block) are segments on their own,
#: never copied together; small objects (a catalog's one-line files) are grouped to half of it.
SEGMENT_BYTES = 1 << 20


@dataclass
class Segment:
    """What one segment became: binary COPY tuples, and what the run must account for."""

    data: list[bytes]
    rows: int
    #: ``(first row, key, its line, its place among that line's records)``: from that row on, rows and
    #: the object's lines count together (one record a line), until the next entry.
    runs: list[tuple[int, str, int, int]]
    rejected: list[Rejected] = field(default_factory=list)
    unknown_keys: Counter[str] = field(default_factory=Counter)
    #: Per object key: ``[rows, smallest, largest]`` value of the time field (None: no row had one).
    coverage: dict[str, Coverage] = field(default_factory=dict)


def cover(coverage: dict[str, Coverage], key: str, rows: int, low: int | None, high: int | None) -> None:
    """Add rows of an object, with the range of their time values, to a coverage account."""
    entry = coverage.setdefault(key, [0, None, None])
    entry[0] += rows
    if low is not None:
        entry[1] = low if entry[1] is None else min(entry[1], low)
        entry[2] = high if entry[2] is None else max(entry[2], high)


class StagedRows:
    """The running account of a COPY: rows, rejects, ignored keys, and which record each row came from."""

    def __init__(self, max_errors: int) -> None:
        self.max_errors = max_errors
        self.rows = 0
        self.rejected: list[Rejected] = []
        self.unknown_keys: Counter[str] = Counter()
        #: Per object key: ``[rows, smallest, largest]`` time value staged.
        self.coverage: dict[str, Coverage] = {}
        self._run_rows, self._run_lines, self._run_ordinals = array("q"), array("q"), array("q")
        self._run_keys: list[str] = []

    def add(self, segment: Segment) -> None:
        """Count a segment, in stream order; fail once the run has more bad records than allowed."""
        self.rejected += segment.rejected
        if len(self.rejected) > self.max_errors:
            raise TooManyBadRecords(self.rejected, self.max_errors)
        self.unknown_keys += segment.unknown_keys
        for key, (rows, low, high) in segment.coverage.items():
            cover(self.coverage, key, rows, low, high)
        for first, key, line, ordinal in segment.runs:
            self._run_rows.append(self.rows + first)
            self._run_lines.append(line)
            self._run_ordinals.append(ordinal)
            self._run_keys.append(key)
        self.rows += segment.rows

    def locate(self, row: int) -> tuple[str, int, int] | None:
        """The object key, line and place among its line's records of the row numbered ``row``
        (from 0) in the stream."""
        index = bisect_right(self._run_rows, row) - 1
        if index < 0:
            return None
        after = row - self._run_rows[index]
        return self._run_keys[index], self._run_lines[index] + after, 0 if after else self._run_ordinals[index]


def segments(pieces: Iterable[Piece]) -> Iterator[list[Piece]]:
    """Consecutive pieces, grouped until they hold half of SEGMENT_BYTES (a catalog's one-line files)."""
    segment, size = [], 0
    for piece in pieces:
        segment.append(piece)
        size += len(piece[2])
        if size >= SEGMENT_BYTES // 2:
            yield segment
            segment, size = [], 0
    if segment:
        yield segment
