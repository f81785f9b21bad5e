"""Seeded sample data in the exact formats of the public Sparkify data set.

    python tools/generate_data.py --out DIR --start 2018-11-01 --end 2018-11-03 [--events-per-day 270]
        [--songs 300] [--users 30] [--layout daily|hourly] [--files-per-hour 1] [--seed 42] [--match-ratio 0.6]
        [--compress gzip|bzip2|zstd]

``--start`` is included and ``--end`` excluded; both are dates or ISO
datetimes, read as UTC when they carry no offset.

The app's events are JSON lines (compact, ASCII with ``\\uXXXX`` escapes,
slashes written ``\\/``), laid out by day
(``log_data/YYYY/MM/YYYY-MM-DD-events.json``) or by hour
(``log_data/YYYY/MM/DD/HH/YYYY-MM-DD-HH-events-N.json``, an hour's events dealt
round-robin over ``--files-per-hour`` files); a day or hour without events has
no file. The catalog is one JSON object per song under
``song_data/A/B/C/TRABC….json``. ``--compress`` writes every file compressed
instead, named as Redshift COPY reads them (``….json.gz``, ``.bz2``, ``.zst``).

The data carries the quirks the pipeline must survive: nulls, logged-out
events with an empty ``userId``, escaped unicode and embedded quotes, users who
upgrade and downgrade, plays that match the catalog exactly (about
``--match-ratio`` of them) and plays that do not (unknown songs, a known title
by another artist, a known song with another length), and every other log
file without a final newline.

Guarantees tests rely on: the same seed and arguments write the same bytes;
every event has its own ``ts`` (so no user has two events at one instant);
the events before any instant do not depend on ``--end``; an artist's details
are the same in all its songs; titles are unique, so a (title, artist) pair
names at most one song. Events are produced in time order by a simulation of
overlapping listening sessions and streamed to their files, so memory does not
grow with the size of a file.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import heapq
import itertools
import json
import math
import os
import random
import shutil
import string
import sys
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

#: --compress: the extension of each compression, as Redshift COPY (and the pipeline) reads it.
COMPRESSED_EXTENSIONS = {"gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst"}

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

#: Relative number of sessions starting in each UTC hour: the listeners are in
#: the Americas, so the evening peak is around 20-24 UTC and the night trough
#: around 07-10 UTC, when an hour is often empty at the default volume.
HOURLY_WEIGHTS = [9, 8, 7, 5, 4, 3, 2, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 10, 10, 10, 10]
#: A logged-in session has 1 + floor(Exponential(mean 12)) events, a visitor's 1 to 3.
SESSION_MEAN, VISITOR_SHARE, LOGOUT_SHARE = 12, 0.15, 0.3
#: Events in an average session, which turns --events-per-day into a rate of session starts.
MEAN_SESSION_EVENTS = (1 - VISITOR_SHARE) * (1 + 1 / math.expm1(1 / SESSION_MEAN)) + VISITOR_SHARE * 2
#: Sessions are simulated from this long before the start and their earlier events
#: dropped, so the first hour has sessions in progress like any other.
WARM_UP_MS = 3 * HOUR_MS

# One event line, keys in the app's order. Values are JSON-encoded beforehand
# (see _json), except the ints and the level, which need no escaping.
EVENT_LINE = (
    '{"artist":%s,"auth":%s,"firstName":%s,"gender":%s,"itemInSession":%d,"lastName":%s,"length":%s,'
    '"level":"%s","location":%s,"method":%s,"page":%s,"registration":%s,"sessionId":%d,"song":%s,'
    '"status":%d,"ts":%d,"userAgent":%s,"userId":%s}\n'
)

FEMALE_NAMES = ["Kaylee", "Chloe", "Lily", "Tegan", "Aleena", "Zoë", "Anabelle", "Kinsley", "Ava", "Sara", "Renée",
                "Jordyn", "Layla", "Chloé", "Stefany", "Ruby"]
MALE_NAMES = ["Walter", "Jacob", "Ryan", "Mohammad", "José", "Rylan", "Jayden", "Matthew", "Noël", "Ethan", "Theo",
              "Lucas", "Cienna", "Wyatt", "Jahiem", "Émile"]
LAST_NAMES = ["Frye", "Summers", "Klein", "Cuevas", "Koch", "Levine", "Kirby", "Smith", "Müller", "O'Brien", "Núñez",
              "Simpson", "Perry", "Williams", "Jones", "Hogan", "Rodriguez", "Lee", "Gonzalez", "Harrell", "Larson"]
USER_LOCATIONS = [
    "San Francisco-Oakland-Hayward, CA", "Phoenix-Mesa-Scottsdale, AZ", "Atlanta-Sandy Springs-Roswell, GA",
    "New York-Newark-Jersey City, NY-NJ-PA", "Chicago-Naperville-Elgin, IL-IN-WI", "San Juan-Carolina-Caguas, PR",
    "Houston-The Woodlands-Sugar Land, TX", "Lansing-East Lansing, MI", "Portland-South Portland, ME",
    "Tampa-St. Petersburg-Clearwater, FL", "Waterloo-Cedar Falls, IA", "Janesville-Beloit, WI",
]
USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) "
    "Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 "
    "Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
]

# Real artists first: they are the most played, so their accents and quotes
# reach the event logs even in a small sample. Location "" and None, and
# missing coordinates, are all in the public catalog.
FEATURED_ARTISTS = [
    ("Beyoncé", "Houston, TX", 29.76078, -95.36952, ["Halo", "Déjà Vu"]),
    ("Björk", "Reykjavík, Iceland", 64.13548, -21.89541, ["Jóga", "Hyperballad"]),
    ("Dwight Yoakam", "Pikeville, KY", 37.47934, -82.51849, ["You're The One"]),
    ("David Bowie", "", None, None, ['"Heroes"', "Life On Mars?"]),
    ("Sigur Rós", "Reykjavík, Iceland", None, None, ["Hoppípolla"]),
    ("Mötley Crüe", None, None, None, ["Kickstart My Heart"]),
    ("Kings Of Leon", "Nashville, TN", 36.16778, -86.77836, ["Use Somebody", "Sex on Fire"]),
]
ARTIST_WORDS = ["Black", "Silver", "Electric", "Velvet", "Crimson", "Golden", "Lonely", "Midnight", "Neon", "Wild",
                "Crystal", "Broken", "Señor", "Über", "Château", "Arctic", "Paper", "Royal", "Sonic", "Quiet"]
ARTIST_NOUNS = ["Keys", "Wolves", "Horses", "Tigers", "Engines", "Saints", "Rivers", "Ghosts", "Kings", "Machines",
                "Niños", "Cafés", "Brüder", "Fjörds", "Lights", "Sisters", "Monkeys", "Pilots", "Hearts", "Strangers"]
TITLE_WORDS = ["Love", "Night", "Fire", "Blue", "Heart", "Rain", "Dream", "Road", "Summer", "Ghost", "Gold", "River",
               "Shadow", "Dance", "Light", "Stone", "Wild", "Echo", "Paper", "Café", "Mañana", "Corazón", "Über",
               "Niño", "Smörgåsbord", "Home", "Again", "Tonight", "Forever", "Radio", "Money", "Angel", "Crazy"]
ARTIST_LOCATIONS = ["California - LA", "Hamburg, Germany", "New York, NY", "London, England", "Québec, Canada",
                    "São Paulo, Brazil", "Detroit, MI", "Montréal, Québec", "Austin, TX", "", None]


def _json(value: object) -> str:
    """A value exactly as the app writes it: json.dumps (ASCII, \\u escapes) with "/" escaped."""
    return json.dumps(value).replace("/", "\\/")


def _page(name: str, method: str, status: int) -> tuple[str, str, str, int]:
    """A page as (name, method, page, status), the method and page JSON-encoded once."""
    return name, _json(method), _json(name), status


# Pages of logged-in users with their relative frequency for free and paid
# users (roughly the public data's); Submit Upgrade/Downgrade change the level
# from the user's next event on.
LOGGED_IN_PAGES = [
    (_page("NextSong", "PUT", 200), 78, 82),
    (_page("Home", "GET", 200), 4.5, 3.5),
    (_page("Thumbs Up", "PUT", 307), 4, 5),
    (_page("Add to Playlist", "PUT", 200), 2, 3),
    (_page("Add Friend", "PUT", 307), 1.5, 1.5),
    (_page("Roll Advert", "GET", 200), 4, 0),
    (_page("Thumbs Down", "PUT", 307), 1, 1),
    (_page("Settings", "GET", 200), 0.6, 0.6),
    (_page("Help", "GET", 200), 0.5, 0.5),
    (_page("About", "GET", 200), 0.3, 0.3),
    (_page("Save Settings", "PUT", 307), 0.1, 0.1),
    (_page("Error", "GET", 404), 0.1, 0.1),
    (_page("Upgrade", "GET", 200), 1, 0),
    (_page("Downgrade", "GET", 200), 0, 1),
    (_page("Submit Upgrade", "PUT", 307), 1.2, 0),
    (_page("Submit Downgrade", "PUT", 307), 0, 2),
]
VISITOR_PAGES = [_page("Home", "GET", 200), _page("About", "GET", 200), _page("Help", "GET", 200)]
LOGIN = _page("Login", "PUT", 307)
LOGOUT = _page("Logout", "PUT", 307)
LEVEL_AFTER = {"Submit Upgrade": "paid", "Submit Downgrade": "free"}


class Weighted:
    """Draws from a fixed list by weight with one random number and a bisection (faster than random.choices)."""

    def __init__(self, items: Sequence, weights: list[float]) -> None:
        self.items, self.last = items, len(items) - 1
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random):
        return self.items[bisect(self.cumulative, rng.random() * self.total, 0, self.last)]


def _popularity(count: int) -> list[float]:
    """Zipf weights: a few songs (and users) account for most plays, as in any streaming service."""
    return [1 / rank for rank in range(1, count + 1)]


@dataclass(frozen=True, slots=True)
class Artist:
    artist_id: str
    name: str
    location: str | None
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True, slots=True)
class Song:
    track_id: str
    song_id: str
    title: str
    artist: Artist
    duration: float
    year: int

    def record(self) -> dict:
        """The song file's object, keys in the public catalog's order."""
        return {"num_songs": 1, "artist_id": self.artist.artist_id, "artist_latitude": self.artist.latitude,
                "artist_longitude": self.artist.longitude, "artist_location": self.artist.location,
                "artist_name": self.artist.name, "song_id": self.song_id, "title": self.title,
                "duration": self.duration, "year": self.year}


class User:
    """A listener. The fields every event repeats are encoded once: encoding is the generator's main cost."""

    def __init__(self, user_id: str, first_name: str | None, last_name: str | None, gender: str | None,
                 location: str | None, user_agent: str | None, registration: float | None, level: str) -> None:
        self.level = level
        self.first_name, self.last_name, self.gender, self.location = map(
            _json, (first_name, last_name, gender, location))
        self.user_agent, self.registration, self.user_id = map(_json, (user_agent, registration, user_id))


#: Whoever is not logged in: every identifying field null, userId "".
VISITOR = User("", None, None, None, None, None, None, "free")
LOGGED_OUT, LOGGED_IN = _json("Logged Out"), _json("Logged In")


class Names:
    """Unique names: a repeat gets a number (the word lists hold no digits, so numbered names never collide)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def claim(self, name: str) -> str:
        count = self.seen.get(name, 0)
        self.seen[name] = count + 1
        return name if count == 0 else f"{name} {count + 1}"


def _code(rng: random.Random, prefix: str, length: int, taken: set[str]) -> str:
    """An id like the catalog's (``AR`` + 16 upper-case letters or digits), never handed out twice."""
    while True:
        code = prefix + "".join(rng.choices(string.ascii_uppercase + string.digits, k=length))
        if code not in taken:
            taken.add(code)
            return code


def _title(rng: random.Random) -> str:
    words = rng.sample(TITLE_WORDS, rng.randint(1, 3))
    if len(words) > 1 and rng.random() < 0.1:
        words[-1] = f'"{words[-1]}"'  # titles like Say "Yes": quotes inside a JSON string
    return " ".join(words)


def _artist_name(rng: random.Random) -> str:
    name = f"{rng.choice(ARTIST_WORDS)} {rng.choice(ARTIST_NOUNS)}"
    return f"The {name}" if rng.random() < 0.4 else name


def make_catalog(rng: random.Random, count: int, titles: Names, artist_names: Names,
                 featured: list[tuple] = FEATURED_ARTISTS) -> list[Song]:
    """``count`` songs, the featured artists' first, then made-up artists with one to five songs each."""
    ids: set[str] = set()

    def song(title: str, artist: Artist) -> Song:
        track = _code(rng, "TR" + "".join(rng.choices("ABC", k=3)), 13, ids)  # its folders: song_data/A/B/C/
        year = 0 if rng.random() < 0.25 else rng.randint(1960, 2018)  # 0: year unknown, as in the public catalog
        return Song(track, _code(rng, "SO", 16, ids), titles.claim(title), artist, round(rng.uniform(120, 420), 5),
                    year)

    songs: list[Song] = []
    for name, location, latitude, longitude, featured_titles in featured:
        artist = Artist(_code(rng, "AR", 16, ids), artist_names.claim(name), location, latitude, longitude)
        songs.extend(song(title, artist) for title in featured_titles)
    del songs[count:]
    while len(songs) < count:
        located = rng.random() < 0.6
        artist = Artist(_code(rng, "AR", 16, ids), artist_names.claim(_artist_name(rng)), rng.choice(ARTIST_LOCATIONS),
                        round(rng.uniform(-45, 65), 5) if located else None,
                        round(rng.uniform(-125, 30), 5) if located else None)
        songs.extend(song(_title(rng), artist) for _ in range(min(rng.randint(1, 5), count - len(songs))))
    return songs


def make_users(rng: random.Random, count: int, start_ms: int) -> list[User]:
    """Listeners with stable details; about a third pay at first."""
    users = []
    for user_id in rng.sample(range(2, max(100, 4 * count)), count):
        gender = rng.choice("FM")
        users.append(User(
            str(user_id), rng.choice(FEMALE_NAMES if gender == "F" else MALE_NAMES), rng.choice(LAST_NAMES), gender,
            rng.choice(USER_LOCATIONS), f'"{rng.choice(USER_AGENTS)}"',  # the app logs the header with its quotes
            float(start_ms - rng.randrange(DAY_MS, 365 * DAY_MS)), "paid" if rng.random() < 0.3 else "free",
        ))
    return users


def compress_file(path: Path, compression: str | None) -> None:
    """Replace a written file by its compressed form (``path`` plus the extension), streaming; deterministic
    bytes (gzip's header gets no name or time)."""
    if compression is None:
        return
    target = path.with_name(path.name + COMPRESSED_EXTENSIONS[compression])
    with open(path, "rb") as plain, open(target, "wb") as raw:
        if compression == "gzip":
            stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
        elif compression == "bzip2":
            stream = bz2.BZ2File(raw, "wb")
        else:
            import zstandard

            stream = zstandard.ZstdCompressor().stream_writer(raw, closefd=False)
        with stream:
            shutil.copyfileobj(plain, stream)
    path.unlink()


def write_song_files(out: Path, songs: list[Song], compression: str | None = None) -> int:
    folders: set[Path] = set()
    for song in songs:
        folder = out / "song_data" / song.track_id[2] / song.track_id[3] / song.track_id[4]
        if folder not in folders:
            folder.mkdir(parents=True, exist_ok=True)
            folders.add(folder)
        path = folder / f"{song.track_id}.json"
        with open(path, "w", encoding="ascii") as stream:
            stream.write(json.dumps(song.record()))  # default ", " and ": " separators, like the public files
        compress_file(path, compression)
    return len(songs)


class Session:
    """A session in progress: whose, its next itemInSession, events left, whether it ends with Logout."""

    __slots__ = ("session_id", "user", "item", "left", "logout")

    def __init__(self, session_id: int, user: User, events: int, logout: bool) -> None:
        self.session_id, self.user, self.item, self.left, self.logout = session_id, user, 0, events, logout


class EventStream:
    """Overlapping listening sessions, merged into one stream of event lines in ``ts`` order.

    Sessions start at random (a Poisson process whose rate follows HOURLY_WEIGHTS)
    and wait between events as long as the song played. An event is made only when
    its turn comes, so level changes apply in time order across a user's sessions.
    """

    def __init__(self, seed: int, songs: list[Song], unknown: list[Song], users: list[User], events_per_day: int,
                 match_ratio: float) -> None:
        # Session starts have their own random stream: how far ahead they are drawn then never shifts the
        # events' stream, so the events before any instant do not depend on the end of the range.
        self.rng, self.clock = random.Random(f"{seed}:events"), random.Random(f"{seed}:sessions")
        self.match_ratio = match_ratio
        self.songs, self.plays = songs, [_play(song) for song in songs]
        self.popular = Weighted(range(len(songs)), _popularity(len(songs))) if songs else None
        self.unknown = [_play(song) for song in unknown]
        self.users = Weighted(users, _popularity(len(users)))
        self.pages = {
            level: Weighted([page for page, *_ in LOGGED_IN_PAGES], [row[column] for row in LOGGED_IN_PAGES])
            for column, level in ((1, "free"), (2, "paid"))
        }
        sessions_per_day = events_per_day / MEAN_SESSION_EVENTS
        self.session_rate = [sessions_per_day * weight / sum(HOURLY_WEIGHTS) / HOUR_MS for weight in HOURLY_WEIGHTS]

    def lines(self, start_ms: int, end_ms: int) -> Iterator[tuple[int, str, bool]]:
        """(ts, line, is NextSong) for every event in [start_ms, end_ms), by ts."""
        heap: list[tuple[int, int, Session]] = []
        session_ids = itertools.count(1)
        arrivals = self._arrivals(start_ms - WARM_UP_MS, end_ms)
        arrival = next(arrivals, None)
        last_ts = start_ms - WARM_UP_MS - 1
        while True:
            while arrival is not None and (not heap or arrival <= heap[0][0]):
                session_id = next(session_ids)
                heapq.heappush(heap, (arrival, session_id, self._session(session_id)))
                arrival = next(arrivals, None)
            if not heap:
                return
            ts, session_id, session = heapq.heappop(heap)
            ts = max(ts, last_ts + 1)  # one event per millisecond: no user ever has two events at one instant
            if ts >= end_ms:
                return
            last_ts = ts
            line, wait_ms, played = self._event(session, ts)
            if ts >= start_ms:
                yield ts, line, played
            if session.left:
                heapq.heappush(heap, (ts + wait_ms, session_id, session))

    def _arrivals(self, start_ms: int, end_ms: int) -> Iterator[int]:
        """Session start times: exponential gaps at the current hour's rate (memoryless, so restart each hour)."""
        rng, moment = self.clock, float(start_ms)
        while moment < end_ms:
            hour_end = (int(moment) // HOUR_MS + 1) * HOUR_MS
            rate = self.session_rate[int(moment) // HOUR_MS % 24]
            moment = min(moment + rng.expovariate(rate), hour_end) if rate else hour_end
            if moment < min(hour_end, end_ms):
                yield int(moment)

    def _session(self, session_id: int) -> Session:
        rng = self.rng
        if rng.random() < VISITOR_SHARE:
            return Session(session_id, VISITOR, rng.randint(1, 3), logout=False)  # browses, then logs in
        return Session(session_id, self.users.draw(rng), 1 + int(rng.expovariate(1 / SESSION_MEAN)),
                       logout=rng.random() < LOGOUT_SHARE)

    def _event(self, session: Session, ts: int) -> tuple[str, int, bool]:
        """The session's next event line, how long the user stays on it (ms), and whether it is a play."""
        rng, user = self.rng, session.user
        session.left -= 1
        if user is VISITOR:
            name, method, page, status = LOGIN if not session.left else rng.choice(VISITOR_PAGES)
        elif session.logout and not session.left:
            name, method, page, status = LOGOUT
        else:
            name, method, page, status = self.pages[user.level].draw(rng)
        played = name == "NextSong"
        if played:
            artist, song, length, seconds = self._play()
            wait_ms = int(seconds * 1000) + rng.randrange(2000)
        else:
            artist = song = length = "null"
            wait_ms = rng.randrange(1000, 60_000)
        line = EVENT_LINE % (
            artist, LOGGED_OUT if user is VISITOR else LOGGED_IN, user.first_name, user.gender, session.item,
            user.last_name, length, user.level, user.location, method, page, user.registration, session.session_id,
            song, status, ts, user.user_agent, user.user_id,
        )
        session.item += 1
        user.level = LEVEL_AFTER.get(name, user.level)
        return line, wait_ms, played

    def _play(self) -> tuple[str, str, str, float]:
        """A play as (artist, song, length) event values and seconds: a catalog song as listed (match_ratio of
        plays); else a known title by another artist or a known song at another length (a quarter of the misses
        each), or an unknown song (the rest)."""
        rng = self.rng
        if self.popular is None:
            return rng.choice(self.unknown)
        roll, index = rng.random(), self.popular.draw(rng)
        if roll < self.match_ratio:
            return self.plays[index]
        miss = (roll - self.match_ratio) / (1 - self.match_ratio)
        song = self.songs[index]
        if miss < 0.25:
            other = rng.choice(self.songs).artist
            if other.artist_id != song.artist.artist_id:
                return _json(other.name), _json(song.title), _json(song.duration), song.duration
        elif miss < 0.5:
            length = round(song.duration + rng.uniform(2, 30), 5)
            return _json(song.artist.name), _json(song.title), _json(length), length
        return rng.choice(self.unknown)


def _play(song: Song) -> tuple[str, str, str, float]:
    """A song's (artist, song, length) as event values, and its length in seconds."""
    return _json(song.artist.name), _json(song.title), _json(song.duration), song.duration


class LogWriter:
    """Puts ts-ordered lines into their day's or hour's files, creating a file with its first line.

    Every other file (by day or hour number and part) loses its final newline, as some of the app's do.
    """

    def __init__(self, out: Path, layout: str, files_per_hour: int, compression: str | None = None) -> None:
        self.out, self.layout, self.compression = out, layout, compression
        self.period_ms, self.parts = (DAY_MS, 1) if layout == "daily" else (HOUR_MS, files_per_hour)
        self.period: int | None = None
        self.lines_in_period = 0
        self.streams: dict[int, tuple[Path, TextIO]] = {}
        self.files = 0

    def write(self, ts: int, line: str) -> None:
        period = ts // self.period_ms
        if period != self.period:
            self.close()
            self.period, self.lines_in_period = period, 0
        part = self.lines_in_period % self.parts
        self.lines_in_period += 1
        entry = self.streams.get(part)
        if entry is None:
            entry = self.streams[part] = self._open(period, part)
        entry[1].write(line)

    def _open(self, period: int, part: int) -> tuple[Path, TextIO]:
        moment = datetime.fromtimestamp(period * self.period_ms / 1000, timezone.utc)
        if self.layout == "daily":
            path = self.out / f"log_data/{moment:%Y/%m/%Y-%m-%d}-events.json"
        else:
            path = self.out / f"log_data/{moment:%Y/%m/%d/%H/%Y-%m-%d-%H}-events-{part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files += 1
        return path, open(path, "w", encoding="ascii", newline="\n", buffering=1 << 20)

    def close(self) -> None:
        for part, (path, stream) in self.streams.items():
            stream.close()
            if (self.period * self.parts + part) % 2:
                os.truncate(path, path.stat().st_size - 1)
            compress_file(path, self.compression)
        self.streams.clear()


def generate(out_dir: str | Path, start: date | datetime, end: date | datetime, *, events_per_day: int = 270,
             songs: int = 300, users: int = 30, layout: str = "daily", files_per_hour: int = 1, seed: int = 42,
             match_ratio: float = 0.6, compress: str | None = None) -> dict[str, int]:
    """Write the catalog and the events in [start, end) under out_dir; return what was written.

    Naive datetimes and dates are UTC. ``events_per_day`` is the expected volume,
    not an exact count. ``compress`` (gzip, bzip2, zstd) writes every file compressed.
    The summary counts ``events``, ``next_song_events``, ``song_files`` and ``log_files``.
    """
    if layout not in ("daily", "hourly"):
        raise ValueError(f"layout must be 'daily' or 'hourly', not {layout!r}")
    if compress is not None and compress not in COMPRESSED_EXTENSIONS:
        raise ValueError(f"compress must be one of {', '.join(COMPRESSED_EXTENSIONS)}, not {compress!r}")
    if files_per_hour < 1 or users < 1 or songs < 0 or events_per_day < 0 or not 0 <= match_ratio <= 1:
        raise ValueError("need files_per_hour >= 1, users >= 1, songs >= 0, events_per_day >= 0, 0 <= match_ratio <= 1")
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    if end_ms < start_ms:
        raise ValueError("end is before start")
    out = Path(out_dir)
    # Separate streams: the catalog and the users do not change with the event volume.
    titles, artist_names = Names(), Names()
    catalog = make_catalog(random.Random(f"{seed}:catalog"), songs, titles, artist_names)
    # Made with the catalog's name registers, so no unknown song shares a title or an artist with it.
    unknown = make_catalog(random.Random(f"{seed}:unknown"), max(20, songs // 3), titles, artist_names, featured=[])
    listeners = make_users(random.Random(f"{seed}:users"), users, start_ms)
    summary = {"events": 0, "next_song_events": 0, "song_files": write_song_files(out, catalog, compress),
               "log_files": 0}
    stream = EventStream(seed, catalog, unknown, listeners, events_per_day, match_ratio)
    writer = LogWriter(out, layout, files_per_hour, compress)
    try:
        for ts, line, played in stream.lines(start_ms, end_ms):
            writer.write(ts, line)
            summary["events"] += 1
            summary["next_song_events"] += played
    finally:
        writer.close()
    summary["log_files"] = writer.files
    return summary


def _epoch_ms(moment: date | datetime) -> int:
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder to write log_data/ and song_data/ into")
    parser.add_argument("--start", required=True, type=datetime.fromisoformat, help="first instant (date or ISO, UTC)")
    parser.add_argument("--end", required=True, type=datetime.fromisoformat, help="end, excluded (date or ISO, UTC)")
    parser.add_argument("--events-per-day", type=int, default=270)
    parser.add_argument("--songs", type=int, default=300)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--layout", choices=["daily", "hourly"], default="daily")
    parser.add_argument("--files-per-hour", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--match-ratio", type=float, default=0.6)
    parser.add_argument("--compress", choices=list(COMPRESSED_EXTENSIONS), help="write every file compressed")
    args = parser.parse_args(argv)
    try:
        summary = generate(args.out, args.start, args.end, events_per_day=args.events_per_day, songs=args.songs,
                           users=args.users, layout=args.layout, files_per_hour=args.files_per_hour, seed=args.seed,
                           match_ratio=args.match_ratio, compress=args.compress)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {summary['events']:,} events ({summary['next_song_events']:,} plays) in {summary['log_files']:,} "
          f"log files and {summary['song_files']:,} song files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
