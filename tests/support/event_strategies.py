"""Event records for hypothesis: any valid event (every field null or of its type, ``ts`` within a day
either side of 2018-11-01), and the event fields in the order staging's columns take them.
Shared by the bad-input properties (operators/test_bad_input.py) and the two readings behind
PostgreSQL staging (operators/test_binary_copy.py)."""

from __future__ import annotations

from hypothesis import strategies as st

from sparkify.staging.jsonpaths import read_jsonpaths
from tests.support.inputs import HOUR_MS

#: The source fields in the JSONPaths order, which is staging_events' column order.
FIELDS = read_jsonpaths("jsonpaths/log_events.json")

_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")  # NUL: PostgreSQL text cannot hold it
_TEXT = st.text(_CHARACTERS, max_size=40)
_INT4 = st.integers(-(2**31), 2**31 - 1)
_NUMBER = st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))
ANY_VALID_EVENT = st.fixed_dictionaries({
    "artist": st.none() | _TEXT, "auth": st.none() | st.text(_CHARACTERS, max_size=32), "firstName": st.none() | _TEXT,
    "gender": st.none() | st.sampled_from(["M", "F", ""]), "itemInSession": st.none() | _INT4,
    "lastName": st.none() | _TEXT, "length": st.none() | _NUMBER, "level": st.none() | st.sampled_from(["free", ""]),
    "location": st.none() | _TEXT, "method": st.none() | st.sampled_from(["PUT", "GET"]), "page": st.none() | _TEXT,
    "registration": st.none() | _NUMBER, "sessionId": st.none() | _INT4, "song": st.none() | _TEXT,
    "status": st.none() | _INT4, "ts": st.integers(HOUR_MS - 24 * 3_600_000, HOUR_MS + 25 * 3_600_000 - 1),
    "userAgent": st.none() | _TEXT, "userId": st.none() | st.text(_CHARACTERS, max_size=64),
})
