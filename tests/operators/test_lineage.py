"""OpenLineage: each operator's input and output datasets, as the OpenLineage provider extracts them
after the operator ran on the real PostgreSQL warehouse (and, for Redshift, on the recorded path)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from airflow.providers.openlineage.extractors.manager import ExtractorManager
from airflow.utils.state import TaskInstanceState

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from sparkify.lineage import warehouse_namespace
from tests.support.inputs import HOUR, song, write_song
from tests.support.redshift_recording import IAM_ROLE, SOURCE
from tests.support.tasks import WAREHOUSE_CONN, run_context, sql_file


def lineage(operator, run_id: str = "run_1") -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Run the operator, then extract its lineage the way the OpenLineage listener does on success."""
    operator.execute(run_context(HOUR, run_id))
    metadata = ExtractorManager().extract_metadata(
        dagrun=SimpleNamespace(run_id=run_id), task=operator,
        task_instance_state=TaskInstanceState.SUCCESS, task_instance=SimpleNamespace(),
    )
    return ([(d.namespace, d.name) for d in metadata.inputs], [(d.namespace, d.name) for d in metadata.outputs])


@pytest.fixture
def tables(warehouse):
    """The warehouse's namespace and each table's dataset name, from the connection the test set."""
    connection = json.loads(os.environ[WAREHOUSE_CONN])
    host = "localhost" if connection.get("host", "localhost").startswith("/") else connection["host"]
    namespace = f"postgres://{host}:{connection.get('port', 5432)}"
    return lambda *names: [(namespace, f"{connection['schema']}.public.{name}") for name in names]


def test_the_star_schema_lineage_on_postgres(warehouse, bucket, tables):
    write_song(bucket, "TRBBBBW128F429D538", song("SOB", "Song B", "ARB", "Artist B", 100.0))
    source = bucket.as_uri()

    stage_events = StageToRedshiftOperator(
        task_id="stage_events", table="staging_events", source=source,
        s3_key="log_data/2018/11/2018-11-01-events.json", jsonpaths="jsonpaths/log_events.json", time_field="ts",
    )
    assert lineage(stage_events) == (
        [("file", str(bucket / "log_data/2018/11/2018-11-01-events.json"))], tables("staging_events"))

    stage_songs = StageToRedshiftOperator(
        task_id="stage_songs", table="staging_songs", source=source, s3_key="song_data/",
        jsonpaths="jsonpaths/song_data.json", catalog_key="song_id",
    )
    assert lineage(stage_songs) == ([("file", str(bucket / "song_data"))], tables("staging_songs"))
    # A later run with no new song file read nothing.
    assert lineage(stage_songs, run_id="run_2") == ([], tables("staging_songs"))

    songplays = LoadFactOperator(task_id="load_songplays", table="songplays", sql=sql_file("load/songplays.sql"),
                                 parameters={"duration_tolerance": 0.5})
    assert lineage(songplays) == (tables("staging_events", "staging_songs"), tables("songplays"))

    late = LoadFactOperator(task_id="match_late_songs", table="songplays", mode="update",
                            sql=sql_file("load/songplays_late_songs.sql"),
                            parameters={"duration_tolerance": 0.5, "lookback_hours": "168"})
    assert lineage(late) == (tables("staging_events", "staging_songs"), tables("songplays"))

    for table, mode, key, read in [("users", "upsert", "user_id", "staging_events"),
                                   ("songs", "upsert", "song_id", "staging_songs"),
                                   ("artists", "upsert", "artist_id", "staging_songs"),
                                   ("time", "append", None, "songplays")]:
        load = LoadDimensionOperator(task_id=f"load_{table}", table=table, sql=sql_file(f"load/{table}.sql"),
                                     mode=mode, key=key)
        assert lineage(load) == (tables(read), tables(table)), table

    checks = DataQualityOperator(task_id="checks", checks=[
        {"sql": sql_file("quality/null_keys.sql"), "expected": 0},
        {"sql": sql_file("quality/songplays_match_staged_events.sql"), "expected": 0},
    ])
    assert lineage(checks) == (tables("artists", "songplays", "songs", "staging_events", "time", "users"), [])


def test_s3_objects_into_redshift(redshift, s3):
    stage = StageToRedshiftOperator(
        task_id="stage_events", table="staging_events", source=SOURCE, iam_role=IAM_ROLE,
        s3_key="log_data/2018/11/2018-11-01-events.json", jsonpaths="jsonpaths/log_events.json", time_field="ts",
        jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json", manifest_prefix="s3://sparkify-work/manifests",
    )
    assert lineage(stage) == (
        [("s3://sparkify-bucket", "raw/log_data/2018/11/2018-11-01-events.json")],
        # The fixture's host is not a cluster endpoint: the namespace falls back to the whole host name.
        [("redshift://example.us-west-2.redshift.amazonaws.com:5439", "dev.public.staging_events")],
    )


@pytest.mark.parametrize(("connection", "expected"), [
    ({"conn_type": "redshift", "host": "sparkify.c1abcdefgh.us-west-2.redshift.amazonaws.com", "schema": "dev"},
     ("redshift://sparkify.us-west-2:5439", "dev")),
    ({"conn_type": "redshift", "host": "sparkify.c1abcdefgh.cn-north-1.redshift.amazonaws.com.cn", "schema": "dev"},
     ("redshift://sparkify.cn-north-1:5439", "dev")),
    ({"conn_type": "redshift", "host": "etl.123456789012.eu-west-1.redshift-serverless.amazonaws.com", "port": 5440,
      "schema": "dev"}, ("redshift://etl.eu-west-1:5440", "dev")),
    ({"conn_type": "redshift", "schema": "dev", "extra": {"use_data_api": True, "workgroup_name": "etl",
                                                          "database": "analytics", "region_name": "eu-west-1"}},
     ("redshift://etl.eu-west-1:5439", "analytics")),
    ({"conn_type": "postgres", "host": "db.internal", "port": 6432, "schema": "sparkify"},
     ("postgres://db.internal:6432", "sparkify")),
])
def test_warehouse_namespaces_follow_the_openlineage_naming_spec(monkeypatch, connection, expected):
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_TEST", json.dumps(connection))
    assert warehouse_namespace("lineage_test") == expected
