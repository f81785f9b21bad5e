"""A month backfilled under the running scheduler, as a user does it with `airflow backfill create`.

    python bench/airflow_backfill.py [--days 30] [--max-active-runs 2] [--hourly-days 1]

Generates (or reuses) ``--days`` days of public-sized data (270 events a day,
the same folder as bench/pipeline.py), starts the real Airflow services with a
home and databases of their own on a free port (``tools/airflow_services.py``),
unpauses ``sparkify_dwh_daily`` (Airflow 3.3 runs no backfill of a paused DAG)
and times ``airflow backfill create`` over every day, from the command to the
last run's success. The warehouse must then equal, table by table and id by
id, what ``make backfill`` (``tools/backfill.py``, by day) builds from the same
data. ``--hourly-days N`` also backfills ``sparkify_dwh`` over the first N days
hour by hour and extrapolates to the whole range: the cost the daily DAG saves.

Results go to bench/results/airflow_backfill.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from airflow_client.client import DAGPatchBody

from tools import airflow_services, local_pg
from tools.airflow_api import AirflowApi
from tools.airflow_env import file_uri
from tools.generate_data import generate

REPO = Path(__file__).resolve().parents[1]

DATA = REPO / ".local" / "bench"
RESULTS = Path(__file__).resolve().parent / "results"
DAY = datetime(2018, 11, 1, tzinfo=timezone.utc)
DAILY, HOURLY = "sparkify_dwh_daily", "sparkify_dwh"
METADATA_DB, WAREHOUSE_DB, REFERENCE_DB = "bench_airflow_metadata", "bench_airflow", "bench_airflow_reference"
#: Everything the star schema holds, ids included, to compare two warehouses exactly.
TABLES = {
    "songplays": "SELECT * FROM songplays ORDER BY songplay_id",
    "users": "SELECT * FROM users ORDER BY user_id",
    "time": 'SELECT * FROM "time" ORDER BY start_time',
    "songs": "SELECT * FROM songs ORDER BY song_id",
    "artists": "SELECT * FROM artists ORDER BY artist_id",
}
TIMEOUT = 1800


def empty_database(name: str) -> str:
    """The database dropped and created again: its URI."""
    with psycopg.connect(local_pg.ensure_server(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return local_pg.ensure_database(name)


def snapshot(uri: str) -> dict[str, list[tuple]]:
    with psycopg.connect(uri) as connection:
        return {table: connection.execute(query).fetchall() for table, query in TABLES.items()}


def timed_backfill(api: AirflowApi, environ: dict, dag_id: str, first: datetime, last: datetime,
                   max_active_runs: int) -> dict:
    """`airflow backfill create` from first to last logical date (both included), timed from the
    command to the last run's end; every run must succeed."""
    expected = int((last - first) / (timedelta(days=1) if dag_id == DAILY else timedelta(hours=1))) + 1
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", dag_id, "--from-date",
         first.isoformat(), "--to-date", last.isoformat(), "--max-active-runs", str(max_active_runs)],
        env=environ, check=True, stdout=subprocess.DEVNULL,
    )
    command = time.monotonic() - began
    runs = api.wait_for_runs(dag_id, expected, TIMEOUT, run_type=["backfill"])
    wall = time.monotonic() - began
    failed = [run.dag_run_id for run in runs if run.state != "success"]
    if failed or len(runs) != expected:
        raise SystemExit(f"{dag_id}: {len(runs)} runs, expected {expected}; failed: {failed}")
    durations = [(run.end_date - run.start_date).total_seconds() for run in runs]
    return {
        "dag_id": dag_id,
        "runs": expected,
        "max_active_runs": max_active_runs,
        "wall_s": wall,
        "command_s": command,
        "run_median_s": statistics.median(durations),
        "first_start_to_last_end_s": (max(run.end_date for run in runs)
                                      - min(run.start_date for run in runs)).total_seconds(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--max-active-runs", type=int, default=2, help="of the daily backfill (the DAG's: 2)")
    parser.add_argument("--hourly-days", type=int, default=0, help="also backfill this many days hour by hour")
    args = parser.parse_args(argv)

    source = DATA / f"month-{args.days}"
    if not (source / "log_data").exists():
        generate(source, DAY, DAY + timedelta(days=args.days), seed=3)
    last_day = DAY + timedelta(days=args.days - 1)

    print(f"make backfill over {args.days} days (the warehouse to compare with)...", flush=True)
    reference_uri = empty_database(REFERENCE_DB)
    began = time.monotonic()
    subprocess.run([sys.executable, str(REPO / "tools" / "backfill.py"), "--from", DAY.isoformat(),
                    "--to", (last_day + timedelta(hours=23)).isoformat(), "--source", file_uri(source),
                    "--warehouse", reference_uri], check=True, stdout=subprocess.DEVNULL)
    report: dict = {"days": args.days, "make_backfill_s": time.monotonic() - began}

    warehouse = empty_database(WAREHOUSE_DB)
    empty_database(METADATA_DB)
    home = DATA / "airflow-home"
    shutil.rmtree(home, ignore_errors=True)
    began = time.monotonic()
    with airflow_services.running(file_uri(source), warehouse, home, METADATA_DB) as api:
        report["services_start_s"] = time.monotonic() - began
        port = int(api.url.rsplit(":", 1)[1])
        environ = airflow_services.service_environ(port, file_uri(source), warehouse, home, METADATA_DB)
        api.wait_for_dag(DAILY)
        api.dag_api.patch_dag(DAILY, DAGPatchBody(is_paused=False))
        print(f"airflow backfill create --dag-id {DAILY} over {args.days} days "
              f"(--max-active-runs {args.max_active_runs})...", flush=True)
        report["daily"] = timed_backfill(api, environ, DAILY, DAY, last_day, args.max_active_runs)
        if snapshot(warehouse) != snapshot(reference_uri):
            raise SystemExit("the warehouse differs from make backfill's")
        report["same_warehouse_as_make_backfill"] = True
        if args.hourly_days:
            api.dag_api.patch_dag(HOURLY, DAGPatchBody(is_paused=False))
            print(f"airflow backfill create --dag-id {HOURLY} over {args.hourly_days} days...", flush=True)
            hourly = timed_backfill(api, environ, HOURLY, DAY, DAY + timedelta(days=args.hourly_days, hours=-1), 4)
            hourly["estimate_for_all_days_s"] = hourly["wall_s"] * args.days / args.hourly_days
            report["hourly"] = hourly

    daily = report["daily"]
    print(f"\n{args.days} days with `airflow backfill create` under the scheduler: {daily['wall_s']:.0f} s wall "
          f"(command {daily['command_s']:.1f} s, median run {daily['run_median_s']:.1f} s, "
          f"{daily['max_active_runs']} at a time); same warehouse as make backfill "
          f"({report['make_backfill_s']:.0f} s)")
    if "hourly" in report:
        hourly = report["hourly"]
        print(f"hour by hour: {hourly['runs']} runs in {hourly['wall_s']:.0f} s (median run "
              f"{hourly['run_median_s']:.1f} s, 4 at a time) → about {hourly['estimate_for_all_days_s']:.0f} s "
              f"for {args.days} days")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "airflow_backfill.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'airflow_backfill.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
