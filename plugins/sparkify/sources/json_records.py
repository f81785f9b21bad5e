"""Where the records are in an object's bytes, as Redshift's ``COPY … FORMAT AS JSON`` finds them:
JSON values one after another, one a line, over several lines, or several on one line
(:func:`split_records`), each named by the line it starts on (:func:`positioned`); and the cutting
of an object's stream into pieces of whole records (:func:`pieces`), so that no reading ever holds
more of an object than a record and two blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import orjson

from sparkify.exceptions import RecordTooLarge

#: Redshift COPY refuses a JSON record larger than 4 MB; the PostgreSQL path applies the same limit.
MAX_RECORD_BYTES = 4 * 1024 * 1024
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


class Piece(NamedTuple):
    """A piece of an object: whole records of bytes (see :func:`pieces`)."""

    key: str
    #: The number of the line the piece starts on.
    line: int
    data: bytes
    #: How many records of that line come before the piece (it may start inside a line of several).
    ordinal: int = 0


#: Where a piece may end: after a line whose last byte closes a value ("}" or "]") when the next line
#: opens one ("{" or "["). JSON strings hold no line break and values in an object or array are
#: separated by commas, so in valid JSON this is always between two records.
_CUT = re.compile(rb"[}\]][ \t\r]*\n[ \t\r\n]*(?=[{\[])")


def pieces(key: str, blocks: Iterable[bytes], record_limit: int = MAX_RECORD_BYTES) -> Iterator[Piece]:
    """Cut blocks of bytes into pieces of whole records: after the last place between two records at a
    line's end (one object a line, pretty-printed objects). A stretch without one (several records on
    one long line, a top-level array) is cut after its last whole record once it is longer than
    ``record_limit`` and a block; a record longer than that fails the object, as COPY fails on it,
    rather than being held. Memory stays within a record and two blocks."""
    line, ordinal, held, searched = 1, 0, b"", 0
    for block in blocks:
        data = held + block if held else block
        cut = _last_cut(data, max(0, searched - 64))  # a little before: a place may span two blocks
        if cut:
            yield Piece(key, line, data[:cut], ordinal)
            line, ordinal, data = line + data.count(b"\n", 0, cut), 0, data[cut:]
        held, searched = data, len(data)
        if len(held) > record_limit + len(block):
            cut, next_line, next_ordinal = _after_last_record(key, held, line, ordinal, record_limit)
            yield Piece(key, line, held[:cut], ordinal)
            line, ordinal, held = next_line, next_ordinal, held[cut:]
            searched = len(held)
    if held:
        yield Piece(key, line, held, ordinal)


def _last_cut(data: bytes, start: int) -> int:
    """The end of the last place between records at a line's end in ``data[start:]``; 0 if none
    (looked for in the last few KiB first: one object a line has one every line)."""
    for window in (1 << 12, 1 << 16, len(data)):
        begin = max(start, len(data) - window)
        ends = [match.end() for match in _CUT.finditer(data, begin)]
        if ends:
            return ends[-1]
        if begin == start:
            return 0
    return 0


def _after_last_record(key: str, data: bytes, line: int, ordinal: int, record_limit: int) -> tuple[int, int, int]:
    """Where to cut a long stretch without a line between records: before the last record, which
    may go on, with the line and the place among that line's records of what follows the cut."""
    last = None
    for found, found_line, found_ordinal in positioned(data, split_records(data, record_limit, final=False), line,
                                                       ordinal):
        if found.kind == TOO_LARGE:
            raise RecordTooLarge(key, found_line, found.value)
        if found.kind == UNFINISHED:
            if found.start == 0:
                raise RecordTooLarge(key, line, f"record of more than {record_limit} bytes is over the limit of "
                                                f"{record_limit}")
            return found.start, found_line, found_ordinal
        last = found, found_ordinal
    # All of it read: what follows goes on the line the stretch ends on.
    if b"\n" in data[last[0].start if last else 0:]:
        return len(data), line + data.count(b"\n"), 0
    return len(data), line + data.count(b"\n"), last[1] + 1 if last else ordinal
