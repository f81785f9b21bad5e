"""The Redshift Data API path: the calls the operators make, and the SQL they send.

The provider's RedshiftDataHook runs for real and builds a real boto3 ``redshift-data``
client from the ``aws_default`` connection; botocore validates every request against the
service model (statement list length, parameter names and values…). Only the HTTP round
trip is replaced: a ``before-call`` handler records the request and answers it as the service
would. (moto's redshift-data has no BatchExecuteStatement and never finishes a statement.)
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook
from airflow.sdk.exceptions import AirflowFailException

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from sparkify.exceptions import BatchFailed
from sparkify.staging.units import Unit, statement_name
from sparkify.warehouse.data_api import data_api_sql
from tests.support.data_api_service import DataApiService
from tests.support.redshift_recording import IAM_ROLE, SOURCE, etag, normalized, stable_temp_names
from tests.support.tasks import WAREHOUSE_CONN, run_context, sql_file
from tests.support.warehouse_state import AnsweringConnection, AnsweringDataApi, WarehouseState, serve_data_api

HOUR = datetime(2018, 11, 1, 0, tzinfo=timezone.utc)
RUN_ID = "scheduled__2018-11-01T00:00:00+00:00"
AWS_SECRET = "fake-secret-access-key"
SECRET_ARN = "arn:aws:secretsmanager:us-west-2:123456789012:secret:sparkify-abc"


@pytest.fixture
def data_api(monkeypatch) -> DataApiService:
    """A Serverless workgroup behind the Data API, as the warehouse connection."""
    service = DataApiService()
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "AKIAFAKEFAKEFAKEFAKE", "password": AWS_SECRET,
        "extra": {"region_name": "us-west-2"},
    }))
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps({
        "conn_type": "redshift", "schema": "dev",
        "extra": {"use_data_api": True, "workgroup_name": "sparkify", "poll_interval": 0},
    }))
    real_client = RedshiftDataHook.get_client_type

    def client(self, *args, **kwargs):
        created = real_client(self, *args, **kwargs)
        created.meta.events.register("before-call.redshift-data", service)
        return created

    monkeypatch.setattr(RedshiftDataHook, "get_client_type", client)
    return service


def use_cluster(monkeypatch, **extra) -> None:
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps({
        "conn_type": "redshift", "schema": "dev",
        "extra": {"use_data_api": True, "cluster_identifier": "sparkify-cluster", "poll_interval": 0, **extra},
    }))


def as_driver_sql(statement: str) -> str:
    """A Data API statement in the drivers' placeholder style, to compare with the driver path."""
    return re.sub(r":([a-z_]+)(?:_\d+)?\b", r"%(\1)s", statement)


def load_fact() -> dict:
    return LoadFactOperator(task_id="load_songplays", table="songplays", sql=sql_file("load/songplays.sql"),
                            parameters={"duration_tolerance": 0.5}).execute(run_context(HOUR, RUN_ID))


def test_a_fact_load_is_one_batch_on_the_workgroup(data_api, caplog):
    caplog.set_level("DEBUG")
    result = load_fact()
    assert [name for name, _ in data_api.calls] == ["BatchExecuteStatement", "DescribeStatement", "DescribeStatement"]
    (batch,) = data_api.named("BatchExecuteStatement")
    assert {key: batch[key] for key in batch if key not in ("Sqls", "Parameters", "ClientToken")} == {
        "WorkgroupName": "sparkify", "Database": "dev", "WithEvent": False,
    }
    uuid.UUID(batch["ClientToken"])  # botocore's idempotency token: an HTTP retry never runs the batch twice
    sqls = [" ".join(s.split()) for s in batch["Sqls"]]
    assert sqls[0] == 'LOCK "songplays"'
    assert sqls[1] == 'DELETE FROM "songplays" WHERE "start_time" >= :interval_start AND "start_time" < :interval_end'
    assert sqls[2].startswith('INSERT INTO "songplays" SELECT songplay_id, start_time')
    assert "ABS(s.duration - e.length) <= :duration_tolerance" in sqls[2]
    assert "batch_id" not in sqls[2] and "e.ts >= :start_ms AND e.ts < :end_ms" in sqls[2]  # by time, any object
    assert sqls[3] == ("DELETE FROM load_audit WHERE batch_id = :batch_id AND task_id = :task_id "
                       "AND table_name = :table_name")
    # Row counts exist only once the batch ran: the record holds NULL, inline (no NULL parameter values).
    assert "VALUES ( :batch_id, :task_id, :table_name, :interval_start, :interval_end, NULL, NULL, :rows_rejected, " \
           ":object_count, NULL, :recorded_at )" in sqls[4]
    assert len(sqls) == 5 and not any("%(" in s for s in sqls)
    parameters = {p["name"]: p["value"] for p in batch["Parameters"]}
    assert {key: value for key, value in parameters.items() if key != "recorded_at"} == {
        "interval_start": "2018-11-01 00:00:00", "interval_end": "2018-11-01 01:00:00",
        "duration_tolerance": "0.5", "batch_id": RUN_ID, "start_ms": "1541030400000", "end_ms": "1541034000000",
        "task_id": "load_songplays", "table_name": "songplays", "rows_rejected": "0", "object_count": "0",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+", parameters["recorded_at"])
    assert result["rows_written"] is None
    assert "rows per statement: [1, 2, 3, 4, 5]" in caplog.text
    assert AWS_SECRET not in caplog.text


def test_the_hook_waits_until_the_batch_finishes(data_api):
    data_api.polls_until_finished = 2
    load_fact()
    assert [name for name, _ in data_api.calls] == ["BatchExecuteStatement"] + ["DescribeStatement"] * 4


def test_a_failed_batch_fails_the_task_and_nothing_follows(data_api):
    data_api.fail = True
    with pytest.raises(BatchFailed, match=r"^Data API statement \S+ FAILED: ERROR: relation does not exist$"):
        load_fact()
    # The batch, its status (failed), and its description again for the error (without the statements).
    assert [name for name, _ in data_api.calls] == ["BatchExecuteStatement", "DescribeStatement", "DescribeStatement"]


def test_a_provisioned_cluster_with_temporary_credentials(data_api, monkeypatch):
    use_cluster(monkeypatch, db_user="loader", database="analytics")
    load_fact()
    (batch,) = data_api.named("BatchExecuteStatement")
    assert (batch["ClusterIdentifier"], batch["DbUser"]) == ("sparkify-cluster", "loader")
    assert batch["Database"] == "analytics"
    assert "WorkgroupName" not in batch and "SecretArn" not in batch


def test_a_provisioned_cluster_through_a_secret(data_api, monkeypatch):
    use_cluster(monkeypatch, secret_arn=SECRET_ARN)
    load_fact()
    (batch,) = data_api.named("BatchExecuteStatement")
    assert (batch["ClusterIdentifier"], batch["SecretArn"]) == ("sparkify-cluster", SECRET_ARN)
    assert batch["Database"] == "dev"
    assert "DbUser" not in batch


@pytest.mark.parametrize("extra", [
    {"workgroup_name": "sparkify", "cluster_identifier": "sparkify-cluster"},
    {},
])
def test_the_connection_names_exactly_one_target(data_api, monkeypatch, extra):
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps(
        {"conn_type": "redshift", "schema": "dev", "extra": {"use_data_api": True, **extra}}))
    with pytest.raises(AirflowFailException, match="exactly one of workgroup_name"):
        load_fact()
    assert data_api.calls == []


@pytest.mark.parametrize("mode", ["truncate-insert", "append", "upsert"])
def test_dimension_batches_hold_the_driver_statements(data_api, monkeypatch, mode):
    """The same statements, in the same order, as the redshift_connector path sends in its transaction."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    from tests.support.redshift_recording import RecordingConnection

    def load() -> None:
        LoadDimensionOperator(task_id="load_users", table="users", sql=sql_file("load/users.sql"), mode=mode,
                              key="user_id", version_column="last_seen_at").execute(run_context(HOUR, RUN_ID))

    load()
    (batch,) = data_api.named("BatchExecuteStatement")
    recording = RecordingConnection()
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps({"conn_type": "redshift", "host": "h", "schema": "dev"}))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: recording)
    load()
    assert normalized([as_driver_sql(s) for s in batch["Sqls"]]) == normalized(recording.statements)
    assert len(batch["Sqls"]) == len(recording.statements)


def staged_record(key: str, version: str) -> list[dict]:
    """A staged_objects record as the Data API returns it (stage/staged_objects.sql)."""
    return [{"stringValue": key}, {"stringValue": version}, {"isNull": True}, {"isNull": True}, {"isNull": True},
            {"stringValue": "earlier"}, {"isNull": True}]


def test_the_catalog_reads_what_was_staged_then_stages_the_new_files_in_one_batch(data_api, s3):
    known = "song_data/A/A/A/TRAAAAA128F429D538.json"
    data_api.results.append([  # three records, two pages: the read follows NextToken
        staged_record(known, etag(f"raw/{known}")),
        staged_record("song_data/Z/Z/Z/TRZZZZZ128F429D538.json", "etag-z"),
        staged_record("song_data/Y/Y/Y/TRYYYYY128F429D538.json", "etag-y"),
    ])
    StageToRedshiftOperator(
        task_id="stage_songs", table="staging_songs", source=SOURCE, s3_key="song_data/",
        jsonpaths="jsonpaths/song_data.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/song_data.json", iam_role=IAM_ROLE,
        catalog_key="song_id", manifest_prefix="s3://sparkify-work/manifests",
    ).execute(run_context(HOUR, RUN_ID))
    assert [name for name, _ in data_api.calls] == [
        "ExecuteStatement", "DescribeStatement", "GetStatementResult", "GetStatementResult",
        "BatchExecuteStatement", "DescribeStatement", "DescribeStatement",
    ]
    (read,) = data_api.named("ExecuteStatement")
    assert " ".join(read["Sql"].split()) == (
        "SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, rejected_reason "
        "FROM staged_objects WHERE table_name = :table_name")
    assert read["Parameters"] == [{"name": "table_name", "value": "staging_songs"}]
    assert read["WorkgroupName"] == "sparkify" and read["Database"] == "dev"
    base = "sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00"
    assert json.loads(s3["written"][f"s3://{base}.manifest"])["entries"] == [
        {"url": "s3://sparkify-bucket/raw/song_data/A/A/B/TRAABBB128F429D538.json", "mandatory": True}]
    (batch,) = data_api.named("BatchExecuteStatement")
    sqls = normalized(batch["Sqls"])
    assert sqls[0] == 'LOCK "staging_songs"'  # the new file had no record: nothing to forget
    assert sqls[1].startswith('CREATE TEMP TABLE "incoming"')
    assert sqls[2].startswith('COPY "incoming"') and f"FROM 's3://{base}.manifest'" in sqls[2]
    assert sqls[3].startswith('INSERT INTO "staging_songs"') and sqls[4] == 'DROP TABLE "incoming"'
    assert sqls[5].startswith("COPY staged_objects") and f"FROM 's3://{base}.objects.csv'" in sqls[5]
    assert sqls[6].startswith('DELETE FROM "staging_songs" USING')
    assert sqls[7].startswith("INSERT INTO catalog_listings")  # a full listing (no queue set) is recorded
    assert len(batch["Sqls"]) == 11  # and ANALYZE, and the audit record's two


def test_a_full_restage_reads_nothing_and_forgets_every_staged_file(data_api, s3):
    StageToRedshiftOperator(
        task_id="stage_songs", table="staging_songs", source=SOURCE, s3_key="song_data/",
        jsonpaths="jsonpaths/song_data.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/song_data.json", iam_role=IAM_ROLE,
        catalog_key="song_id", restage=True, manifest_prefix="s3://sparkify-work/manifests",
    ).execute(run_context(HOUR, RUN_ID))
    assert data_api.named("ExecuteStatement") == []
    (batch,) = data_api.named("BatchExecuteStatement")
    assert normalized(batch["Sqls"])[:4] == [
        'LOCK "staging_songs"',
        "DELETE FROM staged_objects WHERE table_name = :table_name",
        "DELETE FROM quarantine WHERE table_name = :table_name",
        'DELETE FROM "staging_songs"',
    ]
    manifest = json.loads(next(iter(s3["written"].values())))
    assert len(manifest["entries"]) == 2


def test_an_error_inside_the_transaction_sends_no_batch(data_api, s3):
    with pytest.raises(AirflowFailException, match="manifest_prefix"):
        StageToRedshiftOperator(
            task_id="stage_songs", table="staging_songs", source=SOURCE, s3_key="song_data/",
            jsonpaths="jsonpaths/song_data.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/song_data.json",
            iam_role=IAM_ROLE, catalog_key="song_id",
        ).execute(run_context(HOUR, RUN_ID))
    assert [name for name, _ in data_api.calls] == ["ExecuteStatement", "DescribeStatement", "GetStatementResult"]


def test_a_transaction_beyond_the_batch_limit_or_a_statement_beyond_its_size_fails_before_sending(data_api):
    from sparkify.warehouse.transactions import transaction, warehouse_hook

    hook, dialect = warehouse_hook("sparkify_warehouse")
    with pytest.raises(AirflowFailException, match="at most 40 statements"), transaction(hook, dialect) as cursor:
        for number in range(41):
            cursor.execute(f"DELETE FROM t WHERE n = {number}")
    with pytest.raises(AirflowFailException, match=r"at most 100,000 bytes; this one has 100,001"), \
            transaction(hook, dialect) as cursor:
        cursor.execute("SELECT '" + "x" * 99_992 + "'")
    assert data_api.calls == []


EVENTS = {"table": "staging_events", "source": SOURCE, "s3_key": "log_data/%Y/%m/%d/%H/", "time_field": "ts",
          "jsonpaths": "jsonpaths/log_events.json", "jsonpaths_uri": f"{SOURCE}/jsonpaths/log_events.json",
          "iam_role": IAM_ROLE, "manifest_prefix": "s3://sparkify-work/manifests", "lookback_hours": "24"}
NOW_HOUR = HOUR + timedelta(hours=24)  # the run of 2018-11-02 00:00, whose look-back is 2018-11-01
NOW_RUN = "scheduled__2018-11-02T00:00:00+00:00"


def hour_keys(hours: int, objects: int, suffix: str = ".json.gz") -> list[str]:
    """The Firehose layout: ``objects`` objects under each of ``hours`` hour prefixes from 2018-11-01 00:00."""
    return [f"raw/log_data/{HOUR + timedelta(hours=hour):%Y/%m/%d/%H}/part-{number:02}{suffix}"
            for hour in range(hours) for number in range(objects)]


@pytest.fixture
def warehouse_api(monkeypatch) -> AnsweringDataApi:
    """The Data API over an empty warehouse state (tests/support/warehouse_state.py)."""
    return serve_data_api(monkeypatch, AnsweringDataApi(WarehouseState()))


def stage_events(**overrides) -> dict:
    return StageToRedshiftOperator(task_id="stage_events", **{**EVENTS, **overrides}).execute(
        run_context(NOW_HOUR, NOW_RUN))


def test_a_first_run_over_25_hours_of_60_objects_is_25_unit_batches_and_its_bookkeeping(warehouse_api, s3):
    """The first hourly run over a Firehose bucket lists its own hour and the 24 before: 1,500 gzip objects.
    Each hour prefix is one batch (one manifest COPY of its 60 objects), well within 40 statements and 100 kB,
    each named for the unit; then one batch records the run's interval, touches what it listed and audits."""
    s3["keys"] += hour_keys(25, 60)
    result = stage_events()
    batches = warehouse_api.batches()
    assert len(batches) == 26
    units, bookkeeping = batches[:-1], batches[-1]
    assert [batch["StatementName"] for batch in units] == [
        f"sparkify:staging_events:log_data/{HOUR + timedelta(hours=hour):%Y/%m/%d/%H}/:"
        + batch["StatementName"].rsplit(":", 1)[1] for hour, batch in enumerate(units)]
    assert "StatementName" not in bookkeeping
    assert max(len(batch["Sqls"]) for batch in batches) <= 40
    assert max(len(sql.encode()) for batch in batches for sql in batch["Sqls"]) < 100_000
    copies = [sql for batch in units for sql in normalized(batch["Sqls"]) if sql.startswith('COPY "incoming"')]
    assert len(copies) == 25 and all(" GZIP MANIFEST " in copy for copy in copies)
    manifests = [json.loads(text) for uri, text in s3["written"].items() if uri.endswith(".manifest")]
    assert [len(manifest["entries"]) for manifest in manifests] == [60] * 25
    assert normalized(bookkeeping["Sqls"])[:3] == [
        'LOCK "staging_events"', "DELETE FROM loaded_intervals WHERE table_name = :table_name AND batch_id = :batch_id",
        "INSERT INTO loaded_intervals (table_name, batch_id, interval_start, interval_end, recorded_at) VALUES "
        "(:table_name, :batch_id, :interval_start, :interval_end, :recorded_at)"]
    assert (result["object_count"], result["units_staged"], result["restated"]) == (1500, 25, [])
    assert {key: result["cost"][key] for key in ("objects_read", "copies", "data_api_batches")} == {
        "objects_read": 1500, "copies": 25, "data_api_batches": 26}
    # The reads ahead: what is staged, the hours loaded (none), the hours this run restated (none).
    assert result["cost"]["data_api_reads"] == len(warehouse_api.named("ExecuteStatement")) == 3


def test_an_on_time_hour_of_60_objects_is_one_copy_in_one_batch(warehouse_api, s3):
    s3["keys"] += hour_keys(25, 60)
    for key in hour_keys(24, 60):  # the look-back staged by earlier runs, as listed now
        warehouse_api.state.record(key.removeprefix("raw/"), etag(key), 1, 2)
    result = stage_events()
    unit, bookkeeping = warehouse_api.batches()
    assert unit["StatementName"].startswith("sparkify:staging_events:log_data/2018/11/02/00/:")
    assert [sql for sql in normalized(unit["Sqls"]) if sql.startswith("COPY")][0].startswith('COPY "incoming"')
    assert (result["cost"]["copies"], result["cost"]["bookkeeping_copies"], result["object_count"]) == (1, 1, 60)


def unit_name(key: str, members: dict[str, str], records: dict | None = None, max_errors: int = 0) -> str:
    """The name the run gives the batch of a unit (as an earlier attempt would have)."""
    return statement_name("staging_events", NOW_RUN, Unit(key, members, records or {}), max_errors)


@pytest.mark.parametrize(("status", "sent_again"), [("STARTED", False), ("FINISHED", False), ("FAILED", True)])
def test_an_attempt_after_a_restart_waits_for_its_units_batch_instead_of_sending_it_twice(
        warehouse_api, s3, status, sent_again):
    """A worker died while its batch of hour 00 ran: the retry finds the batch by its name. Still running, it
    waits for it (polling its status, as for its own); finished, it takes it as done; failed, it sends it again.
    Either way the other units and the bookkeeping go as usual."""
    s3["keys"] += hour_keys(2, 2)
    hour_0 = {key.removeprefix("raw/"): etag(key) for key in hour_keys(1, 2)}
    earlier = warehouse_api.earlier(unit_name("log_data/2018/11/01/00/", hour_0), status, polls=2)
    result = stage_events()
    names = [batch.get("StatementName") for batch in warehouse_api.batches()]
    assert (unit_name("log_data/2018/11/01/00/", hour_0) in names) == sent_again
    assert len(names) == (3 if sent_again else 2)  # hour 01, the bookkeeping
    polls = [request["Id"] for name, request in warehouse_api.calls if name == "DescribeStatement"]
    assert polls.count(earlier) == (3 if status == "STARTED" else 0)
    assert (result["units_staged"], result["units_attached"]) == ((2, 0) if sent_again else (1, 1))
    manifests = [uri for uri in s3["written"] if uri.endswith(".manifest")]
    assert any("log_data_2018_11_01_00" in uri for uri in manifests) == sent_again  # never overwritten under it


def test_a_unit_batch_failing_on_bad_records_sets_aside_what_its_load_errors_name_and_the_run_goes_on(
        warehouse_api, s3):
    s3["keys"] += hour_keys(2, 2)
    bad = "log_data/2018/11/01/00/part-01.json.gz"
    warehouse_api.failing = lambda sqls: any("log_data_2018_11_01_00" in sql for sql in sqls)
    warehouse_api.state.load_errors.append((f"{SOURCE}/{bad}", 4, "ts", "Invalid digit, Value 'x', Pos 0"))
    with pytest.raises(AirflowFailException, match=rf"^staging_events: {SOURCE}/{bad} line 4: ts: Invalid digit"):
        stage_events()
    reads = [" ".join(read["Sql"].split()) for read in warehouse_api.named("ExecuteStatement")]
    (errors,) = [read for read in reads if "sys_load_error_detail" in read]
    assert errors == ("SELECT TRIM(file_name), line_number, TRIM(column_name), TRIM(error_message) FROM "
                      "sys_load_error_detail WHERE start_time >= :batch_received_at AND LEFT(TRIM(file_name), 48) = "
                      "'s3://sparkify-bucket/raw/log_data/2018/11/01/00/' ORDER BY file_name, line_number")
    batches = warehouse_api.batches()
    set_aside = normalized(batches[1]["Sqls"])
    assert set_aside[0] == 'LOCK "staging_events"' and set_aside[2].startswith("INSERT INTO staged_objects")
    parameters = {entry["name"]: entry["value"] for entry in batches[1]["Parameters"]}
    assert (parameters["object_key"], parameters["version"]) == (bad, etag(f"raw/{bad}"))
    assert batches[2]["StatementName"].startswith("sparkify:staging_events:log_data/2018/11/01/01/:")
    assert len(batches) == 3  # hour 00 (failed), its set-aside, hour 01; no bookkeeping: the run failed


def test_a_unit_batch_failing_otherwise_fails_the_task_with_its_error(warehouse_api, s3):
    s3["keys"] += hour_keys(1, 2)
    warehouse_api.failing = lambda sqls: True
    with pytest.raises(BatchFailed, match="Load into table"):
        stage_events()
    assert len(warehouse_api.batches()) == 1  # nothing set aside: no load error names its objects


def test_a_unit_batch_holds_the_drivers_unit_transaction_but_its_reads(warehouse_api, s3, monkeypatch):
    """The same statements, in the same order, as the driver's transaction of the unit, less the reads a
    driver makes under the lock (the unit's records again, the rejected count, the new rows' hours)."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    s3["keys"] += hour_keys(1, 3)
    stage_events()
    unit = warehouse_api.batches()[0]
    connection = AnsweringConnection(WarehouseState())
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps({"conn_type": "redshift", "host": "h", "schema": "dev"}))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: connection)
    stage_events()
    sent = normalized(connection.statements)
    driver = sent[sent.index('LOCK "staging_events"'):]
    driver = [sql for sql in driver[:driver.index('LOCK "staging_events"', 1)] if not sql.startswith("SELECT")]
    bound = "|".join(entry["name"] for entry in unit["Parameters"])  # only those: an ARN has colons too
    as_driver = [re.sub(rf":({bound})\b", r"%(\1)s", sql) for sql in unit["Sqls"]]
    assert normalized(as_driver) == driver


@pytest.mark.parametrize("task", ["fact", "upsert"])
def test_a_load_over_many_restated_spans_sends_them_in_batches_each_span_whole(warehouse_api, monkeypatch, task):
    """Twenty hours restated apart beside the run's own: a fact load is 3 statements a span and an upsert 9,
    so 21 spans are over a batch's 40. They go in several batches, none over the limit, each span's
    statements all in one, the audit last; together the driver's transaction, statement for statement."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    restated = [datetime(2018, 10, 30) + timedelta(hours=2 * number) for number in range(20)]
    state = WarehouseState(restated=[(start, start + timedelta(hours=1)) for start in restated])
    warehouse_api.state = state
    operator = {
        "fact": lambda: LoadFactOperator(task_id="load_songplays", table="songplays",
                                         sql=sql_file("load/songplays.sql"), restated_table="staging_events",
                                         parameters={"duration_tolerance": 0.5}),
        "upsert": lambda: LoadDimensionOperator(task_id="load_users", table="users", sql=sql_file("load/users.sql"),
                                                mode="upsert", key="user_id", version_column="last_seen_at",
                                                restated_table="staging_events"),
    }[task]
    result = operator().execute(run_context(HOUR, RUN_ID))
    sent = [batch["Sqls"] for batch in warehouse_api.batches()]
    assert len(sent) > 1 and all(len(batch) <= 40 for batch in sent)
    assert result["cost"]["data_api_batches"] == result["cost"]["transactions"] == len(sent)
    assert all("load_audit" in sql for sql in sent[-1][-2:])  # the audit record, last
    batches = [normalized([as_driver_sql(sql) for sql in batch]) for batch in sent]  # less the audit
    lock = batches[0][0]
    per_span = batches[0].index(lock, 1)
    assert lock.startswith("LOCK") and all(batch[0] == lock and len(batch) % per_span == 0 for batch in batches)
    connection = AnsweringConnection(state)
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps({"conn_type": "redshift", "host": "h", "schema": "dev"}))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: connection)
    operator().execute(run_context(HOUR, RUN_ID))
    driver = [sql for sql in normalized(connection.statements) if not sql.startswith("SELECT hours_start")]
    assert [sql for batch in batches for sql in batch] == driver
    assert sum(len(batch) for batch in batches) == 21 * per_span


def test_bad_records_within_max_errors_are_quarantined_in_the_batch(warehouse_api, s3):
    s3["keys"] += hour_keys(1, 2)
    audit = stage_events(max_errors=3)
    sqls = normalized(warehouse_api.batches()[0]["Sqls"])
    copy = next(index for index, sql in enumerate(sqls) if sql.startswith('COPY "incoming"'))
    assert " MAXERROR 3 " in sqls[copy] and sqls[copy + 1].startswith("INSERT INTO quarantine")
    assert audit["rows_rejected"] is None  # a read would run ahead of the batch: not counted here


def test_quality_checks_run_each_query_on_its_own(data_api):
    data_api.results += [
        [[{"stringValue": "users.user_id"}, {"longValue": 0}], [{"stringValue": "songs.song_id"}, {"longValue": 2}]],
        [[{"isNull": True}]],
    ]
    with pytest.raises(AirflowFailException, match="2 of 3 data quality checks failed") as failure:
        DataQualityOperator(task_id="q", checks=[
            {"sql": sql_file("quality/null_keys.sql"), "expected": 0},
            {"name": "plays", "sql": "SELECT count(*) FROM songplays WHERE batch_id = %(batch_id)s;", "expected": 0},
        ]).execute(run_context(HOUR, RUN_ID))
    assert "songs.song_id: expected == 0, got 2" in str(failure.value)
    assert "plays: expected == 0, got None" in str(failure.value)
    reads = data_api.named("ExecuteStatement")
    assert reads[1]["Sql"] == "SELECT count(*) FROM songplays WHERE batch_id = :batch_id"
    assert reads[1]["Parameters"] == [{"name": "batch_id", "value": RUN_ID}]
    assert reads[0]["Parameters"] == [  # only what the query names: the Data API rejects unused parameters
        {"name": "interval_start", "value": "2018-11-01 00:00:00"},
        {"name": "interval_end", "value": "2018-11-01 01:00:00"},
    ]
    assert data_api.named("BatchExecuteStatement") == []


def test_data_api_sql_binds_each_value_once_per_batch():
    bound: dict[str, str] = {}
    first = data_api_sql("DELETE FROM t WHERE a = %(a)s AND b = %(b)s AND c LIKE 'x%%'",
                         {"a": 1, "b": None, "c": "unused"}, bound)
    second = data_api_sql("INSERT INTO t VALUES (%(a)s, %(d)s, %(e)s)",
                          {"a": 2, "d": "", "e": datetime(2018, 11, 1, 5)}, bound)
    assert first == "DELETE FROM t WHERE a = :a AND b = NULL AND c LIKE 'x%'"
    assert second == "INSERT INTO t VALUES (:a_2, '', :e)"
    assert bound == {"a": "1", "a_2": "2", "e": "2018-11-01 05:00:00"}
    assert data_api_sql("SELECT 1 -- 100%%", None, bound) == "SELECT 1 -- 100%%"


def test_retention_reads_the_unused_units_ahead_and_drops_them_in_the_bookkeeping_batch(warehouse_api, s3):
    old = "log_data/2018/10/01/05/"
    s3["keys"] += hour_keys(1, 1)
    warehouse_api.state.expired += [(f"{old}part-00.json.gz", 1538370000000, 1538371000000),
                                    (f"{old}part-01.json.gz", 1538369000000, 1538370500000)]
    audit = stage_events(retention_hours="72")
    reads = [" ".join(read["Sql"].split()) for read in warehouse_api.named("ExecuteStatement")]
    assert [read.split(" FROM ")[1].split()[0] for read in reads] == [
        "staged_objects", "loaded_intervals", "staged_objects", "restatements"]
    assert ":purge_before" in reads[2]
    unit, bookkeeping = warehouse_api.batches()
    sqls = [stable_temp_names(" ".join(sql.split())) for sql in bookkeeping["Sqls"]]  # audit statements included
    touch = next(index for index, sql in enumerate(sqls) if sql.startswith("UPDATE staged_objects SET used_at"))
    assert sqls[touch + 1] == ('DELETE FROM "staging_events" WHERE LEFT(object_key, 23) = \'log_data/2018/10/01/05/\' '
                               'AND ("ts" BETWEEN :first_ts AND :last_ts OR "ts" IS NULL)')
    assert sqls[touch + 4] == 'ANALYZE "staging_events"'
    # lock, the run's interval as loaded 2, touch, the unit dropped 3, ANALYZE, audit 2
    assert len(bookkeeping["Sqls"]) == 10
    assert audit["objects_purged"] == 1


def test_an_identity_that_may_not_list_statements_fails_staging_naming_the_permission(warehouse_api, s3):
    from botocore.exceptions import ClientError

    s3["keys"] += hour_keys(1, 1)

    def denied(request: dict) -> dict:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "ListStatements")

    warehouse_api.ListStatements = denied
    with pytest.raises(AirflowFailException, match="grant it redshift-data:ListStatements"):
        stage_events()
    assert warehouse_api.batches() == []  # nothing sent without knowing it was not sent before


def test_a_run_failing_midway_leaves_each_unit_old_or_new_and_its_retry_does_the_rest(warehouse_api, s3):
    """Hour 00's batch commits (restating hour 00, loaded before), hour 01's fails for a reason that is not
    its data: the task fails without its bookkeeping. Its retry finds hour 00 staged as the committed batch
    left it (the stand-in holds what the test says), sends hour 01 and the bookkeeping only, and the run's
    loads still cover hour 00, which the first attempt restated (read back over the run's attempts)."""
    s3["keys"] += hour_keys(2, 2)
    hour_0 = {key.removeprefix("raw/"): etag(key) for key in hour_keys(1, 2)}
    warehouse_api.state.record(next(iter(hour_0)), "an-older-etag", 1541030400000, 1541032000000)
    warehouse_api.state.loaded.append((datetime(2018, 11, 1), datetime(2018, 11, 2)))
    warehouse_api.failing = lambda sqls: any("log_data_2018_11_01_01" in sql for sql in sqls)
    with pytest.raises(BatchFailed):
        stage_events()
    first = warehouse_api.batches()
    assert [batch.get("StatementName", "").split(":")[2] for batch in first] == [
        "log_data/2018/11/01/00/", "log_data/2018/11/01/01/"]  # no bookkeeping batch
    assert sum(sql.startswith("INSERT INTO restatements") for sql in first[0]["Sqls"]) == 1  # with its unit
    # What Redshift holds after the first attempt: hour 00 as its batch left it, its restatement.
    for key, version in hour_0.items():
        warehouse_api.state.record(key, version, 1541030400000, 1541033999000, batch_id=NOW_RUN)
    warehouse_api.state.restated.append((datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 1)))
    warehouse_api.failing = lambda sqls: False
    warehouse_api.calls.clear()
    result = stage_events()
    retry = warehouse_api.batches()
    assert [batch.get("StatementName", "bookkeeping").split(":")[2 if "StatementName" in batch else 0]
            for batch in retry] == ["log_data/2018/11/01/01/", "bookkeeping"]
    # Hour 00 from the first attempt's record, hour 01 from this attempt's (its unit is new, its hour loaded).
    assert result["hours_loaded"] == ["2018-11-01T00:00Z/2018-11-01T02:00Z", "2018-11-02T00:00Z/2018-11-02T01:00Z"]
    assert [entry["hours_start"] for entry in result["restated"]] == ["2018-11-01T01:00"]
    assert (result["units_staged"], result["object_count"]) == (1, 2)


def test_create_tables_is_one_batch_on_the_workgroup(data_api):
    """create_tables (WarehouseSQLOperator) goes through the Data API too: no SQL hook speaks it."""
    from sparkify.operators.warehouse_sql import WarehouseSQLOperator
    from tools.ddl import render_sql

    ddl = render_sql("create/create_tables.sql", "redshift")
    WarehouseSQLOperator(task_id="create_tables", conn_id="sparkify_warehouse", sql=ddl,
                         split_statements=True).execute(run_context(HOUR, RUN_ID))
    assert [name for name, _ in data_api.calls] == ["BatchExecuteStatement", "DescribeStatement", "DescribeStatement"]
    (batch,) = data_api.named("BatchExecuteStatement")
    assert batch["WorkgroupName"] == "sparkify" and len(batch["Sqls"]) <= 40
    created = [re.search(r"CREATE TABLE IF NOT EXISTS \"?(\w+)", sql).group(1) for sql in batch["Sqls"]
               if "CREATE TABLE IF NOT EXISTS" in sql]
    assert {"staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time"} <= set(created)
    assert not any(sql.rstrip().endswith(";") for sql in batch["Sqls"])
