"""The DAGs' schedule: Airflow's cron data intervals, with manual runs that load the interval of their logical date."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.timetables.base import DataInterval
from airflow.timetables.interval import CronDataIntervalTimetable
from pendulum import UTC

if TYPE_CHECKING:
    from pendulum import DateTime
    from pendulum.tz.timezone import FixedTimezone, Timezone


class LogicalDateIntervalTimetable(CronDataIntervalTimetable):
    """``CronDataIntervalTimetable``, except that a manual run loads the interval its logical date falls in.

    Stock, a scheduled or backfill run with logical date X loads the interval starting at X, but a run
    triggered for X (UI or REST API, interval inferred) loads the last complete interval *before* X.
    Here both mean the same hour (day): a manual run at X loads ``[X aligned down, next cron time)``, so
    15:00 and 15:30 both load 15:00-16:00. Scheduling, catchup and backfills are inherited unchanged,
    and an interval given explicitly with the trigger is used as given. Registered by
    ``plugins/sparkify_plugin.py``: Airflow only deserializes custom timetables a plugin names.
    """

    def __init__(self, cron: str, timezone: str | Timezone | FixedTimezone) -> None:
        super().__init__(cron, timezone)
        # The UI shows the summary (the cron expression) with this as its tooltip.
        self.description = (
            f"{self.description} ({self._timezone.name}); a manual run loads the interval its logical date falls in"
        )

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        # In UTC like every interval Airflow stores, whatever the offset the logical date came with.
        start = self._align_to_prev(run_after).in_timezone(UTC)
        return DataInterval(start=start, end=self._get_next(start))
