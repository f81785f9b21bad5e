"""Faults on the real DAG and a real PostgreSQL: connections dropped mid-statement, a task
process killed, runs and single tasks cleared and rerun, runs of the same hours at once,
hours in random order, two `make backfill` at once. Every scenario ends with the warehouse
equal to the independent reference (``tests/support/reference.py``) and one copy of every staged batch.

Faults land at a chosen point, not by timing: a trigger parks the Nth row of a COPY or an
INSERT on an advisory lock the test holds, or the test holds a table lock the load must
take, and then waits for the task's backend to show up waiting in ``pg_stat_activity``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from tests.support.dag_runner import finish_runner, start_runner
from tests.support.paths import REPO
from tests.support.reference import build_reference
from tests.support.warehouse_checks import assert_exact, assert_succeeded, backfill, backfill_command
from tools import local_pg
from tools.ddl import create_tables
from tools.generate_data import generate

DAY = datetime(2018, 11, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
#: The advisory lock a paused row waits on.
PAUSE_LOCK = 4711
#: Random order of hours: a fixed seed unless SPARKIFY_FAULT_SEED gives another (it is printed).
#: The default one loads 19:00 before 18:00, where user 41 goes from paid to free.
SEED = int(os.environ.get("SPARKIFY_FAULT_SEED", "1"))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """One generated day; user 41 goes from paid at 18:00 to free at 19:00, so the order of hours matters."""
    folder = tmp_path_factory.mktemp("bucket")
    generate(folder, DAY, DAY + timedelta(days=1), events_per_day=400, songs=120, users=15, seed=8)
    return folder


def reference(source: Path, first: int, last: int):
    """The reference warehouse for the hours first..last of the day (both included)."""
    return build_reference(source, DAY + first * HOUR, DAY + (last + 1) * HOUR)


def hour(number: int) -> str:
    return (DAY + number * HOUR).strftime("%Y-%m-%dT%H:%M")


def database_name(uri: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(uri)["dbname"]


def wait_for_backends(warehouse: str, *waits: tuple[str, str], count: int = 1,
                      processes: list[subprocess.Popen] = ()) -> list[int]:
    """Pids of ``count`` backends of the warehouse each running a statement that starts with one of
    the ``waits``' text and waiting for a lock of its type (``advisory``, ``relation``). Fails at once
    if one of ``processes`` (the runs expected to get there) has ended."""
    deadline = time.monotonic() + 120
    where = " OR ".join(["(query LIKE %s AND wait_event = %s)"] * len(waits))
    parameters = [database_name(warehouse)] + [value for text, event in waits for value in (text + "%", event)]
    with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
        while time.monotonic() < deadline:
            pids = [pid for (pid,) in admin.execute(
                f"SELECT pid FROM pg_stat_activity WHERE datname = %s AND ({where})", parameters)]
            if len(pids) >= count:
                return pids
            for process in processes:
                if process.poll() is not None:
                    stdout, stderr = process.communicate()
                    raise AssertionError(f"ended before reaching {waits}:\n{stdout[-3000:]}{stderr[-3000:]}")
            time.sleep(0.05)
    raise AssertionError(f"no {count} backends waiting in {waits} within two minutes")


def task_tries(dag_id: str, interval_start: datetime) -> dict[str, int]:
    """Try number of every task of the run of ``dag_id`` over the interval, from Airflow's metadata."""
    with psycopg.connect(local_pg.database_uri("airflow")) as metadata:
        return dict(metadata.execute(
            "SELECT ti.task_id, ti.try_number FROM task_instance AS ti JOIN dag_run AS dr "
            "ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id "
            "WHERE dr.dag_id = %s AND dr.data_interval_start = %s",
            (dag_id, interval_start),
        ).fetchall())


def pause_rows(warehouse: psycopg.Connection, table: str, lock: int, nth: int | None = None) -> None:
    """Make rows written into ``table`` wait while the test holds the advisory lock ``lock``: every row,
    or only the ``nth`` one (counted over every statement, so a retry passes)."""
    warehouse.execute(f"CREATE SEQUENCE IF NOT EXISTS pause_{table}")
    condition = f"nextval('pause_{table}') = {nth}" if nth else "TRUE"
    warehouse.execute(f"""
        CREATE FUNCTION pause_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF {condition} THEN
                PERFORM pg_advisory_xact_lock_shared({lock});
            END IF;
            RETURN NEW;
        END $$""")
    warehouse.execute(f'CREATE TRIGGER pause BEFORE INSERT ON "{table}" FOR EACH ROW EXECUTE FUNCTION pause_{table}()')


def test_connection_dropped_mid_copy_and_mid_fact_insert_then_the_tasks_retry(source, warehouse, warehouse_uri):
    """`make backfill` of the day. The staging COPY's backend is terminated at its 50th row, then the
    fact INSERT's at its 3rd: each task fails mid-statement and its retry leaves the reference warehouse."""
    faults = [("staging_events", 50, 'COPY "staging_events"'), ("songplays", 3, 'INSERT INTO "songplays"')]
    for table, nth, _ in faults:
        pause_rows(warehouse, table, PAUSE_LOCK, nth)
    with psycopg.connect(warehouse_uri, autocommit=True) as holder:
        process = subprocess.Popen(backfill_command(source, warehouse_uri, DAY, DAY + timedelta(days=1)),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for table, nth, statement in faults:
            holder.execute("SELECT pg_advisory_lock(%s)", (PAUSE_LOCK,))
            (pid,) = wait_for_backends(warehouse_uri, (statement, "advisory"), processes=[process])
            if table == "staging_events":  # the COPY has streamed the rows before the paused one
                (copied,) = holder.execute("SELECT tuples_processed FROM pg_stat_progress_copy WHERE pid = %s",
                                           (pid,)).fetchone()
                assert copied == nth - 1
            assert holder.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
            holder.execute("SELECT pg_advisory_unlock(%s)", (PAUSE_LOCK,))
        stdout, stderr = process.communicate(timeout=600)
    assert_succeeded(process.returncode, stdout, stderr)
    tries = task_tries("sparkify_dwh_daily", DAY)
    retried = {"stage_events", "load_songplays"}
    assert all(tries[task] == (2 if task in retried else 1) for task in tries), tries
    assert_exact(warehouse_uri, reference(source, 0, 23))


def test_process_killed_between_staging_and_fact_load_then_the_run_is_rerun(source, warehouse, warehouse_uri):
    """The backfill process (dag.test runs tasks in it) is SIGKILLed once both staging tasks have
    committed and the fact load waits for its table lock; the same backfill again clears the run
    and reruns it."""
    command = backfill_command(source, warehouse_uri, DAY, DAY + timedelta(days=1))
    with psycopg.connect(warehouse_uri) as holder:
        holder.execute("LOCK TABLE songplays IN ROW SHARE MODE")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_backends(warehouse_uri, ('LOCK TABLE "songplays"', "relation"), processes=[process])
        staged = warehouse.execute("SELECT (SELECT COUNT(*) FROM staging_events), "
                                   "(SELECT COUNT(*) FROM staging_songs)").fetchone()
        assert all(staged), staged
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        holder.rollback()
    assert process.returncode == -signal.SIGKILL
    assert warehouse.execute("SELECT COUNT(*) FROM songplays").fetchone() == (0,)

    backfill(source, warehouse_uri, DAY, DAY + timedelta(days=1))
    assert_exact(warehouse_uri, reference(source, 0, 23))


def test_run_and_single_tasks_cleared_and_rerun_after_success(source, warehouse, warehouse_uri):
    """Two hours load; then each staging and load task of the first hour alone, and the second hour's
    whole run, are cleared and run again: the same runs, and the reference warehouse."""
    single_tasks = ["stage_events", "stage_songs", "load_songplays", "load_users"]
    results = finish_runner(start_runner(source, warehouse_uri, hour(0), hour(1),
                                         *(f"{hour(0)}@{task}" for task in single_tasks), hour(1)))
    assert [result["task"] for result in results] == [None, None, *single_tasks, None]
    assert len({result["run_id"] for result in results}) == 2, "a rerun was not the same run"
    assert_exact(warehouse_uri, reference(source, 0, 1))


def test_concurrent_backfill_runs_over_scheduled_hours(source, warehouse, warehouse_uri):
    """Two hours run as scheduled; then two processes at once run the whole day and, newest first,
    three hours (two of them the scheduled ones), as a backfill with max_active_runs > 1 would."""
    finish_runner(start_runner(source, warehouse_uri, hour(17), hour(18)))
    processes = [
        start_runner(source, warehouse_uri, hour(0), dag="sparkify_dwh_daily"),
        start_runner(source, warehouse_uri, hour(19), hour(18), hour(17)),
    ]
    results = [result for process in processes for result in finish_runner(process)]
    assert not any(result["retried"] for result in results), results
    assert_exact(warehouse_uri, reference(source, 0, 23))


def test_hours_in_random_order(source, warehouse, warehouse_uri):
    order = list(range(14, 22))
    random.Random(SEED).shuffle(order)
    print(f"hours in random order, seed {SEED} (SPARKIFY_FAULT_SEED): {order}")
    finish_runner(start_runner(source, warehouse_uri, *map(hour, order)))
    # The first run met the day file new and staged it; each hour was loaded by its own run, none other.
    assert_exact(warehouse_uri, reference(source, 14, 21))


def test_the_same_hour_twice_at_the_same_time(source, warehouse, warehouse_uri):
    """Two processes load 00:00-01:00 as two runs (triggered at 00:00 and at 00:30). One is held in its
    staging COPY while the other waits for the staging lock (it then finds the object staged), then
    both at the fact load's INSERT (or its lock) until both are there: the two loads meet, and take
    turns without failing."""
    staging, facts = PAUSE_LOCK, PAUSE_LOCK + 1
    pause_rows(warehouse, "staging_events", staging)
    pause_rows(warehouse, "songplays", facts)
    with psycopg.connect(warehouse_uri, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s), pg_advisory_lock(%s)", (staging, facts))
        processes = [start_runner(source, warehouse_uri, hour(0), late_minutes=minutes) for minutes in (0, 30)]
        wait_for_backends(warehouse_uri, ('COPY "staging_events"', "advisory"),
                          ("SELECT pg_advisory_xact_lock(hashtext('sparkify_dwh.staging.", "advisory"),
                          count=2, processes=processes)
        holder.execute("SELECT pg_advisory_unlock(%s)", (staging,))
        wait_for_backends(warehouse_uri, ('INSERT INTO "songplays"', "advisory"),
                          ('LOCK TABLE "songplays"', "relation"), count=2, processes=processes)
        holder.execute("SELECT pg_advisory_unlock(%s)", (facts,))
        results = [result for process in processes for result in finish_runner(process)]
    assert len({result["run_id"] for result in results}) == 2
    assert not any(result["retried"] for result in results), results
    assert_exact(warehouse_uri, reference(source, 0, 0))


def test_two_make_backfills_started_together_over_overlapping_ranges(source, warehouse_uri):
    """`make backfill` twice at the same moment: the day (one daily run), and the day plus the next
    day's first two hours (no objects there: loaded empty by policy). Both succeed, one waiting for
    the other's run of the day, and leave the reference warehouse."""
    def make_backfill(last: int) -> subprocess.Popen:
        return subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed", "backfill",
             f"PY={sys.executable}", f"FROM={hour(0)}", f"TO={hour(last)}", f"SOURCE={source.as_uri()}",
             f"WAREHOUSE={warehouse_uri}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "AIRFLOW_VAR_SPARKIFY_MISSING_OBJECTS": "empty"})

    processes = [make_backfill(23), make_backfill(25)]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert_succeeded(process.returncode, stdout, stderr)
    assert "1 of 1 runs succeeded" in outputs[0][0] and "3 of 3 runs succeeded" in outputs[1][0]
    assert_exact(warehouse_uri, reference(source, 0, 25))


def test_a_lone_load_cleared_after_a_restating_run_still_covers_the_restated_hours(
        source, warehouse, warehouse_uri, tmp_path):
    """The day file lands after the 00:00-02:00 runs: the 03:00 run restates 00:00-03:00. Its songplays
    are then lost (deleted by hand) and its load_songplays alone cleared and run again: it reloads every
    hour the run restated, as recorded in the warehouse, not only its own."""
    bucket = tmp_path / "bucket"
    shutil.copytree(source, bucket)
    day_file = bucket / "log_data/2018/11/2018-11-01-events.json"
    held = tmp_path / "held.json"
    shutil.move(day_file, held)
    # The bucket still holds event objects (the next day's, empty), so the hours without theirs are
    # late, not a wrong source.
    (bucket / "log_data/2018/11/2018-11-02-events.json").write_text("")
    finish_runner(start_runner(bucket, warehouse_uri, hour(0), hour(1), hour(2),
                               env={"AIRFLOW_VAR_SPARKIFY_MISSING_OBJECTS": "empty"}))
    shutil.move(held, day_file)
    finish_runner(start_runner(bucket, warehouse_uri, hour(3)))
    assert_exact(warehouse_uri, reference(bucket, 0, 3))
    warehouse.execute("DELETE FROM songplays")
    finish_runner(start_runner(bucket, warehouse_uri, f"{hour(3)}@load_songplays"))
    assert_exact(warehouse_uri, reference(bucket, 0, 3))


def test_create_tables_does_not_wait_behind_writes_in_flight(warehouse, warehouse_uri, monkeypatch):
    """Every run starts with the DDL: with the tables there it must take no lock a load holds
    (CREATE INDEX IF NOT EXISTS did, and deadlocked with loads writing load_audit)."""
    with psycopg.connect(warehouse_uri) as load:
        for table in ("staging_events", "staging_songs", "staged_objects", "load_audit", "songplays"):
            load.execute(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE')
        monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=2s")
        create_tables(warehouse_uri)
