"""Service level, end to end: the real Airflow services (started by the ``airflow_stack``
fixture on free ports, with their own home and databases), driven through the REST API
the UI uses, with Airflow's official client (tools/airflow_api.py). A run triggered for a
logical date and a backfill of six hours all succeed beside the schedule, and the warehouse
equals the independent reference."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from airflow_client.client import ApiException, DAGApi

from tests.support.airflow_stack import (
    BACKFILL_HOURS,
    DAG_ID,
    DATA_END,
    DATA_START,
    SCENARIO_END,
    TRIGGER_LOGICAL_DATE,
    hours,
)
from tests.support.reference import build_reference
from tests.support.smtp_inbox import body
from tests.support.warehouse_checks import assert_matches_reference, warehouse_tables
from tools.airflow_api import api_client

pytestmark = pytest.mark.services


def songplays(warehouse: str, start: datetime, end: datetime) -> Counter:
    """The warehouse's songplays that start in [start, end), as the reference's row tuples."""
    return Counter({row: count for row, count in warehouse_tables(warehouse)["songplays"].items()
                    if start <= row[0] < end})


def test_the_api_refuses_calls_without_a_token(airflow_stack):
    with pytest.raises(ApiException) as refused:
        DAGApi(api_client(airflow_stack.api.url)).get_dag(DAG_ID)
    assert refused.value.status == 401
    assert airflow_stack.api.dag_api.get_dags_with_http_info().status_code == 200


def test_a_run_triggered_for_a_logical_date_loads_that_hour(airflow_stack, airflow_scenario):
    triggered = airflow_scenario.triggered
    hour = (TRIGGER_LOGICAL_DATE, TRIGGER_LOGICAL_DATE + timedelta(hours=1))
    assert triggered.run_type == "manual" and triggered.triggered_by == "rest_api"
    assert triggered.logical_date == TRIGGER_LOGICAL_DATE
    assert (triggered.data_interval_start, triggered.data_interval_end) == hour
    # The backfill stops an hour earlier: the warehouse's plays of that hour are the triggered run's.
    expected = build_reference(airflow_stack.source, *hour)["songplays"]
    assert expected and songplays(airflow_stack.warehouse, *hour) == expected


def test_the_triggered_run_shows_its_summary_as_note_with_the_warehouse_figures(airflow_stack, airflow_scenario):
    run = airflow_scenario.triggered.dag_run_id
    note = airflow_stack.api.dag_run_api.get_dag_run(DAG_ID, run).note
    hour = (TRIGGER_LOGICAL_DATE, TRIGGER_LOGICAL_DATE + timedelta(hours=1))
    plays = sum(songplays(airflow_stack.warehouse, *hour).values())
    assert note.startswith("**Run summary**: success, 2018-11-01 06:00 → 07:00 UTC"), note
    assert f"- Rows written: songplays {plays} · " in note and "- Quality checks: 13 of 13 passed" in note, note
    events = airflow_stack.api.asset_api.get_asset_events(source_run_id=run, source_task_id="load_songplays")
    (event,) = events.asset_events
    assert event.extra["rows_written"] == plays and event.extra["interval_start"] == hour[0].isoformat()


def test_every_run_succeeded_backfill_trigger_and_schedule(airflow_scenario):
    runs = airflow_scenario.runs
    failed = {run.dag_run_id: run.state.value for run in runs if run.state != "success"}
    assert not failed, f"{failed}; timings {airflow_scenario.seconds}"

    backfilled = sorted(run.data_interval_start for run in runs if run.run_type == "backfill")
    assert backfilled == [DATA_START + timedelta(hours=hour) for hour in range(BACKFILL_HOURS)]
    assert [run.dag_run_id for run in runs if run.run_type == "manual"] == [airflow_scenario.triggered.dag_run_id]
    # Unpausing schedules the latest hour only (catchup is off), not every hour since start_date.
    scheduled = [run for run in runs if run.run_type == "scheduled"]
    assert 1 <= len(scheduled) <= 2, scheduled
    assert all(run.data_interval_start > DATA_END for run in scheduled)
    assert airflow_scenario.backfill.completed_at


def test_the_warehouse_equals_the_reference(airflow_stack, airflow_scenario):
    # The hours loaded: the scenario's, or all generated if the browser test, which runs the hours after
    # them from the UI, ran first (`make test` runs test_browser.py first).
    loaded = {run.data_interval_start for run in airflow_stack.api.dag_runs(DAG_ID, state=["success"])
              if DATA_START <= run.data_interval_start < DATA_END}
    end = max(loaded) + timedelta(hours=1)
    assert end in (SCENARIO_END, DATA_END) and loaded == set(hours(DATA_START, end)), sorted(loaded)
    reference = build_reference(airflow_stack.source, DATA_START, end)
    plays = reference["songplays"]
    # Plays in every hour of the scenario (not every later hour has some), matched and unmatched, or the
    # comparison proves little.
    assert {row[0].replace(minute=0, second=0, microsecond=0) for row in plays} >= set(hours(DATA_START, SCENARIO_END))
    assert any(row[3] for row in plays) and any(row[3] is None for row in plays)
    assert_matches_reference(airflow_stack.warehouse, reference)


def test_task_logs_are_read_from_the_shared_home(airflow_stack, airflow_scenario):
    """No log-serving processes run: the API server reads the task log files itself."""
    run = airflow_scenario.triggered.dag_run_id
    # The answer as the API server sent it, not the client's model: on 3.3.2 its StructuredLogMessage
    # keeps only event and timestamp of each log line (level, logger and every other key dropped:
    # 1,166 of 4,721 characters of a stage_events log left), and Content.to_json() raises
    # "TypeError: Object of type StructuredLogMessage is not JSON serializable".
    response = airflow_stack.api.task_instance_api.get_log_without_preload_content(DAG_ID, run, "stage_events", 1)
    status, log = response.status, json.loads(response.data)
    assert status == 200, log
    text = json.dumps(log["content"])
    assert "staging_events" in text and "Could not read served logs" not in text, text[:2000]


def test_a_scheduled_hour_not_loaded_in_time_raises_a_late_alert_and_nothing_else_alerts(airflow_stack,
                                                                                           airflow_scenario):
    """The stack runs with SPARKIFY_FRESHNESS_MINUTES=0: a scheduled hour is due when it ends, so
    its run misses the deadline while it runs. Backfilled and triggered hours raise none."""
    scheduled = [run for run in airflow_scenario.runs if run.run_type == "scheduled"]
    inbox = airflow_stack.inbox
    deadline = time.monotonic() + 90  # the scheduler queues the callback, the triggerer runs it
    while len(inbox.messages) < len(scheduled) and time.monotonic() < deadline:
        time.sleep(1)
    expected = {f"DAG run: {DAG_ID} / {run.dag_run_id}" for run in scheduled}
    texts = [body(message) for message in inbox.messages]
    named = [line for text in texts for line in text.splitlines() if line.startswith("DAG run:")]
    # An hour that ends while the services run adds a scheduled run, late at once too: every alert
    # names a scheduled run (of the scenario, or one added since), once, and none names another run.
    scheduled_now = {f"DAG run: {DAG_ID} / {run.dag_run_id}" for run in airflow_stack.api.dag_runs(DAG_ID)
                     if run.run_type == "scheduled"}
    assert expected <= set(named) <= scheduled_now and len(named) == len(set(named)), inbox.subjects
    for message, text in zip(inbox.messages, texts, strict=True):
        assert message["Subject"].startswith(f"[sparkify] {DAG_ID} ") and message["Subject"].endswith(" late")
        assert "not loaded 0 minutes after the hour ended" in text and "Hour: " in text, text
