"""What an hourly run costs on Redshift, by staging unit: COPYs, statements, transactions or Data API
batches, S3 requests, objects and bytes read, for a Firehose bucket of 1, 12 and 60 objects an hour.

    python bench/redshift_cost.py [--objects 1 12 60]

No cluster: the warehouse is the tests' recording driver connection and Data API stand-in, answering the
bookkeeping's reads from a given state (tests/support/warehouse_state.py), and S3 is moto in server mode
(tools/moto_server.py, whose request log counts each request as AWS bills it) holding the hourly layout,
25 hours of gzip objects. The tasks are the hourly DAG's own (``dags/sparkify_dwh.py``, rendered with the
Variables of a Redshift deployment), run in order: ``wait_for_events``, ``stage_events``, ``stage_songs``
(a catalog of 20 files, staged already: nothing new), ``load_songplays``, the four dimension loads,
``match_late_songs``, ``run_quality_checks``; ``create_tables`` (its DDL, the same every run) is left out.

Cases, each on both warehouses (``driver``: redshift_connector; ``data_api``: Redshift Serverless):

- ``first run``: nothing staged or loaded; the run of hour 24 lists its hour and the 24 before (25 units).
- ``on time``: the 24 hours before staged and loaded; the run's own hour is new (1 unit).
- ``on time, one late object``: as ``on time``, and one object landed late in an hour loaded before (2 units,
  that hour restated: the loads cover it too).
- ``nothing new``: a run again of an hour whose units are all staged (0 units).

Each figure is what the tasks report in their XCom's ``cost`` (``stage_events``' apart), and moto's count of
S3 requests beside the tasks' own. Results: bench/results/redshift_cost.json and the table in bench/README.md.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
START = datetime(2018, 11, 1, tzinfo=timezone.utc)
NOW_HOUR = START + timedelta(hours=24)  # the run measured: its own hour and the 24-hour look-back
ACCOUNT = "123456789012"
BUCKET, WORK = "bench-redshift-source", "bench-redshift-work"
ROLE = "arn:aws:iam::123456789012:role/sparkify-copy"
#: The tasks of an hourly run after create_tables, in an order the DAG allows.
RUN_TASKS = ("wait_for_events", "stage_events", "stage_songs", "load_songplays", "load_users", "load_songs",
             "load_artists", "load_time", "match_late_songs", "run_quality_checks")
CASES = ("first run", "on time", "on time, one late object", "nothing new")


def configure_airflow() -> None:
    """Airflow's environment, before anything imports it: a home of its own, the DAGs and plugins, and the
    Variables of a Redshift deployment on the hourly layout."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sparkify-bench-airflow-"))
    os.environ.update({
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_VAR_SPARKIFY_SOURCE": f"s3://{BUCKET}/raw", "AIRFLOW_VAR_SPARKIFY_LOG_LAYOUT": "hourly",
        "AIRFLOW_VAR_SPARKIFY_IAM_ROLE": ROLE, "AIRFLOW_VAR_SPARKIFY_MANIFEST_PREFIX": f"s3://{WORK}/manifests",
        "AIRFLOW_VAR_SPARKIFY_OBJECTS_WAIT_SECONDS": "0",
    })


def event_object(hour: datetime, number: int) -> bytes:
    """A gzip object of 20 events of the hour (Firehose writes one every minute or so)."""
    lines = []
    for event in range(20):
        ts = int((hour + timedelta(seconds=number * 60 + event)).timestamp() * 1000)
        lines.append(json.dumps({
            "artist": "Artist", "auth": "Logged In", "firstName": "Ann", "gender": "F", "itemInSession": event,
            "lastName": "Lee", "length": 200.5, "level": "paid", "location": "Town", "method": "PUT",
            "page": "NextSong", "registration": 1540919166796.0, "sessionId": number, "song": "Song", "status": 200,
            "ts": ts, "userAgent": "Mozilla/5.0", "userId": "7"}))
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def event_key(hour: datetime, number: int) -> str:
    return f"raw/log_data/{hour:%Y/%m/%d/%H}/sparkify-events-{hour:%Y-%m-%d-%H}-{number:02}.json.gz"


def fill_bucket(objects: int) -> dict[str, str]:
    """The source bucket (created before): 25 hours of ``objects`` gzip objects and a catalog of 20 song
    files, written into moto's backend directly (no request counted); every key with its ETag."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT]["aws"]
    bucket = backend.get_bucket(BUCKET)
    for key in list(bucket.keys.keys()):
        backend.delete_object(BUCKET, key)
    for hour in (START + timedelta(hours=number) for number in range(25)):
        for number in range(objects):
            backend.put_object(BUCKET, event_key(hour, number), event_object(hour, number), disable_notification=True)
    for number in range(20):
        song = {"num_songs": 1, "artist_id": f"AR{number:05}", "artist_latitude": None, "artist_longitude": None,
                "artist_location": "", "artist_name": f"Artist {number}", "song_id": f"SO{number:05}",
                "title": f"Song {number}", "duration": 200.0, "year": 2000}
        backend.put_object(BUCKET, f"raw/song_data/A/B/C/TRABC{number:05}.json", json.dumps(song).encode(),
                           disable_notification=True)
    return {key: backend.get_object(BUCKET, key).etag.strip('"') for key in bucket.keys.keys()}


def state_for(case: str, etags: dict[str, str], late_key: str) -> Any:
    """The warehouse each case meets (its bookkeeping as the stand-ins answer it)."""
    from tests.support.warehouse_state import WarehouseState

    state = WarehouseState()
    for key, version in etags.items():
        relative = key.removeprefix("raw/")
        if relative.startswith("song_data/"):
            state.record(relative, version)  # the catalog is staged: nothing new
        elif case != "first run" and not (case == "on time, one late object" and key == late_key):
            hour = datetime.strptime(relative.split("/", 1)[1][:13], "%Y/%m/%d/%H").replace(tzinfo=timezone.utc)
            if case == "nothing new" or hour < NOW_HOUR:
                first = int(hour.timestamp() * 1000)
                state.record(relative, version, first, first + 3_599_000)
    if case != "first run":
        last = NOW_HOUR + timedelta(hours=1) if case == "nothing new" else NOW_HOUR
        state.loaded.append((START.replace(tzinfo=None), last.replace(tzinfo=None)))
    # What each unit's COPY loads, as its records say once it is staged: its hour (the events it holds).
    for number in range(25):
        hour = START + timedelta(hours=number)
        first = int(hour.timestamp() * 1000)
        state.coverage[f"log_data/{hour:%Y/%m/%d/%H}/"] = (first, first + 3_599_000)
    return state


def dag_tasks() -> tuple[dict[str, Any], Any]:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["sparkify_dwh"]
    return {task.task_id: task for task in dag.tasks}, dag


def sent(connection: Any, service: Any) -> dict[str, int]:
    """What the stand-ins received so far: statements (a batch's each), data COPYs, Data API batches and reads
    (the count the tasks report is checked against it)."""
    if service is None:
        statements = list(connection.statements)
        batches = reads = 0
    else:
        requests = [request for name, request in service.calls if name in ("BatchExecuteStatement", "ExecuteStatement")]
        statements = [sql for request in requests for sql in request.get("Sqls", [request.get("Sql")])]
        batches = sum(1 for request in requests if "Sqls" in request)
        reads = len(requests) - batches
    copies = sum(1 for sql in statements if sql.startswith("COPY") and not sql.startswith("COPY staged_objects"))
    return {"statements": len(statements), "copies": copies, "batches": batches, "reads": reads}


def run(server: Any, tasks: dict[str, Any], dag: Any, state: Any, warehouse: str, monkeypatch: Any) -> dict[str, Any]:
    """The run of NOW_HOUR on one warehouse over ``state``: each task's cost as it reports it, what the stand-ins
    received, and moto's S3 requests. A task that fails is reported with its error, and the run stops."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from airflow.sdk.execution_time.context import VariableAccessor

    from sparkify.cost import total
    from tests.support.warehouse_state import AnsweringConnection, AnsweringDataApi, serve_data_api

    service, connection = None, AnsweringConnection(state)
    if warehouse == "data_api":
        service = serve_data_api(monkeypatch, AnsweringDataApi(state))
    else:
        monkeypatch.setenv("AIRFLOW_CONN_SPARKIFY_WAREHOUSE", json.dumps({
            "conn_type": "redshift", "host": "sparkify.abc.us-west-2.redshift.amazonaws.com", "schema": "dev"}))
        monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: connection)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(server.aws_connection()))
    context = {"run_id": "scheduled__2018-11-02T00:00:00+00:00", "data_interval_start": NOW_HOUR,
               "data_interval_end": NOW_HOUR + timedelta(hours=1), "params": dag.params.dump(),
               "var": {"value": VariableAccessor(deserialize_json=False)}}
    environment = dag.get_template_env()
    figures: dict[str, Any] = {}
    server.log.clear()
    for task_id in RUN_TASKS:
        task = copy.deepcopy(tasks[task_id])
        task.render_template_fields(context, environment)
        before, received = server.log.count("s3"), sent(connection, service)
        try:
            result = {"sensed": task.poke(context)} if task_id == "wait_for_events" else task.execute(context)
        except Exception as error:  # the code before issue 20 refused a Data API batch of 41 statements
            figures[task_id] = {"failed": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
            break
        after = sent(connection, service)
        figures[task_id] = {**result.get("cost", {}), "moto_s3_requests": server.log.count("s3") - before,
                            "received": {key: after[key] - received[key] for key in after}}
        reported = result.get("cost")
        if reported:  # what a task says it cost is what the warehouse and S3 received
            found = figures[task_id]
            assert (reported["s3_requests"], reported["statements"], reported["copies"]) == (
                found["moto_s3_requests"], found["received"]["statements"], found["received"]["copies"]), found
            if warehouse == "data_api":
                assert reported["data_api_batches"] == found["received"]["batches"], found
        if task_id == "stage_events":
            figures[task_id]["units_staged"] = result.get("units_staged")
            figures[task_id]["hours_loaded"] = result["hours_loaded"]
            # What the loads read back of the run's restatements (the stand-ins record them, never apply them).
            state.restated = [(datetime.fromisoformat(entry["hours_start"]), datetime.fromisoformat(entry["hours_end"]))
                              for entry in result["restated"]]
    if service is not None:
        figures["data_api_calls"] = {name: sum(1 for call, _ in service.calls if call == name)
                                     for name in ("BatchExecuteStatement", "ExecuteStatement", "ListStatements")}
        figures["largest_batch"] = max((len(batch["Sqls"]) for batch in service.batches()), default=0)
    ran = [figures[task_id] for task_id in RUN_TASKS if task_id in figures]
    figures["run"] = {"received": sent(connection, service), "moto_s3_requests": server.log.count("s3"),
                      "failed": next((found["failed"] for found in ran if "failed" in found), None),
                      # As the run summary adds them up: the tasks that report a cost (not the sensor).
                      "reported": total(found for found in ran if "statements" in found)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 12, 60], help="objects an hour")
    arguments = parser.parse_args()
    configure_airflow()
    import pytest

    from tools.moto_server import MotoServer

    results: list[dict[str, Any]] = []
    with MotoServer() as server:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(server.aws_connection())
        s3 = server.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=WORK)
        tasks, dag = dag_tasks()
        for objects in arguments.objects:
            etags = fill_bucket(objects)
            late_hour = NOW_HOUR - timedelta(hours=3)
            late_key = event_key(late_hour, objects - 1)  # the last object of hour 21 landed late
            for case in CASES:
                for warehouse in ("driver", "data_api"):
                    with pytest.MonkeyPatch.context() as monkeypatch:
                        figures = run(server, tasks, dag, state_for(case, etags, late_key), warehouse, monkeypatch)
                    found = {"objects_an_hour": objects, "case": case, "warehouse": warehouse, **figures}
                    stage, whole = found.get("stage_events", {}), found["run"]
                    print(json.dumps({"objects_an_hour": objects, "case": case, "warehouse": warehouse,
                                      "units": stage.get("units_staged"), "reported": {
                                          key: stage.get(key) for key in ("copies", "statements", "transactions",
                                                                          "data_api_batches", "s3_requests")},
                                      "received": stage.get("received"), "moto_s3": stage.get("moto_s3_requests"),
                                      "run": whole}))
                    results.append(found)
    RESULTS.mkdir(exist_ok=True)
    # One run a line: the figures of 24 runs of 10 tasks each stay readable in a diff.
    runs = ",\n".join(f"  {json.dumps(found)}" for found in results)
    measured = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (RESULTS / "redshift_cost.json").write_text(f'{{"measured_at": "{measured}", "runs": [\n{runs}\n]}}\n')


if __name__ == "__main__":
    main()
