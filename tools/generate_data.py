"""Write sample app data in the exact public formats, for any date range and size.

    python tools/generate_data.py --out DIR --start 2018-11-01 [--end 2018-11-03 | --days 2]
        [--events-per-day 270] [--songs 300] [--users 30] [--layout daily|hourly]
        [--files-per-hour 1] [--match-ratio 0.6] [--seed 42]

Event logs are JSON lines with the app's camelCase fields, laid out by day
(``log_data/YYYY/MM/YYYY-MM-DD-events.json``) or by hour
(``log_data/YYYY/MM/DD/HH/YYYY-MM-DD-HH-events-N.json``); song metadata is one
JSON object per file under ``song_data/A/B/C/``. The data carries the real
quirks: nulls, logged-out events with an empty ``userId``, ``\\uXXXX`` escapes
and quotes in strings, users who change level, plays that match the catalog
and plays that do not, and files without a trailing newline. The same seed
and arguments always write the same bytes. Files are streamed hour by hour,
so any size fits in memory.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import string
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HOUR_MS = 3_600_000
#: Relative activity by UTC hour: quiet nights, busy afternoons and evenings.
HOURLY_WEIGHTS = [3, 2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 9, 10, 10, 11, 11, 12, 12, 11, 10, 8, 6, 4]
NIGHT_HOURS = {2, 3, 4, 5}

FIRST_NAMES = ["Walter", "Kaylee", "Jacob", "Chloe", "Lily", "Tegan", "Aleena", "Ryan", "Zoë", "Mohammad",
               "José", "Anabelle", "Kinsley", "Rylan", "Jayden", "Matthew", "Ava", "Noël", "Sara", "Ethan"]
LAST_NAMES = ["Frye", "Summers", "Klein", "Cuevas", "Koch", "Levine", "Kirby", "Smith", "Müller", "O'Brien",
              "Núñez", "Simpson", "Perry", "Williams", "Jones", "Björk", "Hogan", "Rodriguez", "Lee", "Gonzalez"]
LOCATIONS = ["San Francisco-Oakland-Hayward, CA", "Phoenix-Mesa-Scottsdale, AZ", "Atlanta-Sandy Springs-Roswell, GA",
             "New York-Newark-Jersey City, NY-NJ-PA", "Chicago-Naperville-Elgin, IL-IN-WI",
             "Houston-The Woodlands-Sugar Land, TX", "San Juan-Carolina-Caguas, PR", "Lansing-East Lansing, MI",
             "Portland-South Portland, ME"]
USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) "
    "Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 "
    "Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
]
WORDS = ["Love", "Night", "Fire", "Blue", "Heart", "Rain", "Dream", "Road", "Summer", "Ghost", "Gold", "River",
         "Shadow", "Dance", "Light", "Stone", "Wild", "Silver", "Echo", "Paper", "Café", "Mañana", "Señor", "Déjà Vu",
         "Über", "Niño", "Smörgås"]
ARTIST_LOCATIONS = ["California - LA", "Hamburg, Germany", "New York, NY", "London, England", "Québec, Canada",
                    "São Paulo, Brazil", "Detroit, MI", "Reykjavík, Iceland", "", None]
OTHER_PAGES = ["Home", "Thumbs Up", "Thumbs Down", "Add to Playlist", "Add Friend", "Settings", "Save Settings",
               "Help", "About", "Roll Advert", "Error", "Logout", "Upgrade", "Downgrade"]
LOGGED_OUT_PAGES = ["Home", "Login", "About", "Help"]
EVENT_KEYS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level", "location",
              "method", "page", "registration", "sessionId", "song", "status", "ts", "userAgent", "userId"]


@dataclass
class Song:
    track_id: str
    song_id: str
    title: str
    artist_id: str
    artist_name: str
    artist_location: str | None
    latitude: float | None
    longitude: float | None
    duration: float
    year: int


@dataclass
class User:
    user_id: str
    first_name: str
    last_name: str
    gender: str
    location: str
    user_agent: str
    registration: float
    level: str


@dataclass
class Summary:
    events: int = 0
    next_song_events: int = 0
    song_files: int = 0
    log_files: int = 0
    files: list[str] = field(default_factory=list)


def _code(rng: random.Random, prefix: str, length: int = 16) -> str:
    return prefix + "".join(rng.choices(string.ascii_uppercase + string.digits, k=length))


def _unique_name(rng: random.Random, taken: set[str], words: int) -> str:
    name = " ".join(rng.sample(WORDS, words))
    if rng.random() < 0.1:
        name = f'The "{name}"'
    if name in taken:
        name = f"{name} {len(taken)}"  # the numbered names never collide: the count only grows
    taken.add(name)
    return name


def make_catalog(rng: random.Random, count: int) -> list[Song]:
    """Songs by a third as many artists; an artist's details are the same in all its files."""
    artists, names, titles, songs = [], set(), set(), []
    for _ in range(max(1, count // 3)):
        located = rng.random() < 0.6
        artists.append((
            _code(rng, "AR"), _unique_name(rng, names, 2), rng.choice(ARTIST_LOCATIONS),
            round(rng.uniform(-60, 70), 5) if located else None, round(rng.uniform(-150, 150), 5) if located else None,
        ))
    for _ in range(count):
        artist_id, artist_name, location, latitude, longitude = rng.choice(artists)
        track = "TR" + "".join(rng.choices("ABC", k=3)) + _code(rng, "", 13)
        year = rng.choice([0, 0, *range(1965, 2011)])  # 0: year unknown, as in the public catalog
        songs.append(Song(track, _code(rng, "SO"), _unique_name(rng, titles, 3), artist_id, artist_name, location,
                          latitude, longitude, round(rng.uniform(90, 420), 5), year))
    return songs


def make_users(rng: random.Random, count: int) -> list[User]:
    ids = rng.sample(range(2, max(200, count * 3)), count)
    return [
        User(str(user_id), rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), rng.choice("MF"), rng.choice(LOCATIONS),
             f'"{rng.choice(USER_AGENTS)}"', float(1_535_000_000_000 + rng.randrange(5_000_000) * 1000 + 796),
             rng.choice(["free", "free", "paid"]))
        for user_id in ids
    ]


def write_song_files(out: Path, songs: list[Song], summary: Summary) -> None:
    for song in songs:
        path = out / "song_data" / song.track_id[2] / song.track_id[3] / song.track_id[4] / f"{song.track_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"num_songs": 1, "artist_id": song.artist_id, "artist_latitude": song.latitude,
                  "artist_longitude": song.longitude, "artist_location": song.artist_location,
                  "artist_name": song.artist_name, "song_id": song.song_id, "title": song.title,
                  "duration": song.duration, "year": song.year}
        path.write_text(json.dumps(record))
        summary.song_files += 1


class LogFile:
    """A JSON-lines file written line by line; some files end without a newline, like the app's."""

    def __init__(self, out: Path, key: str, trailing_newline: bool) -> None:
        self.out, self.key = out, key
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        self.stream = open(out / key, "w", encoding="ascii", buffering=1 << 20)
        self.trailing_newline = trailing_newline
        self.empty = True

    def write(self, lines: list[str]) -> None:
        if lines:
            self.stream.write(("" if self.empty else "\n") + "\n".join(lines))
            self.empty = False

    def close(self) -> None:
        if self.trailing_newline and not self.empty:
            self.stream.write("\n")
        self.stream.close()


class EventMaker:
    """Sessions of events for one hour at a time, carrying users' levels across hours."""

    def __init__(self, rng: random.Random, songs: list[Song], users: list[User], match_ratio: float) -> None:
        self.rng, self.songs, self.users, self.match_ratio = rng, songs, users, match_ratio
        self.next_session = 1
        strangers = make_catalog(random.Random(rng.random()), max(10, len(songs) // 4))
        self.unknown = [(s.title + " (Live)", s.artist_name + " & Friends", s.duration) for s in strangers]

    def _play(self) -> tuple[str, str, float]:
        rng, roll = self.rng, self.rng.random()
        if roll < self.match_ratio:
            song = rng.choice(self.songs)
            return song.title, song.artist_name, song.duration
        song, other = rng.choice(self.songs), rng.choice(self.songs)
        if roll < self.match_ratio + (1 - self.match_ratio) / 3 and other.artist_name != song.artist_name:
            return song.title, other.artist_name, song.duration  # a known title by someone else
        if roll < self.match_ratio + 2 * (1 - self.match_ratio) / 3:
            return song.title, song.artist_name, round(song.duration + rng.uniform(2, 30), 5)  # another recording
        return rng.choice(self.unknown)

    def hour(self, start_ms: int, count: int) -> list[dict]:
        rng, events = self.rng, []
        while len(events) < count:
            length = min(count - len(events), rng.randint(1, 25))
            logged_in = rng.random() > 0.06
            user = rng.choice(self.users) if logged_in else None
            session, self.next_session = self.next_session, self.next_session + 1
            offset = rng.randrange(0, HOUR_MS - length * 1000)
            step = max(1000, (HOUR_MS - offset) // (length + 1))
            for item in range(length):
                offset += rng.randint(1, step)
                events.append(self._event(start_ms + min(offset, HOUR_MS - 1), session, item, user))
        events.sort(key=lambda e: e["ts"])
        # One event per millisecond: a user's latest event is then never a tie.
        for earlier, later in zip(events, events[1:], strict=False):
            if later["ts"] <= earlier["ts"]:
                later["ts"] = earlier["ts"] + 1
        return [e for e in events if e["ts"] < start_ms + HOUR_MS]

    def _event(self, ts: int, session: int, item: int, user: User | None) -> dict:
        rng = self.rng
        if user is None:
            page = rng.choice(LOGGED_OUT_PAGES)
            return _event_record(
                auth="Logged Out", itemInSession=item, level="free", method="PUT" if page == "Login" else "GET",
                page=page, sessionId=session, status=307 if page == "Login" else 200, ts=ts, userId="",
            )
        page, artist, song, length = "NextSong", None, None, None
        if rng.random() < 0.8:
            song, artist, length = self._play()
        else:
            page = rng.choice(OTHER_PAGES)
            if page in ("Upgrade", "Downgrade") and rng.random() < 0.5:
                page = f"Submit {page}"
                user.level = "paid" if page == "Submit Upgrade" else "free"
        return _event_record(
            artist=artist, auth="Logged In", firstName=user.first_name, gender=user.gender, itemInSession=item,
            lastName=user.last_name, length=length, level=user.level, location=user.location,
            method="PUT" if page == "NextSong" else "GET", page=page, registration=user.registration,
            sessionId=session, song=song, status=404 if page == "Error" else 200, ts=ts,
            userAgent=user.user_agent, userId=user.user_id,
        )


def _event_record(**fields: object) -> dict:
    """An event with every key, in the app's order; fields not given are null."""
    return {key: fields.get(key) for key in EVENT_KEYS}


def _line(event: dict) -> str:
    """One event as the app writes it: compact, ASCII with \\u escapes, slashes escaped."""
    return json.dumps(event, separators=(",", ":")).replace("/", "\\/")


def generate(out_dir: str | Path, start: datetime | date, end: datetime | date, *, events_per_day: int = 270,
             songs: int = 300, users: int = 30, layout: str = "daily", files_per_hour: int = 1, seed: int = 42,
             match_ratio: float = 0.6) -> Summary:
    """Write the catalog and the events of every hour in [start, end) under out_dir."""
    if layout not in ("daily", "hourly"):
        raise ValueError("layout is 'daily' or 'hourly'")
    out, rng, summary = Path(out_dir), random.Random(seed), Summary()
    catalog = make_catalog(rng, songs)
    write_song_files(out, catalog, summary)
    maker = EventMaker(rng, catalog, make_users(rng, users), match_ratio)
    scale = events_per_day / sum(HOURLY_WEIGHTS)
    hour = _utc(start)
    daily: LogFile | None = None
    opened = itertools.count()
    while hour < _utc(end):
        count = round(HOURLY_WEIGHTS[hour.hour] * scale * rng.uniform(0.6, 1.4))
        if hour.hour in NIGHT_HOURS and rng.random() < 0.3:
            count = 0  # a silent hour is normal at night
        lines = [_line(event) for event in maker.hour(int(hour.timestamp() * 1000), count)]
        summary.events += len(lines)
        summary.next_song_events += sum('"page":"NextSong"' in line for line in lines)
        if layout == "daily":
            if daily is None:
                daily = _open_log(out, f"log_data/{hour:%Y/%m/%Y-%m-%d}-events.json", next(opened))
            daily.write(lines)
            if hour.hour == 23:
                _close_log(daily, summary)
                daily = None
        else:
            for part in range(files_per_hour):
                log = _open_log(out, f"log_data/{hour:%Y/%m/%d/%H}/{hour:%Y-%m-%d-%H}-events-{part}.json", next(opened))
                log.write(lines[part::files_per_hour])
                _close_log(log, summary)
        hour += timedelta(hours=1)
    _close_log(daily, summary)
    return summary


def _open_log(out: Path, key: str, number: int) -> LogFile:
    """Every other file the app writes lacks the final newline."""
    return LogFile(out, key, trailing_newline=number % 2 == 0)


def _close_log(log: LogFile | None, summary: Summary) -> None:
    if log is None:
        return
    log.close()
    if log.empty:  # a day or hour without events gets no file
        (log.out / log.key).unlink()
    else:
        summary.log_files += 1
        summary.files.append(log.key)


def _utc(moment: datetime | date) -> datetime:
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--start", required=True, type=datetime.fromisoformat, help="first day or hour (UTC)")
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--end", type=datetime.fromisoformat, help="end, excluded (UTC)")
    span.add_argument("--days", type=int, default=1, help="number of days (default 1)")
    parser.add_argument("--events-per-day", type=int, default=270)
    parser.add_argument("--songs", type=int, default=300)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--layout", choices=["daily", "hourly"], default="daily")
    parser.add_argument("--files-per-hour", type=int, default=1)
    parser.add_argument("--match-ratio", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    end = args.end or args.start + timedelta(days=args.days)
    summary = generate(args.out, args.start, end, events_per_day=args.events_per_day, songs=args.songs,
                       users=args.users, layout=args.layout, files_per_hour=args.files_per_hour, seed=args.seed,
                       match_ratio=args.match_ratio)
    print(f"wrote {summary.events:,} events ({summary.next_song_events:,} plays) in {summary.log_files} log files "
          f"and {summary.song_files:,} song files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
