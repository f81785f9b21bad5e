"""The star schema DESIGN.md describes, computed straight from the raw JSON.

Independent of the pipeline on purpose: the standard library's json and plain
Python rules, no SQL and nothing from plugins/ or include/. End-to-end tests
compare every warehouse table with this, as Counters of row tuples so that a
duplicated row shows.

Rules where DESIGN.md leaves a choice (the pipeline must make the same ones):

* a play matches a catalog song when title == song, artist_name == artist and
  abs(duration - length) <= DURATION_TOLERANCE; of several matches the
  smallest song_id wins; none gives (None, None);
* a user's row comes from their latest event in range, ordered by
  (ts, sessionId, itemInSession);
* weekday is PostgreSQL's EXTRACT(DOW) (0 = Sunday), week the ISO week.
"""

from __future__ import annotations

import bz2
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

#: Seconds a play's length may differ from a catalog duration and still match it.
DURATION_TOLERANCE = 0.5
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _json_files(folder: Path) -> list[Path]:
    """The JSON files under a folder, plain or compressed (``.json.gz``, ``.json.bz2``, ``.json.zst``)."""
    return sorted(path for path in folder.rglob("*") if path.name.endswith((".json", ".json.gz", ".json.bz2",
                                                                               ".json.zst")))


def _text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    elif path.suffix == ".bz2":
        data = bz2.decompress(data)
    elif path.suffix == ".zst":
        import zstandard

        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data.decode("utf-8")


def _events(log_data: Path) -> Iterator[dict]:
    """Every event of every log file, whatever the layout; a last line without newline counts too."""
    for path in _json_files(log_data):
        for line in _text(path).split("\n"):
            if line.strip():
                yield json.loads(line)


def _one_per_id(rows: list[tuple], what: str) -> Counter:
    """Rows keyed by their first column; two different rows for one id would make the answer depend on
    the dedup rule, so the reference refuses such data instead of guessing."""
    by_id: dict = {}
    for row in rows:
        if by_id.setdefault(row[0], row) != row:
            raise ValueError(f"{what} {row[0]} has conflicting details: {by_id[row[0]]} and {row}")
    return Counter(by_id.values())


def build_reference(source_dir: str | Path, start: datetime, end: datetime) -> dict[str, Counter]:
    """Every star table as a Counter of row tuples, for the events with start <= ts < end (aware UTC)."""
    source = Path(source_dir)
    catalog = [json.loads(_text(path)) for path in _json_files(source / "song_data")]
    by_title_artist: dict[tuple[str, str], list[dict]] = {}
    for song in catalog:
        by_title_artist.setdefault((song["title"], song["artist_name"]), []).append(song)

    def match(event: dict) -> tuple[str | None, str | None]:
        length = event["length"]
        candidates = [
            song for song in by_title_artist.get((event["song"], event["artist"]), [])
            if length is not None and abs(song["duration"] - length) <= DURATION_TOLERANCE
        ]
        if not candidates:
            return None, None
        best = min(candidates, key=lambda song: song["song_id"])
        return best["song_id"], best["artist_id"]

    songplays: Counter = Counter()
    latest: dict[str, tuple[tuple, tuple]] = {}  # user id -> (event order, users row)
    for event in _events(source / "log_data"):
        moment = EPOCH + timedelta(milliseconds=event["ts"])
        if not start <= moment < end:
            continue
        if event["page"] == "NextSong":
            songplays[(moment, event["userId"] or None, event["level"], *match(event), event["sessionId"],
                       event["location"], event["userAgent"])] += 1
        user = event["userId"]
        order = (event["ts"], event["sessionId"], event["itemInSession"])
        if user and (user not in latest or order > latest[user][0]):
            latest[user] = order, (user, event["firstName"], event["lastName"], event["gender"], event["level"])

    return {
        "songplays": songplays,
        "users": Counter(row for _, row in latest.values()),
        "time": Counter(
            (moment, moment.hour, moment.day, moment.isocalendar().week, moment.month, moment.year,
             moment.isoweekday() % 7)
            for moment in {row[0] for row in songplays}
        ),
        "songs": _one_per_id(
            [(song["song_id"], song["title"], song["artist_id"], song["year"], song["duration"]) for song in catalog],
            "song"),
        "artists": _one_per_id(
            [(song["artist_id"], song["artist_name"], song["artist_location"], song["artist_latitude"],
              song["artist_longitude"]) for song in catalog],
            "artist"),
    }
