"""The big hour: `make backfill` of one hour holding 2,000,000 events, against a server-side CSV COPY
of the same rows, measured side by side.

    python bench/big_hour.py [--repeats 3] [--events-per-day 30190000] [--songs 20000] [--users 1000]

The project's generator writes one hour of about 2,000,000 events (the daily layout: one file of
about 950 MB) and 20,000 song files into ``.local/bench/big-hour`` (once, kept), and the same events
as one CSV file (once, outside the timing). Then, each repeated and interleaved:

- ``copy_csv``: the **baseline**, ``COPY staging_events (…) FROM '<file>' (FORMAT csv)`` run by the
  server itself into a fresh ``staging_events`` (with its index), as one statement;
- ``backfill``: the command ``make backfill FROM=… TO=… SOURCE=… WAREHOUSE=…`` runs
  (``tools/backfill.py``), timed from start to exit, into a fresh warehouse, with each task's
  seconds read back from Airflow's metadata database;
- ``base`` (with ``--base DIR``, a checkout of another commit, e.g. ``git worktree add --detach DIR
  main``): the same command from that checkout (its DAG, plugins and SQL, this virtualenv and this
  embedded PostgreSQL), so a change is measured against what it changes in the same minutes.

Both databases are emptied after each measurement, and a CHECKPOINT precedes each, so that neither
inherits the other's autovacuum or WAL. The warehouse must hold exactly one songplay per NextSong
event, one time row per play (every generated event has its own ts) and every song, or the script
fails. Results go to bench/results/big_hour.json; bench/README.md explains them.
"""

from __future__ import annotations

import argparse
import csv
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
from tools.ddl import create_tables
from tools.generate_data import generate

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".local" / "bench"
RESULTS = Path(__file__).resolve().parent / "results"
HOUR = datetime(2018, 11, 1, tzinfo=timezone.utc)
DAY_KEY = "log_data/2018/11/2018-11-01-events.json"
FIELDS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level", "location",
          "method", "page", "registration", "sessionId", "song", "status", "ts", "userAgent", "userId"]
COLUMNS = ("artist, auth, first_name, gender, item_in_session, last_name, length, level, location, method, page, "
           "registration, session_id, song, status, ts, user_agent, user_id, object_key, batch_id")


def source(events_per_day: int, songs: int, users: int) -> tuple[Path, dict]:
    """The big hour's bucket, generated once; the generator's summary (kept beside it)."""
    folder = DATA / "big-hour"
    summary_path = folder / "summary.json"
    if not summary_path.exists():
        summary = generate(folder, HOUR, HOUR + timedelta(hours=1), events_per_day=events_per_day, songs=songs,
                           users=users, seed=23)
        summary_path.write_text(json.dumps(summary))
    return folder, json.loads(summary_path.read_text())


def csv_file(folder: Path) -> Path:
    """The hour's events as CSV rows of staging_events (made once, outside the timing)."""
    path = folder / "events.csv"
    if not path.exists():
        with open(folder / DAY_KEY, "rb") as stream, open(path.with_suffix(".tmp"), "w", newline="") as output:
            writer = csv.writer(output)
            for line in stream:
                if line.strip():
                    record = json.loads(line)
                    writer.writerow([record[field] for field in FIELDS] + [DAY_KEY, "bench"])
        path.with_suffix(".tmp").rename(path)
    return path


def empty(uri: str) -> None:
    with psycopg.connect(uri, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
        connection.execute("CHECKPOINT")


def copy_csv(uri: str, path: Path) -> float:
    """The baseline: the server reads the CSV file itself, into a fresh staging_events."""
    empty(uri)
    create_tables(uri)
    with psycopg.connect(uri, autocommit=True) as connection:
        began = time.perf_counter()
        connection.execute(f"COPY staging_events ({COLUMNS}) FROM '{path}' (FORMAT csv)")
        seconds = time.perf_counter() - began
    empty(uri)
    return seconds


def task_seconds(began: datetime) -> dict[str, float]:
    """Each task's seconds in the run that started after ``began``, from Airflow's metadata database."""
    with psycopg.connect(local_pg.database_uri("airflow")) as connection:
        rows = connection.execute(
            "SELECT task_id, EXTRACT(EPOCH FROM end_date - start_date) FROM task_instance "
            "WHERE dag_id = 'sparkify_dwh' AND start_date >= %s ORDER BY start_date", (began,)).fetchall()
    return {task_id: float(seconds) for task_id, seconds in rows}


def backfill(uri: str, folder: Path, expected: dict, checkout: Path = REPO) -> tuple[float, dict[str, float]]:
    """`make backfill` of the hour (the command the Makefile runs) from a checkout, timed from start to exit."""
    empty(uri)
    hour = HOUR.strftime("%Y-%m-%dT%H:%M")
    # Another checkout's packages come first; the server is this one's.
    env = {**os.environ, "PYTHONPATH": f"{checkout / 'plugins'}{os.pathsep}{checkout}",
           "SPARKIFY_PGDATA": str(local_pg.data_dir())}
    began_at = datetime.now(timezone.utc)
    began = time.perf_counter()
    subprocess.run([sys.executable, str(checkout / "tools" / "backfill.py"), "--from", hour, "--to", hour,
                    "--source", folder.as_uri(), "--warehouse", uri], check=True, capture_output=True, text=True,
                   env=env)
    seconds = time.perf_counter() - began
    with psycopg.connect(uri) as connection:
        counts = {table: connection.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                  for table in ("songplays", "time", "songs")}
    wanted = {"songplays": expected["next_song_events"], "time": expected["next_song_events"],
              "songs": expected["song_files"]}
    if counts != wanted:
        raise SystemExit(f"the warehouse holds {counts}, not {wanted}")
    tasks = task_seconds(began_at)
    empty(uri)
    return seconds, tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events-per-day", type=int, default=30_190_000,
                        help="the generator's daily rate; 30,190,000 puts about 2,000,000 events in the first hour")
    parser.add_argument("--songs", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--base", type=Path, help="a checkout of another commit, measured in the same run")
    args = parser.parse_args(argv)

    folder, summary = source(args.events_per_day, args.songs, args.users)
    path = csv_file(folder)
    baseline_uri = local_pg.ensure_database("bench_copy")
    warehouse_uri = local_pg.ensure_database("bench_big_hour")
    copies, runs, tasks, bases, base_tasks = [], [], [], [], []
    for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all alike
        copies.append(copy_csv(baseline_uri, path))
        seconds, by_task = backfill(warehouse_uri, folder, summary)
        runs.append(seconds)
        tasks.append(by_task)
        line = f"  copy_csv {copies[-1]:6.1f} s   backfill {runs[-1]:6.1f} s   {runs[-1] / copies[-1]:5.2f}x"
        if args.base:
            seconds, by_task = backfill(warehouse_uri, folder, summary, args.base.resolve())
            bases.append(seconds)
            base_tasks.append(by_task)
            line += f"   base {bases[-1]:6.1f} s   {bases[-1] / copies[-1]:5.2f}x"
        print(f"{line}   load {os.getloadavg()[0]:.1f}", flush=True)
    report = {
        "events": summary["events"],
        "plays": summary["next_song_events"],
        "song_files": summary["song_files"],
        "file_bytes": (folder / DAY_KEY).stat().st_size,
        "load_average_at_end": os.getloadavg(),
        "copy_csv_s": copies,
        "backfill_s": runs,
        "copy_csv_median_s": statistics.median(copies),
        "backfill_median_s": statistics.median(runs),
        "ratio_median": statistics.median(run / copy for run, copy in zip(runs, copies, strict=True)),
        "tasks_median_s": {task: statistics.median(run.get(task, 0.0) for run in tasks) for task in tasks[0]},
    }
    if bases:
        report["base"] = {
            "checkout": str(args.base),
            "commit": subprocess.run(["git", "-C", str(args.base), "rev-parse", "HEAD"], capture_output=True,
                                     text=True).stdout.strip(),
            "backfill_s": bases,
            "backfill_median_s": statistics.median(bases),
            "ratio_median": statistics.median(base / copy for base, copy in zip(bases, copies, strict=True)),
            "tasks_median_s": {task: statistics.median(run.get(task, 0.0) for run in base_tasks)
                               for task in base_tasks[0]},
        }
    print(f"\nThe big hour: {report['events']:,} events ({report['plays']:,} plays, "
          f"{report['file_bytes'] / 1e6:,.0f} MB) and {report['song_files']:,} song files, medians of {args.repeats}:")
    print(f"  server-side CSV COPY   {report['copy_csv_median_s']:6.1f} s")
    print(f"  make backfill          {report['backfill_median_s']:6.1f} s   = {report['ratio_median']:.2f}x the COPY")
    base = report.get("base", {})
    if base:
        print(f"  base ({base['commit'][:7]})         {base['backfill_median_s']:6.1f} s   = "
              f"{base['ratio_median']:.2f}x the COPY")
    for task, seconds in report["tasks_median_s"].items():
        before = f"   (base {base['tasks_median_s'].get(task, 0.0):6.2f} s)" if base else ""
        print(f"    {task:<20} {seconds:6.2f} s{before}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "big_hour.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'big_hour.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
