"""S3 and SQS requests per hourly run: the song catalog with and without the notification queue, and
the event objects against the bucket's history.

    python bench/catalog_requests.py [--sizes 1000 10000 100000] [--history-days 2 30]

Everything runs against moto in server mode (tools/moto_server.py), whose request log counts each
request as AWS bills it, and the embedded PostgreSQL.

- ``catalog``: for each catalog size, a bucket of that many song files whose ``song_data/``
  notifications go to an SQS queue, and a warehouse where the catalog is staged already (its
  ``staged_objects`` records written from one listing, as a full load leaves them: the first load
  of 100,000 files is ``bench/pipeline.py``'s figure). Then ``stage_songs`` as the DAG defines it runs
  for an hour with nothing new and for an hour after one new file was PUT, with the queue set
  (after a full listing recorded in ``catalog_listings``) and without it. Each figure: S3 requests
  by operation, SQS requests, ``staged_objects`` rows the run read back (PostgreSQL's own counters)
  and seconds.
- ``events``: the hourly layout (one object an hour) with ``--history-days`` days of objects in the
  bucket; ``wait_for_events`` and ``stage_events`` of the last hour, after the hour before ran. The
  requests follow the hours a run lists (its own, the spill and the 24-hour look-back), not the
  history.

Results go to bench/results/catalog_requests.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from tools import local_pg
from tools.airflow_env import connection_json
from tools.ddl import create_tables
from tools.generate_data import generate
from tools.moto_server import MotoServer

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[1] / ".local" / "bench"
HOUR = datetime(2018, 11, 30, 12, tzinfo=timezone.utc)
ACCOUNT = "123456789012"


def fresh_warehouse(name: str) -> str:
    uri = local_pg.ensure_database(name)
    with psycopg.connect(uri, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    create_tables(uri)
    os.environ["AIRFLOW_CONN_SPARKIFY_WAREHOUSE"] = connection_json(uri)
    return uri


def song_body(number: int) -> bytes:
    return json.dumps({"num_songs": 1, "artist_id": f"AR{number % 997:05d}", "artist_latitude": None,
                       "artist_longitude": None, "artist_location": "", "artist_name": f"Artist {number % 997}",
                       "song_id": f"SO{number:08d}", "title": f"Song {number}", "duration": 180.0 + number % 97,
                       "year": 2000 + number % 20}).encode()


def song_key(number: int) -> str:
    track = f"TR{random.Random(number).choice('ABCDEFGHIJ')}{number:08d}"
    return f"raw/song_data/{track[2]}/{track[3]}/{track[4]}/{track}.json"


def fill_bucket(bucket: str, size: int) -> None:
    """``size`` song files, written into moto's S3 backend directly (no request, no notification:
    the bucket as it was before this benchmark)."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    for number in range(size):
        backend.put_object(bucket, song_key(number), song_body(number), disable_notification=True)


def seed_staged(uri: str, source: str, listed_at: datetime) -> int:
    """The warehouse as a full load leaves it: a staged_objects record per song file, with its ETag,
    and that listing in catalog_listings (the staging_songs rows are not needed to count requests)."""
    from sparkify.sources.objects import open_source

    objects = open_source(source, "aws_default").list_objects("song_data/")
    with psycopg.connect(uri) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY staged_objects (table_name, object_key, version, batch_id, staged_at, used_at) "
                         "FROM STDIN") as copy:
            for key, version in objects.items():
                copy.write_row(("staging_songs", key, version, "seed", listed_at, listed_at))
        cursor.execute("INSERT INTO catalog_listings VALUES ('staging_songs', 'seed', %s, %s, %s, 0)",
                       (listed_at, len(objects), len(objects)))
    return len(objects)


def drain(sqs, queue: str) -> None:
    """Delete every message waiting (PurgeQueue is allowed once a minute)."""
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]} for number, message in enumerate(batch)])


def rows_read(uri: str) -> int:
    """staged_objects rows read so far, by scans and index fetches (PostgreSQL's statistics)."""
    time.sleep(1.2)  # a backend's counters reach the shared statistics within a second of its end
    with psycopg.connect(uri) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        (count,) = connection.execute(
            "SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'staged_objects'").fetchone()
    return count


def measure(server: MotoServer, uri: str, task, context: dict, environment) -> dict:
    before = rows_read(uri)
    server.log.clear()
    task.render_template_fields(context, environment)
    began = time.perf_counter()
    result = task.execute(context)
    seconds = time.perf_counter() - began
    requests = server.log.summary()
    return {
        "s3": sum(count for name, count in requests.items() if name.startswith("s3:")),
        "sqs": sum(count for name, count in requests.items() if name.startswith("sqs:")),
        "requests": requests,
        "staged_rows_read": rows_read(uri) - before,
        "seconds": round(seconds, 2),
        "objects_staged": result.get("object_count"),
        "discovery": result.get("catalog_discovery"),
    }


def dag_tasks():
    """The hourly DAG's own staging tasks and sensor, its template environment, its params."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).dags["sparkify_dwh"]
    return {task.task_id: task for task in dag.tasks}, dag.get_template_env(), dag.params.dump()


def context_for(hour: datetime, run_id: str, params: dict) -> dict:
    from airflow.sdk.execution_time.context import VariableAccessor

    return {"run_id": run_id, "data_interval_start": hour, "data_interval_end": hour + timedelta(hours=1),
            "params": params, "var": {"value": VariableAccessor(deserialize_json=False)}}


def day_file() -> Path:
    """The day file of HOUR in the daily layout (the whole run's event side)."""
    folder = DATA / "catalog-requests-day"
    if not (folder / "log_data").exists():
        generate(folder, HOUR.replace(hour=0), HOUR.replace(hour=0) + timedelta(days=1), events_per_day=270,
                 songs=20, users=10, seed=2)
    return next((folder / "log_data").rglob("*.json"))


def run_task(task, context: dict, environment) -> None:
    task.render_template_fields(context, environment)
    task.execute(context)


def catalog(server: MotoServer, sizes: list[int]) -> list[dict]:
    import copy

    tasks, environment, params = dag_tasks()
    s3 = server.client("s3")
    figures = []
    day = day_file()
    for size in sizes:
        name = f"bench-catalog-{size}"
        s3.create_bucket(Bucket=name)
        s3.upload_file(str(day), name, f"raw/{day.relative_to(DATA / 'catalog-requests-day').as_posix()}")
        fill_bucket(name, size)
        queue = server.notifying_bucket(name, name, "raw/song_data/")  # notifications on from now
        os.environ["AIRFLOW_VAR_SPARKIFY_SOURCE"] = f"s3://{name}/raw"
        for queued in (True, False):
            uri = fresh_warehouse(f"bench_catalog_{size}_{'queue' if queued else 'list'}")
            seed_staged(uri, f"s3://{name}/raw", datetime.now(timezone.utc).replace(tzinfo=None))
            drain(server.client("sqs"), queue)
            if queued:
                os.environ["AIRFLOW_VAR_SPARKIFY_CATALOG_QUEUE"] = queue
            else:
                os.environ.pop("AIRFLOW_VAR_SPARKIFY_CATALOG_QUEUE", None)
            # The hour before: the day file staged (so the measured hours have no new event object).
            run_task(copy.deepcopy(tasks["stage_events"]), context_for(HOUR - timedelta(hours=1),
                                                                       f"bench_{size}_{queued}_prev", params),
                     environment)
            for case, hour in (("nothing new", 0), ("one new file", 1)):
                if case == "one new file":
                    s3.put_object(Bucket=name, Key=song_key(size + 1), Body=song_body(size + 1))
                context = context_for(HOUR + timedelta(hours=hour), f"bench_{size}_{queued}_{hour}", params)
                # The rest of the hourly run's S3 requests: the sensor and the event staging.
                server.log.clear()
                sensor = copy.deepcopy(tasks["wait_for_events"])
                sensor.render_template_fields(context, environment)
                sensor.poke(context)
                run_task(copy.deepcopy(tasks["stage_events"]), context, environment)
                events_s3 = server.log.count("s3")
                found = measure(server, uri, copy.deepcopy(tasks["stage_songs"]), context, environment)
                found.update(catalog_files=size, queue=queued, case=case, run_s3=found["s3"] + events_s3)
                print(json.dumps({key: found[key] for key in ("catalog_files", "queue", "case", "s3", "sqs",
                                                              "run_s3", "staged_rows_read", "seconds",
                                                              "objects_staged")}))
                figures.append(found)
            s3.delete_object(Bucket=name, Key=song_key(size + 1))
    os.environ.pop("AIRFLOW_VAR_SPARKIFY_CATALOG_QUEUE", None)
    return figures


def events(server: MotoServer, history_days: list[int]) -> list[dict]:
    import copy

    tasks, environment, params = dag_tasks()
    s3 = server.client("s3")
    os.environ["AIRFLOW_VAR_SPARKIFY_LOG_LAYOUT"] = "hourly"
    figures = []
    for days in history_days:
        folder = DATA / f"events-hourly-{days}d"
        start = HOUR - timedelta(days=days)
        if not (folder / "log_data").exists():
            generate(folder, start, HOUR + timedelta(hours=1), events_per_day=240, songs=50, users=20, seed=days,
                     layout="hourly")
        name = f"bench-events-{days}d"
        s3.create_bucket(Bucket=name)
        for path in folder.rglob("*.json"):
            s3.upload_file(str(path), name, f"raw/{path.relative_to(folder).as_posix()}")
        objects = sum(1 for _ in folder.rglob("log_data/**/*.json"))
        os.environ["AIRFLOW_VAR_SPARKIFY_SOURCE"] = f"s3://{name}/raw"
        uri = fresh_warehouse(f"bench_events_{days}d")
        previous = context_for(HOUR - timedelta(hours=1), f"bench_events_{days}_prev", params)
        task = copy.deepcopy(tasks["stage_events"])
        task.render_template_fields(previous, environment)
        task.execute(previous)
        context = context_for(HOUR, f"bench_events_{days}", params)
        sensor = copy.deepcopy(tasks["wait_for_events"])
        sensor.render_template_fields(context, environment)
        server.log.clear()
        sensor.poke(context)
        sensed = server.log.count("s3")
        found = measure(server, uri, copy.deepcopy(tasks["stage_events"]), context, environment)
        found.update(history_days=days, event_objects_in_bucket=objects, sensor_s3=sensed)
        print(json.dumps({key: found[key] for key in ("history_days", "event_objects_in_bucket", "sensor_s3", "s3",
                                                      "seconds", "objects_staged")}))
        figures.append(found)
    os.environ.pop("AIRFLOW_VAR_SPARKIFY_LOG_LAYOUT", None)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--history-days", type=int, nargs="+", default=[2, 30])
    arguments = parser.parse_args()
    local_pg.ensure_server()
    with MotoServer() as server:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(server.aws_connection())
        results = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "catalog": catalog(server, arguments.sizes), "events": events(server, arguments.history_days)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "catalog_requests.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
