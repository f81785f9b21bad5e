"""The real Airflow services for the service-level and browser tests, and what
they do through the REST API the UI uses (with Airflow's official client).

Started once per test session (fixtures in tests/services/conftest.py) with a home, metadata
database and warehouse database of their own on a free local port, so they run
beside a developer's ``make airflow``; stopped at the end whatever happened.
The scenario, as a user would run it: unpause ``sparkify_dwh``, trigger a run
for a logical date, backfill six hours, wait for every run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from airflow_client.client import (
    BackfillPostBody,
    BackfillResponse,
    DAGPatchBody,
    DAGRunResponse,
    ReprocessBehavior,
    TriggerDAGRunPostBody,
)

from tests.support.smtp_inbox import Inbox, smtp_server
from tools import airflow_services, local_pg
from tools.airflow_api import AirflowApi
from tools.airflow_env import file_uri
from tools.generate_data import generate

DAG_ID = "sparkify_dwh"
#: The generated hours: the scenario's backfill loads the first six, its run triggered by hand the
#: seventh; the browser test (test_browser.py) triggers the eighth from the UI's form and backfills
#: the three after it from the UI's dialog.
DATA_START = datetime(2018, 11, 1, tzinfo=timezone.utc)
BACKFILL_HOURS = 6
#: A manual run at X loads the hour X falls in: this one loads [06:00, 07:00).
TRIGGER_LOGICAL_DATE = DATA_START + timedelta(hours=BACKFILL_HOURS)
#: The end of the hours the scenario loads.
SCENARIO_END = TRIGGER_LOGICAL_DATE + timedelta(hours=1)
UI_TRIGGER_LOGICAL_DATE = SCENARIO_END
UI_BACKFILL_START = UI_TRIGGER_LOGICAL_DATE + timedelta(hours=1)
UI_BACKFILL_HOURS = 3
DATA_END = UI_BACKFILL_START + timedelta(hours=UI_BACKFILL_HOURS)
RUNS_TIMEOUT = 420


def hours(start: datetime, end: datetime) -> list[datetime]:
    """The hours from start (included) to end (excluded)."""
    return [start + timedelta(hours=hour) for hour in range((end - start) // timedelta(hours=1))]


@dataclass
class AirflowStack:
    api: AirflowApi
    home: Path
    source: Path
    warehouse: str
    #: The mail the alerts sent.
    inbox: Inbox


@dataclass
class Scenario:
    """What the scenario asked for and what Airflow answered."""

    triggered: DAGRunResponse
    backfill: BackfillResponse
    runs: list[DAGRunResponse]
    seconds: dict[str, float] = field(default_factory=dict)


def started(tmp: Path) -> Iterator[AirflowStack]:
    """Generate the data, start the services with their own home and databases, yield them
    logged in; stop everything and drop the databases afterwards, also on failure."""
    source = tmp / "bucket"
    generate(source, DATA_START, DATA_END, events_per_day=600, songs=150, users=20, seed=7)
    suffix = uuid.uuid4().hex[:10]
    metadata_db, warehouse_db = f"airflow_test_{suffix}", f"test_{suffix}"
    warehouse, home = local_pg.ensure_database(warehouse_db), tmp / "airflow-home"
    try:
        # Alerts on, sent to a local SMTP server; hours due as soon as they end, so the scheduled
        # run is late by the time it finishes and raises the late-hour alert.
        with (
            smtp_server() as inbox,
            airflow_services.running(file_uri(source), warehouse, home, metadata_db,
                                     {**inbox.settings(), "SPARKIFY_FRESHNESS_MINUTES": "0"}) as api,
        ):
            yield AirflowStack(api, home, source, warehouse, inbox)
    finally:
        with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
            for database in (metadata_db, warehouse_db):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run_scenario(api: AirflowApi) -> Scenario:
    """Unpause the DAG, trigger a run for a logical date and backfill six hours, all through the
    REST API; wait for every run and for the backfill to be marked complete."""
    began = time.monotonic()
    api.wait_for_dag(DAG_ID)
    api.dag_api.patch_dag(DAG_ID, DAGPatchBody(is_paused=False))
    triggered = api.dag_run_api.trigger_dag_run(
        DAG_ID, TriggerDAGRunPostBody(logical_date=TRIGGER_LOGICAL_DATE, conf={})
    )
    backfill = api.backfill_api.create_backfill(BackfillPostBody(
        dag_id=DAG_ID,
        from_date=DATA_START,
        to_date=DATA_START + timedelta(hours=BACKFILL_HOURS - 1),
        max_active_runs=4,
        reprocess_behavior=ReprocessBehavior.FAILED,
    ))
    submitted = time.monotonic()
    # The backfill's runs, the triggered one and the one the schedule makes on unpausing.
    runs = api.wait_for_runs(DAG_ID, BACKFILL_HOURS + 2, RUNS_TIMEOUT)
    finished = time.monotonic()
    completed = api.wait_for_backfill(backfill.id)
    return Scenario(triggered, completed, runs, {
        "submit": submitted - began, "runs": finished - submitted, "backfill marked": time.monotonic() - finished,
    })
