"""What a staging run lists: the keys its key pattern names for the hours it reads, and what they hold.

Events are listed by time: the keys the pattern names for the run's interval, its ``spill`` hours either
side (events filed in a neighbouring object) and the ``lookback`` hours before (objects late, rewritten or
gone since they were staged). Each key names whole hours (a day file its day), which say what an object
*covers*: the runs whose hours it holds. A catalog is one prefix, listed whole (or not at all when its
changes come as notifications).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from sparkify.sources.objects import ObjectSource
from sparkify.staging.restatement import HOUR, Span
from sparkify.warehouse.run_parameters import epoch_ms

#: How far around a listing window its keys' hours are looked for: a key names at most a month.
KEY_SPAN = timedelta(days=32)


def interval_keys(pattern: str, start: datetime, end: datetime) -> dict[str, Span]:
    """The keys a pattern names for an interval (its strftime codes filled in for each hour), each
    with the hours that name it."""
    keys: dict[str, Span] = {}
    hour = start
    while hour < end:
        key = hour.strftime(pattern)
        first, _ = keys.get(key, (hour, hour))
        keys[key] = (first, hour + HOUR)
        hour += HOUR
    return keys


@dataclass(frozen=True)
class Listing:
    """A run's listing: each key or prefix listed, with the objects (key → version) under it."""

    listed: Mapping[str, Mapping[str, str]]
    #: The hours each listed key names, whole, even where the listing window cuts them (events only).
    named: Mapping[str, Span]
    #: The hours either side of a key's own that its objects may hold (events only).
    spill: timedelta = timedelta(0)
    #: The hours listed (events only).
    window: Span | None = None
    #: Why the run's own keys hold nothing, for its audit record.
    note: str | None = None

    @property
    def objects(self) -> dict[str, str]:
        """Every object listed: key → version."""
        return {key: version for found in self.listed.values() for key, version in found.items()}

    @cached_property
    def unit_of(self) -> dict[str, str]:
        """Each object's listed key or prefix, by object key."""
        return {key: unit for unit, found in self.listed.items() for key in found}

    def covers(self, unit: str) -> Span:
        """The hours a listed key's objects cover: those it names, widened by the spill (the runs that
        read them for their own hours)."""
        first, last = self.named[unit]
        return first - self.spill, last + self.spill

    def time_bounds(self, unit: str, plausible: timedelta) -> tuple[int, int]:
        """The times (epoch ms) a listed key's records may have: its hours, widened by ``plausible``."""
        first, last = self.named[unit]
        return epoch_ms(first - plausible), epoch_ms(last + plausible)


def list_events(source: ObjectSource, pattern: str, interval: Span, *, lookback: int, spill: int) -> Listing:
    """The objects a run of ``interval`` reads: those of its hours, its spill hours either side and its
    look-back before."""
    start, end = interval
    window = (start - timedelta(hours=lookback + spill), end + timedelta(hours=spill))
    listed = {key: source.list_objects(key) for key in interval_keys(pattern, *window)}
    own_keys = interval_keys(pattern, start, end)
    note = None
    if not any(listed.get(key) for key in own_keys):
        note = f"no objects at {', '.join(map(source.uri, own_keys))}: nothing of the run's own to stage"
    named = interval_keys(pattern, window[0] - KEY_SPAN, window[1] + KEY_SPAN)
    return Listing(listed, {key: named[key] for key in listed}, timedelta(hours=spill), window, note)


def list_catalog(source: ObjectSource, prefix: str, *, whole: bool) -> Listing:
    """A catalog's objects: the prefix listed ``whole``, or nothing (its notifications name its changes)."""
    if not whole:
        return Listing({}, {})
    found = source.list_objects(prefix)
    note = None if found else f"no objects at {source.uri(prefix)}: nothing of the run's own to stage"
    return Listing({prefix: found}, {}, note=note)
