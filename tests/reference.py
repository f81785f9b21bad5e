"""The warehouse DESIGN.md describes, computed straight from the raw JSON.

Independent of the pipeline on purpose: the standard library's json, plain
Python rules, no SQL and nothing imported from plugins/. End-to-end tests
compare every table of the real warehouse with this.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

#: Seconds a play's length may differ from a catalog duration and still match it (DESIGN: "a small tolerance").
DURATION_TOLERANCE = 0.5
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _records(folder: Path):
    for path in sorted(folder.rglob("*.json")):
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                if line.strip():
                    yield json.loads(line)


def _moment(ts: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ts)


def build_reference(source_dir: str | Path, start: datetime, end: datetime) -> dict[str, Counter]:
    """Every star table, as a Counter of row tuples, for the events in [start, end)."""
    source = Path(source_dir)
    catalog = list(_records(source / "song_data"))
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    events = [event for event in _records(source / "log_data") if start_ms <= event["ts"] < end_ms]

    by_title_artist: dict[tuple, list[dict]] = {}
    for song in catalog:
        by_title_artist.setdefault((song["title"], song["artist_name"]), []).append(song)

    def match(event: dict) -> tuple[str | None, str | None]:
        candidates = [
            song for song in by_title_artist.get((event["song"], event["artist"]), [])
            if event["length"] is not None and abs(song["duration"] - event["length"]) <= DURATION_TOLERANCE
        ]
        if not candidates:
            return None, None
        best = min(candidates, key=lambda song: song["song_id"])
        return best["song_id"], best["artist_id"]

    songplays: Counter = Counter()
    for event in events:
        if event["page"] == "NextSong":
            song_id, artist_id = match(event)
            songplays[(_moment(event["ts"]), event["userId"] or None, event["level"], song_id, artist_id,
                       event["sessionId"], event["location"], event["userAgent"])] += 1

    latest: dict[str, dict] = {}
    for event in events:
        user = event["userId"]
        order = (event["ts"], event["sessionId"], event["itemInSession"])
        if user and (user not in latest or order > latest[user]["order"]):
            latest[user] = {"order": order, "row": (user, event["firstName"], event["lastName"], event["gender"],
                                                    event["level"])}

    times = {row[0] for row in songplays}
    return {
        "songplays": songplays,
        "users": Counter(entry["row"] for entry in latest.values()),
        "time": Counter(
            (moment, moment.hour, moment.day, moment.isocalendar()[1], moment.month, moment.year,
             moment.isoweekday() % 7)
            for moment in times
        ),
        "songs": Counter({(s["song_id"], s["title"], s["artist_id"], s["year"], s["duration"]) for s in catalog}),
        "artists": Counter({
            (s["artist_id"], s["artist_name"], s["artist_location"], s["artist_latitude"], s["artist_longitude"])
            for s in catalog
        }),
    }
