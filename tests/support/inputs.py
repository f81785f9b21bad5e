"""Small hand-written inputs for the operator tests: events and song files as the app writes
them, laid out in a folder like the bucket. Plain data and files, no Airflow."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

HOUR = datetime(2018, 11, 1, 0, tzinfo=timezone.utc)
HOUR_MS = int(HOUR.timestamp() * 1000)
DAY_KEY = "log_data/2018/11/2018-11-01-events.json"


def event(ts_offset_s: float, *, page="NextSong", user="39", level="free", song="Song A", artist="Artist A",
          length=200.0, session=1, item=0, **extra) -> dict:
    record = {
        "artist": artist if page == "NextSong" else None, "auth": "Logged In" if user else "Logged Out",
        "firstName": "Walter" if user else None, "gender": "M" if user else None, "itemInSession": item,
        "lastName": "Frye" if user else None, "length": length if page == "NextSong" else None, "level": level,
        "location": "Somewhere, CA", "method": "PUT", "page": page,
        "registration": 1540919166796.0 if user else None, "sessionId": session,
        "song": song if page == "NextSong" else None, "status": 200, "ts": HOUR_MS + int(ts_offset_s * 1000),
        "userAgent": '"Mozilla/5.0"' if user else None, "userId": user,
    }
    record.update(extra)
    return record


def song(song_id: str, title: str, artist_id: str, artist: str, duration: float) -> dict:
    return {"num_songs": 1, "artist_id": artist_id, "artist_latitude": None, "artist_longitude": None,
            "artist_location": "LA", "artist_name": artist, "song_id": song_id, "title": title,
            "duration": duration, "year": 2001}


def write_lines(path: Path, records: list[dict], trailing_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(json.dumps(record) for record in records)
    path.write_text(text + ("\n" if trailing_newline else ""))


def write_song(bucket: Path, track: str, record: dict) -> None:
    write_lines(bucket / "song_data" / track[2] / track[3] / track[4] / f"{track}.json", [record])
