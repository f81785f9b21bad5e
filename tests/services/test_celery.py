"""The DAG scaled out on Airflow's CeleryExecutor, for real: a Redis broker, two ``airflow celery
worker`` processes, the scheduler, DAG processor, triggerer and API server, as
``make airflow EXECUTOR=celery WORKERS=2`` starts them (tests/support/celery_stack.py), each test
with an instance, metadata database and warehouse of its own. Runs are created as a user creates
them, a backfill through the REST API, and the warehouse is compared with the independent
reference.

- a backfill through the scheduler: equal to the reference, and tasks of one run on both workers;
- a worker killed (SIGKILL to its process group: the worker, its pool and the task it runs, as when
  its machine dies) in the middle of stage_events's COPY: the try is failed by the scheduler's
  heartbeat check, retried on the other worker, and the warehouse equals the reference, every
  object staged once;
- the scheduler killed mid-range and started again: the new scheduler adopts or resets what the
  old one had queued, the range completes, and the warehouse equals the reference.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.support.celery_stack import (
    DAG_ID,
    DATA_START,
    RUNS_TIMEOUT,
    WORKERS,
    celery_stack,
    wait_until,
)
from tests.support.reference import build_reference
from tests.support.warehouse_checks import assert_exact
from tools import local_pg

pytestmark = pytest.mark.services

#: Rows a COPY must have written before the worker running it is killed: the song files stage far
#: fewer, so a COPY this far along is stage_events's, in the middle of the day file.
MID_COPY_ROWS = 20_000


def backfill_staging(stack) -> list:
    """The tries of stage_events running for the backfill. Unpausing the DAG also starts the run of the
    current hour (catchup off), whose stage_events may run at the same moment: it is not the one to kill."""
    return [t for t in stack.tries()
            if t.run_id.startswith("backfill__") and t.task_id == "stage_events" and t.state == "running"]


def backfill_runs(stack, hours: int, **wait) -> list:
    runs = stack.api.wait_for_runs(DAG_ID, hours, RUNS_TIMEOUT, run_type=["backfill"], **wait)
    failed = {run.dag_run_id: run.state.value for run in runs if run.state != "success"}
    assert not failed, failed
    assert sorted(run.data_interval_start for run in runs) == [DATA_START + timedelta(hours=h) for h in range(hours)]
    return runs


def test_a_backfill_runs_on_both_workers_and_equals_the_reference(pg_server, tmp_path):
    hours = 6
    with celery_stack(tmp_path, hours, events_per_day=2_400) as stack:
        stack.backfill(hours, max_active_runs=4)
        runs = backfill_runs(stack, hours)
        tries = stack.tries()

        assert_exact(stack.warehouse, build_reference(stack.source, DATA_START, DATA_START + timedelta(hours=hours)))
        backfilled = {run.dag_run_id for run in runs}
        ours = [t for t in tries if t.run_id in backfilled]
        # Every task but the two empty ones (begin, end: never sent to an executor) went through Celery,
        # once, and a worker recorded running it.
        assert len(ours) == hours * 11 and all(t.try_number == 1 for t in ours), ours
        assert {t.worker for t in ours} == set(WORKERS), ours
        workers_by_run = defaultdict(set)
        for t in ours:
            workers_by_run[t.run_id].add(t.worker)
        assert any(workers == set(WORKERS) for workers in workers_by_run.values()), dict(workers_by_run)


def test_a_worker_killed_mid_stage_events_is_retried_on_the_other_worker(pg_server, tmp_path):
    hours = 3
    settings = {
        # A try whose worker died is failed once it has not heartbeat for this long (default 300 s)…
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # …and retried after this (the DAG's 5 minutes otherwise).
        "SPARKIFY_RETRY_DELAY_SECONDS": "5",
    }
    # One day file of about 350,000 events (160 MB): its COPY runs for seconds.
    with celery_stack(tmp_path, hours, events_per_day=2_000_000, settings=settings) as stack:
        warehouse_db = conninfo_to_dict(stack.warehouse)["dbname"]
        stack.backfill(hours, max_active_runs=1)

        def copying_worker() -> str | None:
            """The worker running stage_events, once the warehouse shows its COPY well under way."""
            with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
                copied = admin.execute(
                    "SELECT max(p.tuples_processed) FROM pg_stat_progress_copy AS p "
                    "JOIN pg_database AS d ON d.oid = p.datid WHERE d.datname = %s", (warehouse_db,)
                ).fetchone()[0]
            if not copied or copied < MID_COPY_ROWS:
                return None
            running = backfill_staging(stack)
            return running[0].worker if len(running) == 1 and running[0].worker else None

        victim = wait_until(copying_worker, 240, "stage_events copying the day file on a worker", interval=0.1)
        (killed_run,) = {t.run_id for t in backfill_staging(stack)}
        stack.instance.kill(victim)
        killed_at = time.monotonic()

        backfill_runs(stack, hours, retries_expected=True)
        tries = [t for t in stack.tries() if (t.run_id, t.task_id) == (killed_run, "stage_events")]
        survivor = next(worker for worker in WORKERS if worker != victim)
        assert [(t.try_number, t.worker) for t in tries] == [(1, victim), (2, survivor)], tries
        assert tries[-1].state == "success" and tries[0].state != "success", tries
        # No worker of the killed one's name came back: every later try ran on the survivor.
        assert {t.worker for t in stack.tries() if t.worker and t.try_number > 1} == {survivor}
        print(f"killed {victim} mid-COPY; the backfill finished {time.monotonic() - killed_at:.0f} s later")

        assert_exact(stack.warehouse, build_reference(stack.source, DATA_START, DATA_START + timedelta(hours=hours)))


def test_the_scheduler_killed_mid_range_and_restarted_completes_the_range(pg_server, tmp_path):
    hours = 8
    settings = {
        # How often a scheduler looks for the tasks of schedulers that died (default 300 s); a scheduler
        # counts as dead once it has not heartbeat for scheduler_health_check_threshold (30 s).
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
    }
    with celery_stack(tmp_path, hours, events_per_day=2_400, settings=settings) as stack:
        backfill_id = stack.backfill(hours, max_active_runs=2)

        def mid_range() -> bool:
            runs = stack.api.dag_runs(DAG_ID, run_type=["backfill"])
            done = [run for run in runs if run.state == "success"]
            return len(runs) == hours and 1 <= len(done) <= hours - 3

        wait_until(mid_range, 300, "a backfill part-way through", interval=0.5)
        stack.instance.kill("scheduler")
        at_kill = {run.dag_run_id: run.state.value for run in stack.api.dag_runs(DAG_ID, run_type=["backfill"])}
        unfinished = {run for run, state in at_kill.items() if state != "success"}
        not_started = {run for run, state in at_kill.items() if state == "queued"}
        assert len(unfinished) >= 3 and not_started, at_kill
        stack.instance.spawn("scheduler")

        runs = backfill_runs(stack, hours)
        stack.api.wait_for_backfill(backfill_id, timeout=120)
        assert unfinished <= {run.dag_run_id for run in runs}
        with psycopg.connect(stack.metadata) as connection:
            jobs = connection.execute(
                "SELECT id, state FROM job WHERE job_type = 'SchedulerJob' ORDER BY id"
            ).fetchall()
            queued_by = dict(connection.execute(
                "SELECT run_id, max(queued_by_job_id) FROM task_instance WHERE dag_id = %s GROUP BY run_id",
                (DAG_ID,),
            ).fetchall())
        (first, _), (second, state) = jobs
        assert state == "running", jobs
        # The old scheduler queued the tasks of the first runs; the new one every task of the runs not
        # started when the old one died.
        assert first in queued_by.values()
        assert {queued_by[run] for run in not_started} == {second}, (queued_by, at_kill)

        assert_exact(stack.warehouse, build_reference(stack.source, DATA_START, DATA_START + timedelta(hours=hours)))
