"""Restatement: which hours a run reloads besides its own, in one place.

An hour counts as *loaded* once a run whose interval holds it has staged its events: that staging
records the run's interval in ``loaded_intervals``, in its own transaction and under the staging
lock. An object new, rewritten or gone since it was staged *restates* the hours before the run's
interval that its old and new rows cover, but only those loaded before: an hour no run has asked
for is left to its own run (scheduled, backfilled or cleared). The staging records each restated
span in ``restatements``; the run's loads and checks read them back (over every attempt of the run)
and cover the run's interval and those spans, each span loaded as an interval of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sparkify.warehouse.run_parameters import EPOCH, epoch_ms
from sparkify.warehouse.sql import render_statements
from sparkify.warehouse.transactions import Cursor, execute_statements

HOUR = timedelta(hours=1)
#: A half-open span of whole hours, [start, end), naive UTC as the warehouse stores times.
Span = tuple[datetime, datetime]


def hour_of(ms: int) -> datetime:
    """The UTC hour (naive) an epoch-millisecond time falls in."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.replace(minute=0, second=0, microsecond=0)


def hours_between(first_ts: int | None, last_ts: int | None) -> Span | None:
    """The whole hours from the first to the last time (epoch ms), or None for rows without a time."""
    if first_ts is None or last_ts is None:
        return None
    return hour_of(first_ts), hour_of(last_ts) + HOUR


def merge(spans: Iterable[Span]) -> list[Span]:
    """The spans as the fewest disjoint spans, in time order; touching spans join."""
    merged: list[Span] = []
    for start, end in sorted(span for span in spans if span[0] < span[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intersect(span: Span, spans: Iterable[Span]) -> list[Span]:
    """The parts of ``span`` inside any of ``spans``, merged."""
    start, end = span
    return merge((max(start, other_start), min(end, other_end)) for other_start, other_end in spans)


def overlaps(span: Span, spans: Iterable[Span]) -> bool:
    """Whether ``span`` shares an hour with any of ``spans``."""
    return bool(intersect(span, spans))


def _timestamp(value: Any) -> datetime:
    """A timestamp read back from the warehouse (the Data API returns text)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def loaded_spans(cursor: Cursor, parameters: dict[str, Any], hours: Span) -> list[Span]:
    """The hours within ``hours`` that runs have loaded (``loaded_intervals``), merged."""
    execute_statements(cursor, render_statements("stage/loaded_intervals.sql"),
                       {**parameters, "hours_start": hours[0], "hours_end": hours[1]})
    return intersect(hours, [(_timestamp(start), _timestamp(end)) for start, end in cursor.fetchall()])


def record_loaded(cursor: Cursor, parameters: dict[str, Any], now: datetime) -> None:
    """Record the run's interval as loaded (in its staging transaction: later changes restate it)."""
    execute_statements(cursor, render_statements("stage/record_loaded_interval.sql"),
                       {**parameters, "recorded_at": now})


def restate(cursor: Cursor, parameters: dict[str, Any], changed: dict[str, tuple[str, list[Span]]],
            now: datetime, loaded: list[Span] | None = None) -> list[dict[str, Any]]:
    """Record, in the staging transaction, the hours each changed object (or staging unit) restates: of
    the spans its old and new rows cover (``changed``: URI → (change, spans)), the hours before the run's
    interval that runs have loaded (read here, under the staging lock, unless ``loaded`` gives them: the
    Data API reads them ahead). Hours after the interval are left to their own runs; its own it loads
    anyway. Returns the restatements (object_uri, change, hours_start, hours_end), one per span."""
    start = parameters["interval_start"]
    before = {uri: (change, merge((first, min(end, start)) for first, end in spans))
              for uri, (change, spans) in changed.items()}
    earliest = min((spans[0][0] for _, spans in before.values() if spans), default=None)
    if earliest is None:
        return []
    if loaded is None:
        loaded = loaded_spans(cursor, parameters, (earliest, start))
    restated = [{"object_uri": uri, "change": change, "hours_start": hours_start, "hours_end": hours_end}
                for uri, (change, spans) in before.items()
                for span in spans for hours_start, hours_end in intersect(span, loaded)]
    for entry in restated:
        execute_statements(cursor, render_statements("stage/record_restatement.sql"),
                           {**parameters, **entry, "recorded_at": now})
    return restated


def restated_spans(cursor: Cursor, parameters: dict[str, Any], staging_table: str) -> list[Span]:
    """The spans the run's staging of ``staging_table`` restated, over all its attempts, merged:
    read from the warehouse in the caller's transaction, so a load cleared and run alone covers them."""
    execute_statements(cursor, render_statements("audit/restated_hours.sql"),
                       {**parameters, "table_name": staging_table})
    return merge((_timestamp(start), _timestamp(end)) for start, end in cursor.fetchall())


def load_spans(parameters: dict[str, Any], restated: list[Span]) -> list[dict[str, Any]]:
    """The bound parameters of each span a load or check covers: the run's interval and the restated
    spans, merged, each with its own ``interval_start``/``interval_end`` and ``start_ms``/``end_ms``."""
    own = (parameters["interval_start"], parameters["interval_end"])
    return [{**parameters, "interval_start": start, "interval_end": end, "start_ms": epoch_ms(start),
             "end_ms": epoch_ms(end)} for start, end in merge([own, *restated])]


def span_text(span: Span) -> str:
    """A span as the run summary and the asset events show it: ``2018-11-15T00:00Z/2018-11-15T06:00Z``."""
    return f"{span[0]:%Y-%m-%dT%H:%M}Z/{span[1]:%Y-%m-%dT%H:%M}Z"
