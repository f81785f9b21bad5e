"""The DAGs' timetable: a manual run loads the interval its logical date falls in, and everything
the scheduler asks of it (next runs, catchup, backfill intervals) is the stock cron timetable's."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable

from sparkify.timetables import LogicalDateIntervalTimetable

UTC = pendulum.UTC
START = pendulum.datetime(2018, 11, 1, tz=UTC)


def utc(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=UTC)


@pytest.mark.parametrize(("schedule", "logical_date", "start", "end"), [
    ("@hourly", utc(2018, 11, 1, 15), utc(2018, 11, 1, 15), utc(2018, 11, 1, 16)),
    ("@hourly", utc(2018, 11, 1, 15, 30), utc(2018, 11, 1, 15), utc(2018, 11, 1, 16)),
    ("@hourly", utc(2018, 11, 1, 15, 59, 59), utc(2018, 11, 1, 15), utc(2018, 11, 1, 16)),
    ("@hourly", utc(2018, 11, 1, 23, 30), utc(2018, 11, 1, 23), utc(2018, 11, 2)),
    # 21:00 at +05:30 is 15:30 UTC; 01:00 in Berlin (CET) on 2 November is midnight UTC.
    ("@hourly", pendulum.datetime(2018, 11, 1, 21, tz="Asia/Kolkata"), utc(2018, 11, 1, 15), utc(2018, 11, 1, 16)),
    ("@hourly", pendulum.datetime(2018, 11, 2, 1, tz="Europe/Berlin"), utc(2018, 11, 2), utc(2018, 11, 2, 1)),
    ("@daily", utc(2018, 11, 1), utc(2018, 11, 1), utc(2018, 11, 2)),
    ("@daily", utc(2018, 11, 1, 15, 30), utc(2018, 11, 1), utc(2018, 11, 2)),
    ("@daily", utc(2018, 11, 30, 23, 59), utc(2018, 11, 30), utc(2018, 12, 1)),
    # 01:00 on 2 November in Berlin is already that day in UTC; 02:00 in Kolkata is still the day before.
    ("@daily", pendulum.datetime(2018, 11, 2, 1, tz="Europe/Berlin"), utc(2018, 11, 2), utc(2018, 11, 3)),
    ("@daily", pendulum.datetime(2018, 11, 2, 2, tz="Asia/Kolkata"), utc(2018, 11, 1), utc(2018, 11, 2)),
], ids=str)
def test_a_manual_run_loads_the_interval_its_logical_date_falls_in(schedule, logical_date, start, end):
    interval = LogicalDateIntervalTimetable(schedule, timezone="UTC").infer_manual_data_interval(run_after=logical_date)
    assert (interval.start, interval.end) == (start, end)
    assert interval.start.utcoffset() == interval.end.utcoffset() == timedelta(0)


def scheduled(timetable, *, catchup: bool, count: int, latest=None) -> list[DataInterval]:
    """The intervals the scheduler would create one after the other from START."""
    restriction = TimeRestriction(earliest=START, latest=latest, catchup=catchup)
    intervals, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            break
        intervals.append(last := info.data_interval)
    return intervals


@pytest.mark.parametrize("schedule", ["@hourly", "@daily"])
def test_scheduled_runs_and_catchup_are_the_stock_timetables(schedule):
    ours, stock = LogicalDateIntervalTimetable(schedule, "UTC"), CronDataIntervalTimetable(schedule, "UTC")
    for kwargs in ({"catchup": True, "count": 50}, {"catchup": True, "count": 50, "latest": utc(2018, 11, 1, 5)},
                   {"catchup": False, "count": 3}):
        assert scheduled(ours, **kwargs) == scheduled(stock, **kwargs), kwargs
    with_catchup = scheduled(ours, catchup=True, count=50)
    assert with_catchup[0].start == START and len(with_catchup) == 50
    # A manual run at a scheduled run's logical date loads what that run loads (stock: the interval before).
    for interval in with_catchup:
        assert ours.infer_manual_data_interval(run_after=interval.start) == interval
        assert stock.infer_manual_data_interval(run_after=interval.start).end == interval.start


def test_the_ui_shows_the_cron_expression_and_what_a_manual_run_loads():
    hourly, daily = LogicalDateIntervalTimetable("@hourly", "UTC"), LogicalDateIntervalTimetable("@daily", "UTC")
    assert (hourly.summary, daily.summary) == ("0 * * * *", "0 0 * * *")
    assert hourly.description == "Every hour (UTC); a manual run loads the interval its logical date falls in"
    assert daily.description == "At 00:00 (UTC); a manual run loads the interval its logical date falls in"
