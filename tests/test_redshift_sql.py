"""The Redshift path, which cannot run here: the exact SQL each operator sends.

The warehouse connection is of type redshift; the provider hook's connection
is replaced by one that records statements, and S3 by a fixed listing.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
import redshift_connector.core
from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk.exceptions import AirflowFailException

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from tools.ddl import render_sql

from conftest import WAREHOUSE_CONN, run_context, sql_file

HOUR = datetime(2018, 11, 1, 0, tzinfo=timezone.utc)
SOURCE = "s3://sparkify-bucket/raw"
IAM_ROLE = "arn:aws:iam::123456789012:role/sparkify-copy"
EVENT_COLUMNS = (
    '"artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", '
    '"location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id"'
)


class RecordingCursor:
    def __init__(self, connection: RecordingConnection) -> None:
        self.connection = connection
        self.paramstyle = "format"
        self.rowcount = 0

    def execute(self, statement: str, parameters=None) -> None:
        self.connection.statements.append(statement)
        if parameters and re.search(r"%\(\w+\)s", statement):
            # What redshift_connector would send: the statement with $n placeholders.
            redshift_connector.core.convert_paramstyle(self.paramstyle, statement)
            assert self.paramstyle == "pyformat"

    def fetchall(self) -> list:
        return self.connection.results.pop(0) if self.connection.results else []

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None


class RecordingConnection:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.results: list[list] = []
        self.commits = 0
        self.rollbacks = 0

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self)

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        pass


@pytest.fixture
def redshift(monkeypatch) -> RecordingConnection:
    connection = RecordingConnection()
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps({
        "conn_type": "redshift", "host": "example.us-west-2.redshift.amazonaws.com", "port": 5439,
        "login": "loader", "password": "secret-password", "schema": "dev",
    }))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: connection)
    return connection


@pytest.fixture
def s3(monkeypatch) -> dict:
    bucket = {"keys": ["raw/log_data/2018/11/2018-11-01-events.json",
                       "raw/song_data/A/A/A/TRAAAAA128F429D538.json",
                       "raw/song_data/A/A/B/TRAABBB128F429D538.json"],
              "written": {}}
    monkeypatch.setattr(S3Hook, "check_for_bucket", lambda self, name: name == "sparkify-bucket")
    monkeypatch.setattr(S3Hook, "check_for_key", lambda self, key, bucket_name: key in bucket["keys"])
    monkeypatch.setattr(S3Hook, "list_keys",
                        lambda self, bucket_name, prefix, max_items=None: [
                            k for k in bucket["keys"] if k.startswith(prefix)][:max_items])
    monkeypatch.setattr(S3Hook, "load_string",
                        lambda self, data, key, replace: bucket["written"].__setitem__(key, data))
    return bucket


def normalized(statements: list[str]) -> list[str]:
    """The data statements (the audit record has its own test), temporary table names made
    stable and whitespace folded."""
    return [re.sub(r'"incoming_[0-9a-f]{12}"', '"incoming"', " ".join(s.split()))
            for s in statements if "load_audit" not in s]


def assert_transaction_safe(connection: RecordingConnection) -> None:
    """One commit at the end, and nothing that commits on its own in Redshift."""
    assert connection.commits == 1 and connection.rollbacks == 0
    assert not any(s.upper().startswith(("TRUNCATE", "COMMIT", "BEGIN")) for s in connection.statements)


def stage(**kwargs) -> dict:
    operator = StageToRedshiftOperator(
        task_id="stage", source=SOURCE, iam_role=IAM_ROLE, region="us-west-2", **kwargs,
    )
    return operator.execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00"))


def test_events_copy_text(redshift, s3):
    stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
          jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json")
    assert normalized(redshift.statements) == [
        'DELETE FROM "staging_events" WHERE batch_id = %(batch_id)s',
        "DELETE FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s",
        f'CREATE TEMP TABLE "incoming" AS SELECT {EVENT_COLUMNS} FROM "staging_events" LIMIT 0',
        f'COPY "incoming" ({EVENT_COLUMNS}) FROM \'s3://sparkify-bucket/raw/log_data/2018/11/2018-11-01-events.json\' '
        f"IAM_ROLE '{IAM_ROLE}' FORMAT AS JSON 's3://sparkify-bucket/raw/jsonpaths/log_events.json' "
        "MAXERROR 0 REGION 'us-west-2' COMPUPDATE OFF STATUPDATE OFF",
        f'INSERT INTO "staging_events" ({EVENT_COLUMNS}, batch_id) '
        f'SELECT {EVENT_COLUMNS}, %(batch_id)s FROM "incoming"',
        'DROP TABLE "incoming"',
    ]
    assert_transaction_safe(redshift)


def test_hourly_layout_over_a_day_copies_each_hour_prefix_that_holds_objects(redshift, s3):
    s3["keys"] += ["raw/log_data/2018/11/01/00/part-0.json", "raw/log_data/2018/11/01/05/part-0.json"]
    StageToRedshiftOperator(
        task_id="stage", source=SOURCE, iam_role=IAM_ROLE, table="staging_events", s3_key="log_data/%Y/%m/%d/%H/",
        jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
    ).execute(run_context(HOUR, hours=24))
    copies = [s for s in normalized(redshift.statements) if s.startswith("COPY")]
    assert [copy.split(" FROM ")[1].split(" IAM_ROLE")[0] for copy in copies] == [
        "'s3://sparkify-bucket/raw/log_data/2018/11/01/00/'", "'s3://sparkify-bucket/raw/log_data/2018/11/01/05/'",
    ]
    assert_transaction_safe(redshift)


def test_the_audit_record_commits_with_the_copy(redshift, s3):
    result = stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
                   jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json")
    assert [s.split()[0:3] for s in redshift.statements[-2:]] == [
        ["DELETE", "FROM", "load_audit"], ["INSERT", "INTO", "load_audit"],
    ]
    assert (result["object_count"], result["rows_written"]) == (1, None)  # COPY's count stays on the cluster
    assert_transaction_safe(redshift)


def test_events_for_an_hour_without_objects_copy_nothing(redshift, s3):
    result = stage(table="staging_events", s3_key="log_data/2018/11/2018-11-02-events.json",
                   jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json")
    assert result["object_count"] == 0
    assert not any(s.startswith("COPY") for s in redshift.statements)


def test_incremental_songs_copy_only_new_files_through_a_manifest(redshift, s3):
    redshift.results.append([("song_data/A/A/A/TRAAAAA128F429D538.json",)])  # staged by an earlier run
    stage(table="staging_songs", s3_key="song_data/", jsonpaths="jsonpaths/song_data.json",
          jsonpaths_uri=f"{SOURCE}/jsonpaths/song_data.json", incremental=True,
          manifest_prefix="s3://sparkify-work/manifests")
    base = "sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00"
    manifest = json.loads(s3["written"][f"s3://{base}.manifest"])
    assert manifest == {"entries": [
        {"url": "s3://sparkify-bucket/raw/song_data/A/A/B/TRAABBB128F429D538.json", "mandatory": True}]}
    statements = normalized(redshift.statements)
    assert statements[:3] == [
        "LOCK staged_objects",
        "DELETE FROM staged_objects WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s",
        'DELETE FROM "staging_songs" WHERE batch_id = %(batch_id)s',
    ]
    copy = next(s for s in statements if s.startswith('COPY "incoming"'))
    assert f"FROM 's3://{base}.manifest'" in copy and " MANIFEST " in copy
    record = next(s for s in statements if s.startswith("COPY staged_objects"))
    assert f"FROM 's3://{base}.objects.csv'" in record and "FORMAT AS CSV" in record
    assert_transaction_safe(redshift)


def test_bad_records_up_to_max_errors_go_to_the_quarantine_from_the_load_error_view(redshift, s3):
    redshift.results.append([(2,)])  # the quarantine holds two records of this run
    audit = stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
                  jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
                  max_errors="5")
    statements = normalized(redshift.statements)
    copy = statements.index(next(s for s in statements if s.startswith('COPY "incoming"')))
    assert " MAXERROR 5 " in statements[copy]
    assert statements[copy + 1].startswith("INSERT INTO quarantine") and statements[copy + 1].endswith(
        "FROM sys_load_error_detail WHERE query_id = pg_last_copy_id()")
    assert statements[copy + 2].startswith('INSERT INTO "staging_events"')
    assert "SELECT COUNT(*) FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s" in statements
    assert audit["rows_rejected"] == 2
    assert_transaction_safe(redshift)


def test_more_bad_records_than_max_errors_fail_the_run_and_roll_it_back(redshift, s3):
    redshift.results.append([(6,)])  # six rejected over two COPYs, each within its own MAXERROR
    with pytest.raises(AirflowFailException, match="6 records rejected by COPY, more than max_errors=5"):
        stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
              jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
              max_errors=5)
    assert redshift.commits == 0 and redshift.rollbacks == 1


@pytest.mark.parametrize("max_errors", ["-1", "5; DROP TABLE songplays", "1e3"])
def test_max_errors_must_be_a_count(redshift, s3, max_errors):
    with pytest.raises(AirflowFailException, match="max_errors must be a whole number"):
        stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
              jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
              max_errors=max_errors)
    assert not any("DROP" in statement for statement in redshift.statements)


def test_staging_refuses_quotes_smuggled_into_literals(redshift, s3):
    stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
          jsonpaths="jsonpaths/log_events.json", jsonpaths_uri="s3://x/it's.json")
    copy = next(s for s in redshift.statements if s.startswith("COPY"))
    assert "FORMAT AS JSON 's3://x/it''s.json'" in copy


def test_fact_load_deletes_then_inserts_under_a_lock(redshift):
    LoadFactOperator(task_id="f", table="songplays", sql=sql_file("load/songplays.sql"),
                     parameters={"duration_tolerance": 0.5}).execute(run_context(HOUR))
    statements = normalized(redshift.statements)
    assert statements[0] == 'LOCK "songplays"'
    assert statements[1] == ('DELETE FROM "songplays" WHERE "start_time" >= %(interval_start)s '
                             'AND "start_time" < %(interval_end)s')
    assert statements[2].startswith('INSERT INTO "songplays" SELECT songplay_id, start_time')
    assert len(statements) == 3
    assert_transaction_safe(redshift)


def test_late_song_matching_is_an_update_under_the_fact_lock(redshift):
    LoadFactOperator(task_id="f", table="songplays", mode="update", sql=sql_file("load/songplays_late_songs.sql"),
                     parameters={"duration_tolerance": 0.5, "lookback_hours": "168"}).execute(run_context(HOUR))
    statements = normalized(redshift.statements)
    assert statements[0] == 'LOCK "songplays"'
    assert statements[1].startswith("UPDATE songplays SET song_id = late.song_id")
    assert len(statements) == 2
    assert_transaction_safe(redshift)


@pytest.mark.parametrize(("mode", "kwargs", "expected"), [
    ("truncate-insert", {}, ['LOCK "songs"', 'DELETE FROM "songs"', 'INSERT INTO "songs" SELECT']),
    ("append", {}, ['LOCK "songs"', 'INSERT INTO "songs" SELECT']),
    ("upsert", {"key": "song_id"}, [
        'LOCK "songs"',
        'CREATE TEMP TABLE "incoming" (LIKE "songs")',
        'INSERT INTO "incoming" SELECT',
        'DELETE FROM "songs" USING "incoming" WHERE "songs"."song_id" = "incoming"."song_id"',
        'INSERT INTO "songs" SELECT * FROM "incoming"',
        'DROP TABLE "incoming"',
    ]),
])
def test_dimension_modes_are_one_transaction_without_truncate(redshift, mode, kwargs, expected):
    LoadDimensionOperator(task_id="d", table="songs", sql=sql_file("load/songs.sql"), mode=mode,
                          **kwargs).execute(run_context(HOUR))
    statements = normalized(redshift.statements)
    assert len(statements) == len(expected)
    for statement, start in zip(statements, expected, strict=True):
        assert statement.startswith(start)
    assert_transaction_safe(redshift)


def test_upsert_with_version_keeps_the_newer_stored_row(redshift):
    LoadDimensionOperator(task_id="d", table="users", sql=sql_file("load/users.sql"), mode="upsert",
                          key="user_id", version_column="last_seen_at").execute(run_context(HOUR))
    assert normalized(redshift.statements)[3] == (
        'DELETE FROM "incoming" USING "users" AS stored WHERE "incoming"."user_id" = stored."user_id" '
        'AND stored."last_seen_at" > "incoming"."last_seen_at"'
    )


def test_quality_checks_run_their_queries(redshift):
    redshift.results.extend([[("users.user_id", 0)], [(0,)]])
    result = DataQualityOperator(task_id="q", checks=[
        {"sql": sql_file("quality/null_keys.sql"), "expected": 0},
        {"name": "plays", "sql": "SELECT count(*) FROM songplays", "expected": 0},
    ]).execute(run_context(HOUR))
    assert result == {"checks": 2, "failed": 0}
    assert redshift.statements[1] == "SELECT count(*) FROM songplays"


def test_redshift_ddl_uses_distribution_and_sort_keys_and_no_indexes():
    ddl = " ".join(render_sql("create/create_tables.sql", "redshift").split())
    assert "CREATE INDEX" not in ddl and "pg_advisory" not in ddl
    assert ") DISTSTYLE KEY DISTKEY (start_time) SORTKEY (start_time);" not in ddl  # songplays is keyed on song_id
    assert ") DISTSTYLE KEY DISTKEY (song_id) SORTKEY (start_time);" in ddl
    assert ddl.count("DISTSTYLE ALL") == 7  # staging_songs, staged_objects, quarantine, load_audit, users, ...
    postgres = render_sql("create/create_tables.sql", "postgres")
    assert "DISTSTYLE" not in postgres and "CREATE INDEX songplays_start_time_idx" in postgres
