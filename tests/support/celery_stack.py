"""The real Airflow services under the CeleryExecutor for the Celery service tests
(tests/services/test_celery.py): a Redis broker, two ``airflow celery worker`` processes and the
usual components, started by ``tools/airflow_services.py`` with a home, metadata database and
warehouse of their own on free ports, on data generated for the test; and what the metadata
database says about where each try of each task ran.

Which worker ran a try is Celery's record, kept in the metadata database: the result backend is
that database (``celery_taskmeta``) and ``result_extended`` stores the worker's name with each
Celery task, whose id is the try's ``external_executor_id`` (in ``task_instance``, and in
``task_instance_history`` for the earlier tries of a retried task).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import psycopg
from airflow_client.client import BackfillPostBody, DAGPatchBody, ReprocessBehavior

from tools import airflow_services, local_pg
from tools.airflow_env import file_uri
from tools.generate_data import generate

DAG_ID = "sparkify_dwh"
DATA_START = datetime(2018, 11, 1, tzinfo=timezone.utc)
WORKERS = ("worker-1", "worker-2")
#: Seconds a test waits for a backfill's runs, at most.
RUNS_TIMEOUT = 420

T = TypeVar("T")


@dataclass(frozen=True)
class Try:
    """One try of one task instance, and the Celery worker that ran it (None: never reached one)."""

    run_id: str
    task_id: str
    try_number: int
    state: str | None
    worker: str | None


@dataclass
class CeleryStack:
    instance: airflow_services.Instance
    source: Path
    warehouse: str
    #: libpq URI of the instance's metadata database.
    metadata: str

    @property
    def api(self):
        assert self.instance.api is not None
        return self.instance.api

    def tries(self) -> list[Try]:
        """Every try of every task of the DAG that went to Celery, earlier tries of retried tasks
        included, with the name of the worker that ran it (``worker-1``, not ``worker-1@host``)."""
        query = """
            SELECT ti.run_id, ti.task_id, ti.try_number, ti.state, m.worker
            FROM task_instance AS ti LEFT JOIN celery_taskmeta AS m ON m.task_id = ti.external_executor_id
            WHERE ti.dag_id = %(dag)s AND ti.external_executor_id IS NOT NULL
            UNION ALL
            SELECT h.run_id, h.task_id, h.try_number, h.state, m.worker
            FROM task_instance_history AS h LEFT JOIN celery_taskmeta AS m ON m.task_id = h.external_executor_id
            WHERE h.dag_id = %(dag)s AND h.external_executor_id IS NOT NULL
        """
        with psycopg.connect(self.metadata) as connection:
            rows = connection.execute(query, {"dag": DAG_ID}).fetchall()
        tries = [Try(run, task, number, state, worker.split("@")[0] if worker else None)
                 for run, task, number, state, worker in rows]
        return sorted(tries, key=lambda t: (t.run_id, t.task_id, t.try_number))

    def backfill(self, hours: int, max_active_runs: int) -> int:
        """Unpause the DAG and backfill ``hours`` hours from DATA_START through the REST API; the
        backfill's id."""
        self.api.wait_for_dag(DAG_ID)
        self.api.dag_api.patch_dag(DAG_ID, DAGPatchBody(is_paused=False))
        return self.api.backfill_api.create_backfill(BackfillPostBody(
            dag_id=DAG_ID,
            from_date=DATA_START,
            to_date=DATA_START + timedelta(hours=hours - 1),
            max_active_runs=max_active_runs,
            reprocess_behavior=ReprocessBehavior.FAILED,
        )).id


@contextmanager
def celery_stack(tmp: Path, hours: int, events_per_day: int,
                 settings: dict[str, str] | None = None) -> Generator[CeleryStack, None, None]:
    """Generate ``hours`` hours of data, start the services under Celery with two workers on it,
    yield them logged in; stop everything and drop the databases afterwards, also on failure."""
    source = tmp / "bucket"
    generate(source, DATA_START, DATA_START + timedelta(hours=hours), events_per_day=events_per_day,
             songs=150, users=40, seed=11)
    suffix = uuid.uuid4().hex[:10]
    metadata_db, warehouse_db = f"airflow_celery_{suffix}", f"test_celery_{suffix}"
    warehouse = local_pg.ensure_database(warehouse_db)
    try:
        with airflow_services.running_instance(
            file_uri(source), warehouse, tmp / "airflow-home", metadata_db, settings,
            executor="celery", workers=len(WORKERS),
        ) as instance:
            yield CeleryStack(instance, source, warehouse, local_pg.database_uri(metadata_db))
    finally:
        with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
            for database in (metadata_db, warehouse_db):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """``check()`` again and again until it returns something (not None, not False), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)
