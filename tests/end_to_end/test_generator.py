"""The sample-data generator writes the public formats with their quirks; the reference follows DESIGN's rules."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.reference import DURATION_TOLERANCE, build_reference
from tools.generate_data import generate, main

START = datetime(2018, 11, 1, tzinfo=timezone.utc)
END = START + timedelta(days=2)
EVENT_KEYS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level", "location",
              "method", "page", "registration", "sessionId", "song", "status", "ts", "userAgent", "userId"]
SONG_KEYS = ["num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name",
             "song_id", "title", "duration", "year"]
HOURLY_PATH = re.compile(r"log_data/(\d{4})/(\d{2})/(\d{2})/(\d{2})/\1-\2-\3-\4-events-(\d+)\.json")
USER_DETAILS = ["firstName", "lastName", "gender", "location", "userAgent", "registration"]


def files(root: Path, folder: str = "") -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted((root / folder).rglob("*.json"))}


def events_by_file(root: Path) -> dict[str, list[dict]]:
    return {key: [json.loads(line) for line in data.decode("ascii").splitlines()]
            for key, data in files(root, "log_data").items()}


def all_events(root: Path) -> list[dict]:
    return sorted((event for events in events_by_file(root).values() for event in events), key=lambda e: e["ts"])


def catalog(root: Path) -> list[dict]:
    return [json.loads(data) for data in files(root, "song_data").values()]


def utc(ts: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ts)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """Two days at the default size and seed: what the quirks must show up in."""
    root = tmp_path_factory.mktemp("sample")
    generate(root, START, END)
    return root


def test_event_lines_are_byte_for_byte_the_apps_format(sample):
    for key, data in files(sample, "log_data").items():
        for line in data.decode("ascii").splitlines():
            event = json.loads(line)
            assert list(event) == EVENT_KEYS, key
            assert line == json.dumps(event, separators=(",", ":")).replace("/", "\\/")


def test_event_values_have_the_apps_types(sample):
    for event in all_events(sample):
        assert event["auth"] in ("Logged In", "Logged Out")
        assert event["level"] in ("free", "paid") and event["method"] in ("GET", "PUT")
        assert isinstance(event["page"], str) and event["status"] in (200, 307, 404)
        for key in ("itemInSession", "sessionId", "status", "ts"):
            assert type(event[key]) is int, key
        assert isinstance(event["userId"], str)
        if event["auth"] == "Logged Out":
            assert event["userId"] == "" and event["page"] != "NextSong"
            assert all(event[key] is None for key in USER_DETAILS)
        else:
            assert event["userId"].isdigit() and event["gender"] in ("F", "M")
            assert type(event["registration"]) is float and event["registration"] < event["ts"]
            assert all(isinstance(event[key], str) for key in ("firstName", "lastName", "location", "userAgent"))
        if event["page"] == "NextSong":
            assert isinstance(event["artist"], str) and isinstance(event["song"], str)
            assert type(event["length"]) is float and event["length"] > 0
            assert (event["method"], event["status"]) == ("PUT", 200)
        else:
            assert event["artist"] is None and event["song"] is None and event["length"] is None


def test_events_are_ordered_unique_in_time_and_consistent_per_user_and_session(sample):
    for key, events in events_by_file(sample).items():
        stamps = [event["ts"] for event in events]
        assert stamps == sorted(stamps), key
        assert {f"{utc(ts):%Y-%m-%d}" for ts in stamps} == {key.split("/")[-1][:10]}
    events = all_events(sample)
    assert all(START <= utc(event["ts"]) < END for event in events)
    plays = [(event["userId"], event["ts"]) for event in events if event["userId"]]
    assert len(plays) == len(set(plays)), "a user has two events at the same ts"
    details, items = defaultdict(set), defaultdict(list)
    for event in events:
        if event["userId"]:
            details[event["userId"]].add(tuple(event[key] for key in USER_DETAILS))
        items[event["sessionId"]].append(event["itemInSession"])
    assert all(len(seen) == 1 for seen in details.values()), "a user's details changed"
    assert all(numbers == sorted(set(numbers)) for numbers in items.values()), "itemInSession does not increase"


def test_song_files_are_the_catalogs_format_and_layout(sample):
    songs = files(sample, "song_data")
    assert len(songs) == 300
    for key, data in songs.items():
        text = data.decode("ascii")
        record = json.loads(text)
        assert list(record) == SONG_KEYS
        assert text == json.dumps(record)  # ", " and ": " separators, \u escapes, no newline
        track = Path(key).stem
        assert re.fullmatch(r"TR[A-Z0-9]{16}", track)
        assert key == f"song_data/{track[2]}/{track[3]}/{track[4]}/{track}.json"
        assert re.fullmatch(r"AR[A-Z0-9]{16}", record["artist_id"])
        assert re.fullmatch(r"SO[A-Z0-9]{16}", record["song_id"])
        assert record["num_songs"] == 1 and type(record["duration"]) is float and type(record["year"]) is int


def test_the_catalog_is_consistent_and_varied(sample):
    songs = catalog(sample)
    artists = defaultdict(set)
    for song in songs:
        artists[song["artist_id"]].add(tuple(song[key] for key in SONG_KEYS[2:6]))
    assert all(len(details) == 1 for details in artists.values()), "an artist's details differ between songs"
    assert len({(song["title"], song["artist_name"]) for song in songs}) == len(songs)
    assert len({song["song_id"] for song in songs}) == len(songs)
    assert max(Counter(song["artist_id"] for song in songs).values()) > 1
    assert {0} < {song["year"] for song in songs}
    assert {None, ""} < {song["artist_location"] for song in songs}
    assert None in {song["artist_latitude"] for song in songs}
    assert any(isinstance(song["artist_latitude"], float) for song in songs)


def test_daily_layout_one_file_per_day(sample):
    assert list(files(sample, "log_data")) == [
        "log_data/2018/11/2018-11-01-events.json", "log_data/2018/11/2018-11-02-events.json",
    ]


def test_hourly_layout_splits_each_hour_over_its_files(sample, tmp_path):
    summary = generate(tmp_path, START, END, layout="hourly", files_per_hour=3)
    hourly = events_by_file(tmp_path)
    assert summary["log_files"] == len(hourly)
    parts = set()
    for key, events in hourly.items():
        year, month, day, hour, part = HOURLY_PATH.fullmatch(key).groups()
        parts.add(int(part))
        assert events, f"{key} is empty"
        assert {f"{utc(event['ts']):%Y %m %d %H}" for event in events} == {f"{year} {month} {day} {hour}"}
    assert parts == {0, 1, 2}
    assert len({key.rsplit("-", 1)[0] for key in hourly}) < 48, "expected some quiet night hours without files"
    # The layout only changes where the events go.
    assert all_events(tmp_path) == all_events(sample)


def test_same_seed_same_bytes_other_seed_other_data(sample, tmp_path):
    generate(tmp_path / "again", START, END)
    generate(tmp_path / "other", START, END, seed=43)
    assert files(tmp_path / "again") == files(sample)
    assert files(tmp_path / "other", "log_data") != files(sample, "log_data")
    assert files(tmp_path / "other", "song_data") != files(sample, "song_data")


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "zstd"])
def test_compressed_files_hold_the_same_bytes_and_are_deterministic(sample, tmp_path, codec):
    import bz2
    import gzip

    import zstandard

    decompress = {"gzip": gzip.decompress, "bzip2": bz2.decompress,
                  "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data)}[codec]
    extension = {"gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst"}[codec]
    for name in ("one", "two"):
        generate(tmp_path / name, START, END, compress=codec)
    written = {path.relative_to(tmp_path / "one").as_posix(): path.read_bytes()
               for path in sorted((tmp_path / "one").rglob("*")) if path.is_file()}
    assert written == {path.relative_to(tmp_path / "two").as_posix(): path.read_bytes()
                       for path in sorted((tmp_path / "two").rglob("*")) if path.is_file()}
    assert {name.removesuffix(extension): decompress(data) for name, data in written.items()} == files(sample)


def test_a_longer_range_keeps_the_earlier_days(sample, tmp_path):
    generate(tmp_path, START, START + timedelta(days=1))
    first_day = {key: data for key, data in files(sample, "log_data").items() if key.endswith("-01-events.json")}
    assert files(tmp_path, "log_data") == first_day


def test_summary_counts_what_was_written(tmp_path):
    summary = generate(tmp_path, START, END, songs=50)
    events = all_events(tmp_path)
    assert summary == {"events": len(events), "next_song_events": sum(e["page"] == "NextSong" for e in events),
                       "song_files": 50, "log_files": 2}
    assert 300 < len(events) < 800  # about 270 a day


def test_nulls_empty_user_ids_escapes_and_quotes_are_there(sample):
    raw = b"".join(files(sample, "log_data").values())
    assert b":null," in raw and b'"userId":""' in raw
    assert b'"userAgent":"\\"Mozilla\\/5.0' in raw
    assert b"Beyonc\\u00e9" in raw and re.search(rb'"song":"[^"]*\\u00', raw)
    assert re.search(rb'"song":"[^"]*\\"', raw), "no title with an embedded quote was played"
    assert b"\\u00" in b"".join(files(sample, "song_data").values())


def test_some_log_files_lack_the_final_newline(sample, tmp_path):
    generate(tmp_path, START, END, layout="hourly", files_per_hour=2)
    ends = Counter(data[-1:] for data in [*files(sample, "log_data").values(), *files(tmp_path, "log_data").values()])
    assert set(ends) == {b"\n", b"}"} and ends[b"}"] >= ends[b"\n"] / 2


def test_users_upgrade_and_downgrade(sample):
    changes = set()
    level: dict[str, str] = {}
    for event in all_events(sample):
        user = event["userId"]
        if user and level.setdefault(user, event["level"]) != event["level"]:
            changes.add((level[user], event["level"]))
            level[user] = event["level"]
    assert changes == {("free", "paid"), ("paid", "free")}


def test_plays_match_the_catalog_in_proportion_and_miss_in_every_way(sample):
    songs = catalog(sample)
    exact = {(song["title"], song["artist_name"], song["duration"]) for song in songs}
    titles = {song["title"]: song for song in songs}
    kinds = Counter()
    for event in all_events(sample):
        if event["page"] != "NextSong":
            continue
        known = titles.get(event["song"])
        if (event["song"], event["artist"], event["length"]) in exact:
            kinds["match"] += 1
        elif known is None:
            kinds["unknown song"] += 1
            assert event["artist"] not in {song["artist_name"] for song in songs}
        elif known["artist_name"] != event["artist"]:
            kinds["known title, other artist"] += 1
        else:
            assert abs(known["duration"] - event["length"]) > DURATION_TOLERANCE
            kinds["known song, other length"] += 1
    assert len(kinds) == 4, kinds
    assert 0.5 < kinds["match"] / kinds.total() < 0.7
    reference = build_reference(sample, START, END)["songplays"]
    assert sum(count for row, count in reference.items() if row[3]) == kinds["match"]


def test_events_follow_the_day(tmp_path):
    generate(tmp_path, START, START + timedelta(days=3), events_per_day=20_000)
    hours = Counter(utc(event["ts"]).hour for event in all_events(tmp_path))
    assert sum(hours[h] for h in range(19, 24)) > 3 * sum(hours[h] for h in range(6, 11))


def test_command_line(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--start", "2018-11-01T05:00", "--end", "2018-11-01T07:00:00+00:00",
                 "--layout", "hourly", "--songs", "20", "--events-per-day", "5000", "--seed", "3"]) == 0
    assert "events" in capsys.readouterr().out
    assert {HOURLY_PATH.fullmatch(key).group(4) for key in files(tmp_path, "log_data")} == {"05", "06"}
    assert len(files(tmp_path, "song_data")) == 20
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--start", "2018-11-02", "--end", "2018-11-01"])


def test_a_range_without_time_writes_only_the_catalog(tmp_path):
    assert generate(tmp_path, START, START, songs=10) == {"events": 0, "next_song_events": 0, "song_files": 10,
                                                          "log_files": 0}
    assert not (tmp_path / "log_data").exists()


# The reference, on data written by hand.

def song_file(song_id: str, title: str, artist_id: str, artist: str, duration: float, location: str | None = "",
              latitude: float | None = None) -> dict:
    return {"num_songs": 1, "artist_id": artist_id, "artist_latitude": latitude, "artist_longitude": latitude,
            "artist_location": location, "artist_name": artist, "song_id": song_id, "title": title,
            "duration": duration, "year": 0}


def event(ts: int, page: str = "NextSong", song: str | None = None, artist: str | None = None,
          length: float | None = None, user: str = "7", level: str = "free", item: int = 0) -> dict:
    first, last, gender = {"7": ("Zo\u00eb", "Lee", "F"), "9": ("Bob", "Ng", "M"), "": (None, None, None)}[user]
    return {"artist": artist, "auth": "Logged In" if user else "Logged Out", "firstName": first, "gender": gender,
            "itemInSession": item, "lastName": last, "length": length, "level": level,
            "location": "Lake Placid, NY" if user else None, "method": "PUT", "page": page,
            "registration": 1540919166796.0 if user else None, "sessionId": int(user or 0) * 10, "song": song,
            "status": 200, "ts": ts, "userAgent": '"Mozilla/5.0"' if user else None, "userId": user}


def write_lines(path: Path, records: list[dict], separators: tuple[str, str] = (",", ":")) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(record, separators=separators) for record in records))  # no final newline


def test_reference_on_a_hand_written_dataset(tmp_path):
    t0 = int(START.timestamp() * 1000) + 5 * 3_600_000 + 30_796  # 05:00:30.796
    for track, song in [
        ("TRAAAAA", song_file("SOHALO2", "Halo", "ARBEY", "Beyonc\u00e9", 261.0, "Houston, TX", 29.76)),
        ("TRAABBB", song_file("SOHALO1", "Halo", "ARBEY", "Beyonc\u00e9", 261.3, "Houston, TX", 29.76)),
        ("TRAACCC", song_file("SOGOULD", "Halo", "ARGOULD", "Ellie Goulding", 200.0)),
    ]:
        write_lines(tmp_path / "song_data" / track[2] / track[3] / track[4] / f"{track}.json", [song], (", ", ": "))
    write_lines(tmp_path / "log_data/2018/11/2018-11-01-events.json", [
        event(t0, song="Halo", artist="Beyonc\u00e9", length=261.2),  # both Halos within 0.5 s: smallest id
        event(t0 + 1000, song="Halo", artist="Ellie Goulding", length=200.0, item=1),  # same title, other artist
        event(t0 + 2000, song="Halo", artist="Ellie Goulding", length=200.6, item=2),  # 0.6 s off: no match
        event(t0 + 3000, song="Halo", artist="Nobody", length=261.0, item=3),  # known title, unknown artist
        event(t0 + 4000, page="Submit Upgrade", item=4),
        event(t0 + 5000, song="Unknown", artist="Nobody", length=100.0, level="paid", item=5),
        event(t0 + 5000, song="Halo", artist="Ellie Goulding", length=199.9, user="9"),  # same instant, other user
        event(t0 + 5000, page="Home", user="9", level="paid", item=1),  # same ts: the later item is the latest
        event(t0 + 6000, page="Home", user=""),  # logged out: neither a user nor a play
    ])
    write_lines(tmp_path / "log_data/2018/11/02/00/2018-11-02-00-events-0.json", [
        event(int(START.timestamp() * 1000) - 1, song="Halo", artist="Beyonc\u00e9", length=261.0, item=6),  # before
        event(int(START.timestamp() * 1000) + 86_400_000, song="Halo", artist="Beyonc\u00e9", length=261.0, item=7),
    ])

    reference = build_reference(tmp_path, START, START + timedelta(days=1))

    at = [START + timedelta(hours=5, seconds=30 + s, milliseconds=796) for s in range(6)]
    agent, where = '"Mozilla/5.0"', "Lake Placid, NY"
    assert reference["songplays"] == Counter({
        (at[0], "7", "free", "SOHALO1", "ARBEY", 70, where, agent): 1,
        (at[1], "7", "free", "SOGOULD", "ARGOULD", 70, where, agent): 1,
        (at[2], "7", "free", None, None, 70, where, agent): 1,
        (at[3], "7", "free", None, None, 70, where, agent): 1,
        (at[5], "7", "paid", None, None, 70, where, agent): 1,
        (at[5], "9", "free", "SOGOULD", "ARGOULD", 90, where, agent): 1,
    })
    assert reference["users"] == Counter({("7", "Zo\u00eb", "Lee", "F", "paid"): 1, ("9", "Bob", "Ng", "M", "paid"): 1})
    # 2018-11-01 was a Thursday (DOW 4) in ISO week 44.
    assert reference["time"] == Counter({(moment, 5, 1, 44, 11, 2018, 4): 1 for moment in (*at[:4], at[5])})
    assert reference["songs"] == Counter({
        ("SOHALO1", "Halo", "ARBEY", 0, 261.3): 1, ("SOHALO2", "Halo", "ARBEY", 0, 261.0): 1,
        ("SOGOULD", "Halo", "ARGOULD", 0, 200.0): 1,
    })
    assert reference["artists"] == Counter({
        ("ARBEY", "Beyonc\u00e9", "Houston, TX", 29.76, 29.76): 1, ("ARGOULD", "Ellie Goulding", "", None, None): 1,
    })


def test_reference_refuses_an_artist_whose_songs_disagree(tmp_path):
    for track, location in (("TRAAAAA", "Houston, TX"), ("TRAAAAB", "Austin, TX")):
        record = {**song_file(f"SO{track}", track, "ARBEY", "Beyonc\u00e9", 261.0), "artist_location": location}
        write_lines(tmp_path / "song_data/A/A/A" / f"{track}.json", [record], (", ", ": "))
    with pytest.raises(ValueError, match="ARBEY"):
        build_reference(tmp_path, START, START + timedelta(days=1))
