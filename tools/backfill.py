"""Run the real pipeline over every hour from FROM to TO (both included).

    python tools/backfill.py --from 2018-11-01T00:00 --to 2018-11-01T23:00 \\
        [--source file:///data/bucket | s3://bucket/prefix] [--warehouse postgresql://…] [--hourly] [--reverse]

Whole UTC days in the range run as one ``sparkify_dwh_daily`` run each, the
hours at either edge as ``sparkify_dwh`` runs: the same pipeline and SQL over
a longer interval give the same warehouse, and a day costs Airflow's per-task
overhead once instead of 24 times. ``--hourly`` runs every hour on its own.

Every run is one ``dag.test()``, all in this one process: no scheduler to
start, and Airflow's start-up is paid once. Runs are recorded in the metadata
database (``airflow`` on the embedded PostgreSQL) like any other, so the UI
shows them. ``dag.test(logical_date=X)`` gives a run the interval a manual
trigger at X would get, the one *ending* at X; to load the interval starting
at S we pass S plus the interval's length.

The warehouse defaults to the embedded PostgreSQL's ``sparkify`` database and
the source to the generated sample in ``.local/sample``. Exits non-zero if any
run failed; the other hours still run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import local_pg  # noqa: E402
from tools.airflow_env import DEFAULT_SOURCE, airflow_environ, file_uri, masked  # noqa: E402

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOURLY, DAILY = "sparkify_dwh", "sparkify_dwh_daily"
#: dag.test() waits out a retry's delay in-process; five minutes per retry would stall
#: the whole backfill, so here a failed task retries after a few seconds.
RETRY_DELAY = timedelta(seconds=5)


@dataclass
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
    failed_tasks: list[str]


def parse_hour(text: str) -> datetime:
    """An ISO timestamp (UTC unless it says otherwise), which must fall on the hour."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    if moment.minute or moment.second or moment.microsecond:
        raise argparse.ArgumentTypeError(f"{text!r} is not on the hour")
    return moment


def plan_runs(first_hour: datetime, last_hour: datetime, hourly: bool = False) -> list[Run]:
    """Runs covering every hour from first to last: whole days as daily runs unless ``hourly``."""
    runs, moment, stop = [], first_hour, last_hour + HOUR
    while moment < stop:
        if not hourly and moment.hour == 0 and moment + DAY <= stop:
            runs.append(Run(DAILY, moment, DAY))
        else:
            runs.append(Run(HOURLY, moment, HOUR))
        moment += runs[-1].length
    return runs


def _prepare_airflow(source: str, warehouse: str) -> None:
    """Configure, then import Airflow (it reads its configuration once, at import)."""
    os.environ.update(airflow_environ(warehouse, source))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from airflow import settings
    from airflow.utils import db

    if settings.Session is None:
        settings.configure_orm()
    try:
        db.check_migrations(timeout=1)
    except TimeoutError:
        print("Creating Airflow's metadata database…", flush=True)
        db.initdb()


def _load_dags() -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"the DAG folder does not import: {bag.import_errors}")
    for dag in bag.dags.values():
        for task in dag.tasks:
            task.retry_delay = RETRY_DELAY
    return bag.dags


def run_backfill(
    first_hour: datetime, last_hour: datetime, source: str, warehouse: str, *, hourly: bool = False,
    reverse: bool = False,
) -> list[RunResult]:
    """Run the pipeline over every hour from first to last; one result per run, in the order run."""
    runs = plan_runs(first_hour, last_hour, hourly)
    if reverse:
        runs.reverse()
    _prepare_airflow(source, warehouse)
    dags = _load_dags()
    hours = int((last_hour + HOUR - first_hour) / HOUR)
    print(f"Backfilling {hours} hours in {len(runs)} runs: {source} → {masked(warehouse)}", flush=True)
    results = []
    for number, run in enumerate(runs, start=1):
        began = time.monotonic()
        dag_run = dags[run.dag_id].test(logical_date=run.start + run.length)
        failed = sorted(ti.task_id for ti in dag_run.get_task_instances() if ti.state == "failed")
        result = RunResult(run, str(dag_run.state), time.monotonic() - began, failed)
        results.append(result)
        detail = f"  failed: {', '.join(failed)}" if failed else ""
        print(
            f"[{number:>{len(str(len(runs)))}}/{len(runs)}] {run}  {result.state:<7} {result.seconds:5.1f} s"
            f"{detail}",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="start", required=True, type=parse_hour, help="first hour, ISO, UTC")
    parser.add_argument("--to", dest="end", required=True, type=parse_hour, help="last hour (included)")
    parser.add_argument("--source", default="", help="base URI of the bucket (default: the generated sample)")
    parser.add_argument("--warehouse", default="", help="postgresql:// URI (default: the embedded PostgreSQL)")
    parser.add_argument("--hourly", action="store_true", help="one run per hour, even for whole days")
    parser.add_argument("--reverse", action="store_true", help="run the newest interval first")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--to is before --from")
    source = args.source or file_uri(DEFAULT_SOURCE)
    if source.startswith("file://") and not Path(source[len("file://"):]).is_dir():
        parser.error(f"no source folder at {source} (run `make sample-data`, or give SOURCE=)")
    warehouse = args.warehouse or local_pg.ensure_database("sparkify")
    logging.getLogger("airflow").setLevel(logging.WARNING)

    began = time.monotonic()
    results = run_backfill(args.start, args.end, source, warehouse, hourly=args.hourly, reverse=args.reverse)
    failed = [result for result in results if result.state != "success"]
    print(
        f"{len(results) - len(failed)} of {len(results)} runs succeeded in {time.monotonic() - began:.1f} s",
        flush=True,
    )
    for result in failed:
        print(f"  FAILED {result.run}: {', '.join(result.failed_tasks) or result.state}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
