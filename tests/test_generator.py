"""The sample-data generator writes the public formats with their quirks; the reference follows DESIGN's rules."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tools.generate_data import EVENT_KEYS, generate

from reference import build_reference

START = datetime(2018, 11, 1, tzinfo=timezone.utc)
SONG_KEYS = ["num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name",
             "song_id", "title", "duration", "year"]


def files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*.json"))}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    generate(root, START, START + timedelta(days=2))
    return root


def test_event_lines_have_the_apps_keys_order_and_types(sample):
    for path in (sample / "log_data").rglob("*.json"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            assert list(event) == EVENT_KEYS
            assert isinstance(event["ts"], int) and isinstance(event["userId"], str)
            assert isinstance(event["sessionId"], int) and isinstance(event["itemInSession"], int)
            assert event["registration"] is None or isinstance(event["registration"], float)
            assert (event["length"] is None) == (event["page"] != "NextSong")
            assert (event["userId"] == "") == (event["auth"] == "Logged Out")


def test_song_files_have_the_catalog_keys_and_layout(sample):
    songs = list((sample / "song_data").rglob("*.json"))
    assert len(songs) == 300
    for path in songs:
        record = json.loads(path.read_text())
        assert list(record) == SONG_KEYS
        track = path.stem
        assert len(track) == 18 and track.startswith("TR")
        assert path.relative_to(sample).parts[:4] == ("song_data", track[2], track[3], track[4])
        assert path.read_text().startswith('{"num_songs": 1, "artist_id": ')


def test_daily_and_hourly_layouts(sample, tmp_path):
    assert sorted(p.relative_to(sample).as_posix() for p in (sample / "log_data").rglob("*.json")) == [
        "log_data/2018/11/2018-11-01-events.json", "log_data/2018/11/2018-11-02-events.json",
    ]
    generate(tmp_path, START, START + timedelta(hours=24), layout="hourly", files_per_hour=2)
    hourly = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "log_data").rglob("*.json"))
    assert "log_data/2018/11/01/15/2018-11-01-15-events-1.json" in hourly
    assert all(key.split("/")[4] == key.split("/")[5][11:13] for key in hourly)  # folder hour = file hour


def test_same_seed_same_bytes_other_seed_other_data(sample, tmp_path):
    generate(tmp_path / "again", START, START + timedelta(days=2))
    generate(tmp_path / "other", START, START + timedelta(days=2), seed=43)
    assert files(tmp_path / "again") == files(sample)
    assert files(tmp_path / "other") != files(sample)


def test_the_quirks_of_the_real_data_are_there(sample):
    raw = b"".join(files(sample / "log_data").values()).decode("ascii")
    assert "\\u00" in raw and '\\"' in raw and "\\/" in raw and "null" in raw
    ends = [path.read_bytes()[-1:] for path in (sample / "log_data").rglob("*.json")]
    assert b"\n" in ends and b"}" in ends
    events = [json.loads(line) for line in raw.splitlines() if line.strip()]
    levels: dict[str, set] = {}
    for event in events:
        levels.setdefault(event["userId"], set()).add(event["level"])
    assert any(len(seen) == 2 for user, seen in levels.items() if user)
    assert any(event["userId"] == "" for event in events)
    plays = build_reference(sample, START, START + timedelta(days=2))["songplays"]
    matched = sum(count for row, count in plays.items() if row[3])
    assert 0.3 < matched / sum(plays.values()) < 0.9


def write(path: Path, lines: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(line) for line in lines))


def play(ts: int, song: str, artist: str, length: float, level: str = "free", user: str = "7", item: int = 0) -> dict:
    return {"artist": artist, "auth": "Logged In", "firstName": "Ann", "gender": "F", "itemInSession": item,
            "lastName": "Lee", "length": length, "level": level, "location": "X", "method": "PUT",
            "page": "NextSong", "registration": 1.0, "sessionId": 3, "song": song, "status": 200, "ts": ts,
            "userAgent": "UA", "userId": user}


def test_reference_on_a_hand_written_dataset(tmp_path):
    base = int(START.timestamp() * 1000)
    write(tmp_path / "song_data/A/A/A/TRAAA1.json", [{
        "num_songs": 1, "artist_id": "AR1", "artist_latitude": None, "artist_longitude": None,
        "artist_location": "", "artist_name": "Band", "song_id": "SO1", "title": "Hit", "duration": 200.0,
        "year": 0}])
    write(tmp_path / "log_data/2018/11/2018-11-01-events.json", [
        play(base + 1000, "Hit", "Band", 200.3),  # matches within the tolerance
        play(base + 2000, "Hit", "Other band", 200.0, item=1),  # same title, other artist
        play(base + 3000, "Hit", "Band", 201.0, item=2, level="paid"),  # too long: another recording
        {**play(base + 4000, "", "", 0), "page": "Home", "artist": None, "song": None, "length": None,
         "level": "free", "itemInSession": 3},  # the user's latest event in range
        play(base + 86_400_000, "Hit", "Band", 200.0, level="paid", item=4),  # the next day: out of range
    ])
    reference = build_reference(tmp_path, START, START + timedelta(days=1))
    at = [START + timedelta(seconds=s) for s in (1, 2, 3)]
    assert reference["songplays"] == Counter({
        (at[0], "7", "free", "SO1", "AR1", 3, "X", "UA"): 1,
        (at[1], "7", "free", None, None, 3, "X", "UA"): 1,
        (at[2], "7", "paid", None, None, 3, "X", "UA"): 1,
    })
    assert reference["users"] == Counter({("7", "Ann", "Lee", "F", "free"): 1})
    assert reference["time"][(at[0], 0, 1, 44, 11, 2018, 4)] == 1
    assert reference["songs"] == Counter({("SO1", "Hit", "AR1", 0, 200.0): 1})
    assert reference["artists"] == Counter({("AR1", "Band", "", None, None): 1})
