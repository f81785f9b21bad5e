"""Run the real pipeline over every hour from FROM to TO (both included, UTC).

    python tools/backfill.py --from 2018-11-01T00:00 --to 2018-11-01T23:00 \\
        [--source file:///data/bucket | s3://bucket/prefix] [--warehouse postgresql://… | redshift://… | JSON]
        [--hourly] [--reverse]

FROM and TO name interval starts: ``--to 2018-11-01T23:00`` loads up to
midnight. Whole UTC days in the range run as one ``sparkify_dwh_daily`` run
each (when the DAG folder has that DAG), the hours at either edge as
``sparkify_dwh`` runs: the same pipeline and SQL over a longer interval give
the same warehouse, and a day pays Airflow's per-task cost once instead of 24
times. ``--hourly`` runs every hour on its own; ``--reverse`` runs the newest
interval first.

Every run is one ``dag.test()``, all in this one process: no scheduler, and
Airflow's start-up (metadata check, DAG parse) is paid once. The metadata
database is ``airflow`` on the embedded PostgreSQL, migrated on first use, so
runs are recorded like any other and the UI shows them, with the wall-clock
time each started (``dag.test()`` itself records the logical date as the start,
which the UI would show as a run of years).

Which interval a run loads: ``dag.test(logical_date=X)`` asks the timetable
for the interval of a *manual* run at X, which for the DAGs' timetable
(``plugins/sparkify/timetables.py``) is the one X falls in. So to load the
interval starting at S we pass ``logical_date = S``; the run shows in the UI
with that logical date and the data interval ``[S, S + length)``, as a
scheduled or backfill run of S would. Its run id is ``manual__<S>`` every
time: ``dag.test()`` replaces an earlier run of the interval, and the new one
must own the same staging batch (otherwise the song files a killed run staged
would never reach ``songs``: the re-run would find them staged and load
nothing).

The console gets one line per run; Airflow's and the tasks' logs go to
``$AIRFLOW_HOME/logs/backfill/`` (the first lines say which file), and a failed
run prints each failed task's error. A failed task retries after seconds, not
the DAG's minutes: ``dag.test()`` waits out the delay in this process. The
other intervals still run; the exit status is 1 if any run failed.

Two backfills may run at once against the same embedded PostgreSQL: runs
whose intervals start on the same UTC day take turns (a PostgreSQL advisory
lock), so they never replace each other's run records or interleave their
writes to the same hours. The lock is the metadata database's, whatever the
warehouse: Airflow keeps one run per DAG and logical date there, so two
backfills of one day into two warehouses would replace each other's run. If
that database restarts, the lock connection is opened again (the locks ended
with the old one); a run that cannot get its lock fails, and the others go on.

Before the first run the warehouse must answer within its connect timeout,
and the source must open as the staging tasks open it (same URI reading, same
errors): a wrong SOURCE or a warehouse that never answers fails in seconds,
not run after run. SIGTERM or SIGINT (Ctrl-C) stops the backfill: the run in
flight fails without retrying (each task's transaction rolls back), the runs
not started are listed, the summary printed, and the exit status is 128 plus
the signal's number; a second signal ends the process at once.

The warehouse defaults to the embedded PostgreSQL's ``sparkify`` database and
the source to the generated sample in ``.local/sample``. It may also be Amazon Redshift: a
``redshift://`` URI or connection JSON (``tools/airflow_env.py``'s ``warehouse_connection``: the
driver, or the Data API with ``"use_data_api": true``), with an ``s3://`` source and AWS
credentials from the usual sources (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``…, an instance role, or an
``AIRFLOW_CONN_AWS_DEFAULT``). Then, before the first run, the warehouse must answer ``SELECT 1``
within REDSHIFT_CHECK_SECONDS, and the Variable ``sparkify_manifest_prefix`` must be an ``s3://``
prefix (song staging writes its COPY manifests there); ``sparkify_iam_role`` is what COPY should
assume (without it, COPY gets the AWS connection's keys). A stop signal cancels nothing on
Redshift: the statement in flight ends with its session, when this process exits.

What starts Airflow for the runs is public (``output_to``, ``MetadataLocks``,
``migrate_if_needed``, ``load_dags``, ``parse_hour``): the fault tests' runner,
``tests/support/dag_runner.py``, starts it the same way and runs hours without
the day lock.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

import psycopg
from psycopg.conninfo import make_conninfo

from tools import local_pg
from tools.airflow_env import (
    CONNECT_TIMEOUT,
    DEFAULT_SOURCE,
    WarehouseError,
    airflow_environ,
    file_uri,
    masked,
    postgres_conninfo,
    warehouse_connection,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOURLY, DAILY = "sparkify_dwh", "sparkify_dwh_daily"
#: dag.test() waits out a retry's delay in-process; the DAG's minutes per retry would
#: stall the whole backfill, so here a failed task retries after a few seconds.
RETRY_DELAY = timedelta(seconds=5)
#: How much of a failed task's error the console shows (the log file has all of it).
ERROR_LINES, ERROR_WIDTH = 6, 200
#: How long the lock connection tries to reach a metadata database that went away (a restart).
RECONNECT_SECONDS = 60
#: How long a Redshift warehouse (driver or Data API) has to answer the first SELECT 1: a Serverless
#: workgroup may resume from a pause first.
REDSHIFT_CHECK_SECONDS = 120


@dataclass(frozen=True)
class Run:
    dag_id: str
    start: datetime
    length: timedelta

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} → {self.start + self.length:%Y-%m-%d %H:%M} UTC"


@dataclass
class RunResult:
    run: Run
    state: str
    seconds: float
    #: Failed task id → its error (the exception, or what stopped the run).
    errors: dict[str, str] = field(default_factory=dict)


def parse_hour(text: str) -> datetime:
    """An ISO timestamp (UTC unless it says otherwise), which must fall on the hour."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    if moment.minute or moment.second or moment.microsecond:
        raise argparse.ArgumentTypeError(f"{text!r} is not on the hour")
    return moment


def plan_runs(first_hour: datetime, last_hour: datetime, by_day: bool) -> list[Run]:
    """Runs covering every hour from first to last, whole UTC days as one daily run if ``by_day``."""
    runs, moment, stop = [], first_hour, last_hour + HOUR
    while moment < stop:
        if by_day and moment.hour == 0 and moment + DAY <= stop:
            runs.append(Run(DAILY, moment, DAY))
        else:
            runs.append(Run(HOURLY, moment, HOUR))
        moment += runs[-1].length
    return runs


@contextmanager
def output_to(log_path: Path) -> Generator[TextIO, None, None]:
    """Send everything this process writes to stdout and stderr (Airflow's logs, the tasks'
    logs and prints) to a file; yield a stream to the real console."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    with log_path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    console = open(saved_out, "w", encoding="utf-8", closefd=False)
    try:
        yield console
    finally:
        console.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)


#: Locks this process has already said it waits for: once is news, every hour is noise.
_announced_waits: set[str] = set()


class MetadataLocks:
    """PostgreSQL advisory locks on the metadata database (every backfill process asks for the same
    names), over one connection that is opened again when the server restarted under it."""

    def __init__(self, uri: str, console: TextIO) -> None:
        self.uri, self.console = uri, console
        self.connection: psycopg.Connection | None = None

    def _connected(self, fresh: bool = False) -> psycopg.Connection:
        """The lock connection; a new one if asked or if the old one broke, tried for RECONNECT_SECONDS."""
        if self.connection is not None and not fresh and not self.connection.broken:
            return self.connection
        self.close()
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            try:
                self.connection = psycopg.connect(self.uri, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
                return self.connection
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def _lock(self, key: tuple[str], name: str) -> psycopg.Connection:
        try:
            connection = self._connected()
            (got,) = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", key).fetchone()
        except psycopg.OperationalError:  # the server restarted since the last lock: a new session
            connection = self._connected(fresh=True)
            (got,) = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", key).fetchone()
        if not got:
            if name not in _announced_waits:
                _announced_waits.add(name)
                print(f"        another backfill holds {name}: taking turns", file=self.console, flush=True)
            connection.execute("SELECT pg_advisory_lock(hashtext(%s))", key)
        return connection

    @contextmanager
    def hold(self, name: str) -> Generator[None, None, None]:
        """Hold the lock ``name``, saying so on the console the first time another process has it."""
        key = (f"sparkify backfill: {name}",)
        connection = self._lock(key, name)
        try:
            yield
        finally:
            try:
                connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", key)
            except psycopg.OperationalError:
                pass  # the connection died, and its locks with it

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class StopSignal:
    """SIGTERM and SIGINT, taken by a thread of their own (blocked in the others): Airflow's task
    runner installs its own SIGTERM handler, which only calls on_kill, for every task it runs, so a
    handler of ours would not last. Nothing is raised into the main thread (it may be inside
    Airflow's in-process API): the first signal cancels the statements in flight, on the warehouse
    (by this process's application_name) and on the lock connection, and every task that starts
    afterwards fails without retry, so the run in flight ends within seconds and no other starts.
    A second signal ends the process at once."""

    SIGNALS = {signal.SIGTERM, signal.SIGINT}

    def __init__(self, warehouse: str | None, application_name: str) -> None:
        self.signum: int | None = None
        self.warehouse, self.application_name = warehouse, application_name
        self.locks: MetadataLocks | None = None
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        threading.Thread(target=self._wait, name="backfill-signals", daemon=True).start()

    def refuse_tasks(self, dags: dict) -> None:
        """Make every task of these DAGs fail at its start, without retry, once a signal came."""
        for dag in dags.values():
            for task in dag.tasks:
                task.pre_execute = self._refuse

    def _refuse(self, context) -> None:
        if self.signum is not None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"make backfill was stopped by {signal.Signals(self.signum).name}")

    def _wait(self) -> None:
        self.signum = signal.sigwait(self.SIGNALS)
        if self.locks is not None and self.locks.connection is not None:
            self.locks.connection.cancel()
        try:
            if self.warehouse is None:  # Redshift: the statement in flight ends with this process's session
                raise psycopg.Error
            with psycopg.connect(self.warehouse, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as connection:
                connection.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                                   "WHERE application_name = %s AND pid <> pg_backend_pid()",
                                   (self.application_name,))
        except psycopg.Error:
            pass  # a warehouse that does not answer runs nothing to cancel; its tasks time out
        signal.sigwait(self.SIGNALS)
        os._exit(128 + self.signum)


def _check_warehouse(uri: str, given: str) -> None:
    """Fail at once, with a clear message naming the warehouse ``given``, if the warehouse (``uri``, libpq)
    does not answer within its connect timeout."""
    try:
        psycopg.connect(uri, connect_timeout=CONNECT_TIMEOUT).close()
    except psycopg.OperationalError as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SystemExit(f"the warehouse {masked(given)} does not answer (connect timeout {CONNECT_TIMEOUT} s): "
                         f"{message}") from None


def _check_redshift(source: str, console: TextIO) -> None:
    """Fail at once, with a clear message, if a Redshift warehouse cannot work: no manifest prefix for
    the catalog's manifests, or a warehouse that does not answer
    ``SELECT 1`` (through the driver or the Data API, as the tasks reach it)."""
    from airflow.models.variable import Variable

    prefix = Variable.get("sparkify_manifest_prefix", default_var=None)
    if not prefix or not str(prefix).startswith("s3://"):
        raise SystemExit("on Redshift, the Variable sparkify_manifest_prefix must be an s3:// prefix the AWS "
                         "identity can write (song staging's COPY manifests), e.g. "
                         "AIRFLOW_VAR_SPARKIFY_MANIFEST_PREFIX=s3://bucket/manifests (docs/redshift.md)")
    if not Variable.get("sparkify_iam_role", default_var=None):
        print("note: no Variable sparkify_iam_role: COPY will be given the AWS connection's keys "
              "(docs/security.md); an IAM role is better", file=console, flush=True)
    answered: list[object] = []

    def ask() -> None:
        from sparkify.warehouse.transactions import transaction, warehouse_hook

        try:
            hook, dialect = warehouse_hook("sparkify_warehouse", log_sql=False)
            with transaction(hook, dialect) as cursor:
                cursor.execute("SELECT 1")
                answered.append(cursor.fetchone())
        except Exception as error:  # the driver's, boto's or Airflow's: all mean the same here
            answered.append(error)

    asking = threading.Thread(target=ask, name="redshift-check", daemon=True)
    asking.start()
    asking.join(REDSHIFT_CHECK_SECONDS)
    if not answered or isinstance(answered[0], Exception):
        reason = (f"{type(answered[0]).__name__}: {answered[0]}" if answered
                  else f"no answer in {REDSHIFT_CHECK_SECONDS} s")
        raise SystemExit(f"the Redshift warehouse does not answer SELECT 1: {reason.splitlines()[0]}")


def _check_source(source: str) -> None:
    """Open the source as the staging tasks will (one reading of URIs, the same errors), once."""
    from airflow.sdk.exceptions import AirflowFailException

    from sparkify.sources.objects import open_source

    try:
        open_source(source, "aws_default")
    except AirflowFailException as error:
        hint = " (run `make sample-data`, or give SOURCE=)" if source == file_uri(DEFAULT_SOURCE) else ""
        raise SystemExit(f"SOURCE {source}: {error}{hint}") from None


#: Where ``migrate_if_needed`` remembers, in ``$AIRFLOW_HOME``, the schema this Airflow installation expects.
SCHEMA_RECORD = "sparkify-metadata-schema.json"


def _installation() -> dict:
    """What decides the metadata schema Airflow expects: its version, the packages installed beside it (a
    provider may bring tables of its own; installing or removing a package changes the folder's modification
    time) and the settings that name database managers."""
    import airflow
    from airflow.configuration import conf

    packages = Path(airflow.__file__).resolve().parents[1]
    return {
        "airflow": airflow.__version__,
        "packages": str(packages),
        "packages_changed_ns": packages.stat().st_mtime_ns,
        "external_db_managers": conf.get("database", "external_db_managers", fallback=""),
        "auth_manager": conf.get("core", "auth_manager", fallback=""),
    }


def _database_heads() -> set[str]:
    """The migration heads the metadata database is at (one query)."""
    from airflow import settings
    from sqlalchemy import text

    with settings.engine.connect() as connection:
        return {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}


def migrate_if_needed() -> str:
    """Bring Airflow's metadata database to this Airflow's schema; what was done.

    Airflow's own check (``check_migrations``) reads every migration script and starts the providers
    manager and the auth manager to find database managers: about 2 s a backfill. Once it has passed, the
    heads it found are recorded with what decides them (``_installation``); a later backfill whose
    installation is the same and whose database is at those heads skips it (one query). Anything else (a new
    database, an upgrade, a package installed, a database manager) takes Airflow's check, and its migration.
    """
    from airflow.utils import db
    from airflow.utils.db_manager import RunDBManager

    record = Path(os.environ["AIRFLOW_HOME"], SCHEMA_RECORD)
    installation = _installation()
    try:
        known = json.loads(record.read_text())
        if known["installation"] == installation and set(known["heads"]) == _database_heads():
            return "up to date"
    except Exception:  # no record yet, a record of another format, a database without Airflow's schema
        pass
    try:
        db.check_migrations(timeout=1)
        done = "up to date"
    except TimeoutError:
        db.initdb()  # creates the schema, or migrates an older one, like `airflow db migrate`
        done = "migrated"
    # Airflow's check passed: its heads are the database's now. Recorded only without database managers
    # of providers or settings (they have migrations of their own, which only Airflow's check reads).
    if not getattr(RunDBManager(), "_managers", [None]):
        written = record.with_name(f"{record.name}.{os.getpid()}")
        written.write_text(json.dumps({"installation": installation, "heads": sorted(_database_heads())}))
        written.replace(record)
    return done


def never_scheduled(dag) -> str | None:
    """The tasks a scheduler never runs (``TaskInstance.is_schedulable``: an EmptyOperator without
    execute or success callbacks, inlets or outlets, which it sets to success at once), as a pattern of
    task ids for ``dag.test(mark_success_pattern=…)``: ``begin`` and ``end``, each of which would cost a
    task's round of Airflow's execution API."""
    empty = sorted(task.task_id for task in dag.tasks if task.inherits_from_empty_operator
                   and not task.on_execute_callback and not task.on_success_callback
                   and not task.outlets and not task.inlets)
    return "|".join(re.escape(task_id) for task_id in empty) or None


def load_dags(dags_folder: str) -> dict:
    """Parse the DAG folder once; make failed tasks retry soon and record their errors; drop the
    DAGs' deadline alerts."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        raise SystemExit(f"the DAG folder {dags_folder} does not import: {bag.import_errors}")
    if HOURLY not in bag.dags:
        raise SystemExit(f"no DAG {HOURLY!r} in {dags_folder}")
    for dag in bag.dags.values():
        # The freshness deadline is for scheduled hours; and in Airflow 3.3 dag.test() fails a run that
        # succeeds while its DAG has one (it looks the serialized alert up in the database as an id).
        dag.deadline = None
        for task in dag.tasks:
            task.retry_delay = RETRY_DELAY
            task.on_failure_callback = [*task.on_failure_callback, _remember_error]
    return bag.dags


#: Errors of the tasks that failed in the current run, by task id (filled by the callback).
_task_errors: dict[str, str] = {}


def _remember_error(context) -> None:
    error = context.get("exception")
    _task_errors[context["ti"].task_id] = f"{type(error).__name__}: {error}" if error else "failed"


def _record_start(dag_run_id: int, started_at: datetime) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.id == dag_run_id).values(start_date=started_at))


def _run_one(dag, run: Run) -> RunResult:
    from airflow import settings

    _task_errors.clear()
    began, started_at = time.monotonic(), datetime.now(timezone.utc)
    try:
        # run_after fixes the run id (manual__<run_after>): a re-run of an interval is the same run,
        # as an Airflow clear is, so its staging replaces its own batch, song files included.
        dag_run = dag.test(logical_date=run.start, run_after=run.start,
                           mark_success_pattern=never_scheduled(dag))
    except Exception as error:  # Airflow itself failed (metadata database, DAG sync): the run did not happen
        settings.Session.remove()  # its transaction failed: the next run needs a fresh session
        return RunResult(run, "error", time.monotonic() - began, {"dag.test": f"{type(error).__name__}: {error}"})
    # dag.test() records the logical date (2018) as the run's start: the UI would show a run of
    # years and scale its duration chart to it. The run really started now.
    _record_start(dag_run.id, started_at)
    seconds = time.monotonic() - began
    errors = {
        ti.task_id: _task_errors.get(ti.task_id, "failed (no error recorded: see the log)")
        for ti in dag_run.get_task_instances()
        if ti.state == "failed"
    }
    return RunResult(run, str(dag_run.state), seconds, errors)


def _error_lines(result: RunResult) -> Iterator[str]:
    """The start of each failed task's error, indented under the run's line."""
    for task_id, error in result.errors.items():
        lines = [line[:ERROR_WIDTH] for line in error.splitlines() if line.strip()][:ERROR_LINES] or [""]
        yield f"        {task_id}: {lines[0]}"
        yield from (f"        {' ' * len(task_id)}  {line}" for line in lines[1:])


def run_backfill(
    first_hour: datetime,
    last_hour: datetime,
    source: str,
    warehouse: str,
    reverse: bool = False,
    *,
    hourly: bool = False,
) -> tuple[list[RunResult], int | None]:
    """Run the pipeline over every hour from first to last (interval starts, UTC, both
    included) and print a line per run; one result per run, in the order run, and the signal
    that stopped the backfill (None if none did).

    Configures and imports Airflow in this process, so call it once per process.
    """
    began = time.monotonic()
    try:
        connection = warehouse_connection(warehouse)
    except WarehouseError as error:
        raise SystemExit(str(error)) from None
    postgres = postgres_conninfo(connection) if connection["conn_type"] == "postgres" else None
    if postgres is None and not source.startswith("s3://"):
        raise SystemExit(f"SOURCE {source}: Redshift's COPY reads from S3: give an s3:// source")
    # The tasks' warehouse sessions carry this name, so that a stop signal can cancel them.
    application_name = f"sparkify backfill {os.getpid()}"
    if postgres is not None:
        os.environ.update(airflow_environ(make_conninfo(postgres, application_name=application_name), source))
        _check_warehouse(postgres, warehouse)
    else:
        os.environ.update(airflow_environ(warehouse, source))
    _check_source(source)
    # Before anything starts a thread: every thread must leave these signals to the signal thread.
    stop = StopSignal(postgres, application_name)
    log_name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{os.getpid()}.log"
    log_path = Path(os.environ["AIRFLOW_HOME"], "logs", "backfill", log_name)
    hours = int((last_hour + HOUR - first_hour) / HOUR)
    print(f"Backfilling {hours} hours: {source} → {masked(warehouse)}", flush=True)
    print(f"Airflow's and the tasks' logs: {log_path}", flush=True)

    with output_to(log_path) as console:
        stop.locks = locks = MetadataLocks(local_pg.database_uri("airflow"), console)
        with locks.hold("the metadata database setup"):
            check_began = time.monotonic()
            metadata = migrate_if_needed()
            check_seconds = time.monotonic() - check_began
        if postgres is None:
            _check_redshift(source, console)
        dags = load_dags(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        stop.refuse_tasks(dags)
        runs = plan_runs(first_hour, last_hour, by_day=DAILY in dags and not hourly)
        if reverse:
            runs.reverse()
        warm_up = time.monotonic() - began
        print(
            f"Warm-up {warm_up:.1f} s (metadata database {metadata} in {check_seconds:.1f} s); "
            f"{len(runs)} {'run' if len(runs) == 1 else 'runs'}",
            file=console,
            flush=True,
        )

        results = []
        width = len(str(len(runs)))
        for number, run in enumerate(runs, start=1):
            if stop.signum is not None:  # came during the warm-up or between two runs
                break
            run_began = time.monotonic()
            try:
                with locks.hold(f"the day {run.start:%Y-%m-%d}"):
                    result = _run_one(dags[run.dag_id], run)
            except psycopg.OperationalError as error:  # the metadata database went away and did not come back
                result = RunResult(run, "error", time.monotonic() - run_began,
                                   {"day lock": f"{type(error).__name__}: {error}"})
            if stop.signum is not None:
                result.state = "stopped"
            results.append(result)
            print(
                f"[{number:>{width}}/{len(runs)}] {run}  {result.state:<7} {result.seconds:5.1f} s",
                *_error_lines(result),
                sep="\n",
                file=console,
                flush=True,
            )
            if stop.signum is not None:
                break
        locks.close()

    failed = sum(result.state != "success" for result in results)
    median = statistics.median(result.seconds for result in results) if results else 0.0
    print(
        f"{len(results) - failed} of {len(results)} runs succeeded in {time.monotonic() - began:.1f} s "
        f"(warm-up {warm_up:.1f} s, median run {median:.1f} s)",
        flush=True,
    )
    for result in results:
        if result.state != "success":
            print(f"  FAILED {result.run}: {', '.join(result.errors) or result.state}", flush=True)
    if stop.signum is not None:
        not_run = runs[len(results):]
        print(f"Stopped by {signal.Signals(stop.signum).name}: {len(not_run)} of {len(runs)} runs not run"
              + (f" ({min(run.start for run in not_run):%Y-%m-%d %H:%M} to "
                 f"{max(run.start + run.length for run in not_run):%Y-%m-%d %H:%M} UTC)" if not_run else ""),
              flush=True)
    return results, stop.signum


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="start", required=True, type=parse_hour, help="first hour, ISO, UTC")
    parser.add_argument("--to", dest="end", required=True, type=parse_hour, help="last hour (included)")
    parser.add_argument("--source", default="", help="base URI of the bucket (default: the generated sample)")
    parser.add_argument("--warehouse", default="", help="postgresql:// or redshift:// URI, or connection JSON "
                        "(default: the embedded PostgreSQL)")
    parser.add_argument("--hourly", action="store_true", help="one run per hour, even for whole days")
    parser.add_argument("--reverse", action="store_true", help="run the newest interval first")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--to is before --from")
    source = args.source or file_uri(DEFAULT_SOURCE)
    warehouse = args.warehouse or local_pg.ensure_database("sparkify")
    results, stopped_by = run_backfill(args.start, args.end, source, warehouse, args.reverse, hourly=args.hourly)
    if stopped_by is not None:
        return 128 + stopped_by
    return 1 if any(result.state != "success" for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
