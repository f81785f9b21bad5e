"""Run the real ``sparkify_dwh`` DAG over every hour from FROM to TO (inclusive).

    python tools/backfill.py --from 2018-11-01T00:00 --to 2018-11-01T23:00 \\
        [--source file:///data/bucket | s3://bucket/prefix] [--warehouse postgresql://…] [--reverse]

Each hour is one ``dag.test()`` run, all in this one process: no scheduler to
start, and Airflow's start-up is paid once rather than per run. Runs are
recorded in the metadata database (``airflow`` on the embedded PostgreSQL) like
any other, so the UI shows them. ``dag.test(logical_date=X)`` gives a run the
interval a manual trigger at X would get, the hour *before* X; to load the hour
starting at H we pass H + 1 hour.

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
DAG_ID = "sparkify_dwh"
#: dag.test() waits out a retry's delay in-process; five minutes per retry would stall
#: the whole backfill, so here a failed task retries after a few seconds.
RETRY_DELAY = timedelta(seconds=5)


@dataclass
class RunResult:
    hour: datetime
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


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Every hour from start to end, both included."""
    count = int((end - start) / HOUR) + 1
    return [start + i * HOUR for i in range(max(count, 0))]


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


def _load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"the DAG folder does not import: {bag.import_errors}")
    dag = bag.dags[DAG_ID]
    for task in dag.tasks:
        task.retry_delay = RETRY_DELAY
    return dag


def run_backfill(start: datetime, end: datetime, source: str, warehouse: str, reverse: bool = False) -> list[RunResult]:
    """Run the DAG for each hour; one result per hour, in the order run."""
    hours = hours_between(start, end)
    if reverse:
        hours.reverse()
    _prepare_airflow(source, warehouse)
    dag = _load_dag()
    print(f"Backfilling {len(hours)} hours of {DAG_ID}: {source} → {masked(warehouse)}", flush=True)
    results = []
    for number, hour in enumerate(hours, start=1):
        began = time.monotonic()
        run = dag.test(logical_date=hour + HOUR)
        failed = sorted(ti.task_id for ti in run.get_task_instances() if ti.state == "failed")
        result = RunResult(hour, str(run.state), time.monotonic() - began, failed)
        results.append(result)
        detail = f"  failed: {', '.join(failed)}" if failed else ""
        print(
            f"[{number:>{len(str(len(hours)))}}/{len(hours)}] {hour:%Y-%m-%d %H:%M} → {hour + HOUR:%H:%M} UTC"
            f"  {result.state:<7} {result.seconds:5.1f} s{detail}",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="start", required=True, type=parse_hour, help="first hour, ISO, UTC")
    parser.add_argument("--to", dest="end", required=True, type=parse_hour, help="last hour (included)")
    parser.add_argument("--source", default="", help="base URI of the bucket (default: the generated sample)")
    parser.add_argument("--warehouse", default="", help="postgresql:// URI (default: the embedded PostgreSQL)")
    parser.add_argument("--reverse", action="store_true", help="run the newest hour first")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--to is before --from")
    source = args.source or file_uri(DEFAULT_SOURCE)
    if source.startswith("file://") and not Path(source[len("file://"):]).is_dir():
        parser.error(f"no source folder at {source} (run `make sample-data`, or give SOURCE=)")
    warehouse = args.warehouse or local_pg.ensure_database("sparkify")
    logging.getLogger("airflow").setLevel(logging.WARNING)

    began = time.monotonic()
    results = run_backfill(args.start, args.end, source, warehouse, reverse=args.reverse)
    failed = [result for result in results if result.state != "success"]
    print(
        f"{len(results) - len(failed)} of {len(results)} runs succeeded in {time.monotonic() - began:.1f} s",
        flush=True,
    )
    for result in failed:
        print(f"  FAILED {result.hour:%Y-%m-%d %H:%M} UTC: {', '.join(result.failed_tasks) or result.state}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
