"""What an alert says: its subject and text, from the run, the hour, the task and the first line of the error."""

from __future__ import annotations

from datetime import datetime

from sparkify.notifications.alerts import compose, first_line, hour_of


def test_an_alert_names_the_run_the_hour_the_task_and_the_first_line_of_the_error():
    hour = hour_of(datetime(2018, 11, 1, 14), datetime(2018, 11, 1, 15))
    assert hour == "2018-11-01 14:00 → 15:00 UTC"
    alert = compose("failed", dag_id="sparkify_dwh", run_id="manual__x", interval=hour, task="stage_events",
                    error=first_line(ValueError("bad line 3\n  more detail")), detail="Log: http://x")
    assert alert["subject"] == "[sparkify] sparkify_dwh 2018-11-01 14:00 → 15:00 UTC: stage_events failed"
    assert alert["text"].splitlines() == ["Failed: stage_events", "DAG run: sparkify_dwh / manual__x",
                                          "Hour: 2018-11-01 14:00 → 15:00 UTC", "Error: ValueError: bad line 3",
                                          "Log: http://x"]


def test_a_day_long_interval_names_its_end_day_and_no_interval_says_so():
    assert hour_of(datetime(2018, 11, 1), datetime(2018, 11, 2)) == "2018-11-01 00:00 → 2018-11-02 00:00 UTC"
    assert hour_of(None, None) == "(no data interval)" and first_line(None).startswith("(no error recorded")
