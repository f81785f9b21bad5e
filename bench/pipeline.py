"""Pipeline benchmark: a big interval end to end, the song catalog, a month of backfill.

    python bench/pipeline.py [--events 1000000] [--songs 100000] [--days 30] [--repeats 3]

- ``interval``: one interval holding ``--events`` events through every task
  of the DAG (stage events and songs, songplays, four dimensions, checks),
  called in order in one process; the ratio is to staging the events alone.
- ``catalog``: first load of ``--songs`` song files by the incremental song
  staging, then the same with nothing new.
- ``backfill``: ``tools/backfill.py`` over ``--days`` days of public-sized
  data (270 events a day) by day, as ``make backfill`` runs it, against one
  day run hour by hour, whose per-run cost is the baseline; for that day, the
  rows staged against the events in its file (the daily layout under the
  hourly schedule: each object version staged once, where every hourly run
  used to stage the whole day file again).

Results go to bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from tools import local_pg
from tools.airflow_env import connection_json
from tools.ddl import create_tables
from tools.generate_data import generate

REPO = Path(__file__).resolve().parents[1]

DATA = REPO / ".local" / "bench"
RESULTS = Path(__file__).resolve().parent / "results"
DAY = datetime(2018, 11, 1, tzinfo=timezone.utc)
SQL = REPO / "include" / "sql"


def fresh_warehouse(name: str) -> str:
    uri = local_pg.ensure_database(name)
    with psycopg.connect(uri, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    create_tables(uri)
    os.environ["AIRFLOW_CONN_SPARKIFY_WAREHOUSE"] = connection_json(uri)
    return uri


def pipeline_tasks() -> tuple[dict, object, dict]:
    """The DAG's own operators as the daily DAG defines them, its template environment and
    the default values of its params (a scheduled run's)."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["sparkify_dwh_daily"]
    skipped = ("begin", "end", "create_tables", "wait_for_events")  # no warehouse work (the objects are there)
    tasks = {task.task_id: task for task in dag.tasks if task.task_id not in skipped}
    return tasks, dag.get_template_env(), dag.params.dump()


def run_task(task, context: dict, environment) -> float:
    """Render the task's templates as Airflow does, then execute it; its seconds."""
    task.render_template_fields(context, environment)
    began = time.perf_counter()
    task.execute(context)
    return time.perf_counter() - began


def interval(events: int, repeats: int) -> dict:
    source = DATA / f"events-{events}"
    if not (source / "log_data").exists():
        generate(source, DAY, DAY + timedelta(days=1), events_per_day=events, songs=1000, users=500, seed=1)
    from airflow.sdk.execution_time.context import VariableAccessor

    os.environ["AIRFLOW_VAR_SPARKIFY_SOURCE"] = source.as_uri()
    runs = []
    for attempt in range(repeats):
        fresh_warehouse("bench_pipeline")
        tasks, environment, params = pipeline_tasks()
        context = {"run_id": f"bench_{attempt}", "data_interval_start": DAY,
                   "data_interval_end": DAY + timedelta(days=1), "params": params,
                   "var": {"value": VariableAccessor(deserialize_json=False)}}
        runs.append({task_id: run_task(task, context, environment) for task_id, task in tasks.items()})
    totals = [sum(run.values()) for run in runs]
    staging = [run["stage_events"] for run in runs]
    return {
        "events": events,
        "tasks_median_s": {task_id: statistics.median(run[task_id] for run in runs) for task_id in runs[0]},
        "total_median_s": statistics.median(totals),
        "stage_events_median_s": statistics.median(staging),
        "ratio_total_to_staging": statistics.median(t / s for t, s in zip(totals, staging, strict=True)),
    }


def catalog(songs: int) -> dict:
    from sparkify import StageToRedshiftOperator

    source = DATA / f"songs-{songs}"
    if not (source / "song_data").exists():
        generate(source, DAY, DAY, songs=songs, seed=2)
    fresh_warehouse("bench_catalog")
    operator = StageToRedshiftOperator(
        task_id="stage_songs", table="staging_songs", source=source.as_uri(), s3_key="song_data/",
        jsonpaths="jsonpaths/song_data.json", catalog_key="song_id",
    )
    seconds = {}
    for run in ("first_load", "nothing_new"):
        began = time.perf_counter()
        operator.execute({"run_id": run, "data_interval_start": DAY, "data_interval_end": DAY + timedelta(hours=1)})
        seconds[run] = time.perf_counter() - began
    return {"songs": songs, **{f"{run}_s": value for run, value in seconds.items()}}


def backfill(days: int) -> dict:
    source = DATA / f"month-{days}"
    if not (source / "log_data").exists():
        generate(source, DAY, DAY + timedelta(days=days), seed=3)

    def timed(*extra: str, last: datetime) -> tuple[float, list[float], int]:
        uri = fresh_warehouse("bench_backfill")
        began = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(REPO / "tools" / "backfill.py"), "--from", DAY.isoformat(), "--to", last.isoformat(),
             "--source", source.as_uri(), "--warehouse", uri, *extra],
            capture_output=True, text=True, check=True,
        )
        per_run = [float(line.split()[-2]) for line in result.stdout.splitlines() if line.startswith("[")]
        with psycopg.connect(uri) as connection:
            (staged,) = connection.execute(
                "SELECT COALESCE(SUM(rows_written), 0) FROM load_audit WHERE task_id = 'stage_events'").fetchone()
        return time.perf_counter() - began, per_run, int(staged)  # SUM is a NUMERIC

    by_day, day_runs, _ = timed(last=DAY + timedelta(days=days) - timedelta(hours=1))
    one_day_hourly, hour_runs, staged = timed("--hourly", last=DAY + timedelta(hours=23))
    hourly_estimate = statistics.median(hour_runs) * 24 * days
    # The day and, through the spill, the next one (none when only one day was generated).
    day_files = [source / f"log_data/{DAY + timedelta(days=offset):%Y/%m/%Y-%m-%d}-events.json" for offset in (0, 1)]
    events = sum(sum(1 for line in path.open() if line.strip()) for path in day_files if path.exists())
    return {
        "days": days,
        "by_day_wall_s": by_day,
        "by_day_run_median_s": statistics.median(day_runs),
        "hourly_run_median_s": statistics.median(hour_runs),
        "hourly_estimate_s": hourly_estimate,
        "ratio_hourly_estimate_to_by_day": hourly_estimate / by_day,
        "hourly_day_rows_staged": staged,
        "hourly_day_events_in_files_read": events,
        "ratio_rows_staged_to_events": staged / events,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--songs", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    report = {"interval": interval(args.events, args.repeats)}
    result = report["interval"]
    print(f"One interval of {result['events']:,} events, end to end (medians of {args.repeats}):")
    for task_id, seconds in result["tasks_median_s"].items():
        print(f"  {task_id:<20} {seconds:7.2f} s")
    print(f"  total {result['total_median_s']:.1f} s = {result['ratio_total_to_staging']:.2f}x staging alone")

    report["catalog"] = catalog(args.songs)
    result = report["catalog"]
    print(f"\nSong catalog of {result['songs']:,} files: first load {result['first_load_s']:.1f} s, "
          f"nothing new {result['nothing_new_s']:.1f} s")

    report["backfill"] = backfill(args.days)
    result = report["backfill"]
    print(f"\nBackfill of {result['days']} days by day: {result['by_day_wall_s']:.1f} s wall "
          f"({result['by_day_run_median_s']:.2f} s a day run); hour by hour it would take about "
          f"{result['hourly_estimate_s']:.0f} s ({result['hourly_run_median_s']:.2f} s an hour run): "
          f"{result['ratio_hourly_estimate_to_by_day']:.1f}x")
    print(f"The day hour by hour staged {result['hourly_day_rows_staged']:,} event rows for the "
          f"{result['hourly_day_events_in_files_read']:,} events of the day files it read: "
          f"{result['ratio_rows_staged_to_events']:.2f}x (every hourly run used to stage the day file again: 24x)")

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'pipeline.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
