"""The s3:// source, for real: a local S3 endpoint (moto in server mode, on 127.0.0.1) reached
through the Amazon provider's hook and an ``aws_default`` connection with an ``endpoint_url``,
as a user would configure it; the warehouse is compared with the independent reference."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from sparkify import StageToRedshiftOperator
from tests.support.dates import START
from tests.support.reference import build_reference
from tests.support.tasks import run_context
from tests.support.warehouse_checks import assert_matches_reference, assert_succeeded, backfill_command
from tools.generate_data import generate

BUCKET = "sparkify-test"
PREFIX = "raw"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def bucket(s3_endpoint, tmp_path_factory) -> Path:
    """Generated data uploaded under s3://sparkify-test/raw/; the local copy is returned."""
    folder = tmp_path_factory.mktemp("bucket")
    generate(folder, START, START + timedelta(days=1), events_per_day=300, songs=120, users=20, seed=5)
    client = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    for path in folder.rglob("*.json"):
        client.upload_file(str(path), BUCKET, f"{PREFIX}/{path.relative_to(folder).as_posix()}")
    return folder


#: How each staging table is staged: the catalog by key, events by time.
STAGING_KIND = {"staging_songs": {"catalog_key": "song_id"}, "staging_events": {"time_field": "ts"}}


@pytest.fixture
def aws_default(s3_endpoint, monkeypatch) -> dict:
    connection = {
        "conn_type": "aws", "login": CREDENTIALS["aws_access_key_id"],
        "password": CREDENTIALS["aws_secret_access_key"],
        "extra": {"endpoint_url": s3_endpoint, "region_name": CREDENTIALS["region_name"]},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))
    return connection


@pytest.mark.parametrize("small_object", [1 << 20, 1024], ids=["read-ahead", "streamed"])
def test_stage_from_s3_lists_reads_and_is_incremental(warehouse, bucket, aws_default, monkeypatch, small_object):
    monkeypatch.setattr("sparkify.sources.s3.SMALL_OBJECT", small_object)
    source = f"s3://{BUCKET}/{PREFIX}"

    def stage(table, key, jsonpaths, run_id):
        operator = StageToRedshiftOperator(task_id="stage", table=table, source=source, s3_key=key,
                                           jsonpaths=jsonpaths, **STAGING_KIND[table])
        return operator.execute(run_context(START, run_id, hours=24))

    events = stage("staging_events", "log_data/%Y/%m/%Y-%m-%d-events.json", "jsonpaths/log_events.json", "run_1")
    lines = sum(1 for line in (bucket / "log_data/2018/11/2018-11-01-events.json").read_text().splitlines() if line)
    assert (events["object_count"], events["rows_written"]) == (1, lines)
    songs = stage("staging_songs", "song_data/", "jsonpaths/song_data.json", "run_1")
    assert (songs["object_count"], songs["rows_written"]) == (120, 120)
    assert stage("staging_songs", "song_data/", "jsonpaths/song_data.json", "run_2")[
        "object_count"] == 0


@pytest.mark.parametrize("small_object", [1 << 20, 1024], ids=["read-ahead", "streamed"])
def test_compressed_objects_stage_from_s3(warehouse, s3_endpoint, aws_default, tmp_path, monkeypatch, small_object):
    """gzip events and song files, found by the daily key and the song prefix, read ahead or streamed."""
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setattr("sparkify.sources.s3.SMALL_OBJECT", small_object)
    generate(tmp_path, START, START + timedelta(days=1), events_per_day=300, songs=40, users=20, seed=5,
             compress="gzip")
    client = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    name = f"sparkify-packed-{small_object}"
    client.create_bucket(Bucket=name)
    for path in tmp_path.rglob("*.gz"):
        client.upload_file(str(path), name, f"gz/{path.relative_to(tmp_path).as_posix()}")
        if "song_data" in path.parts:
            client.upload_file(str(path), name, f"songs-only/{path.relative_to(tmp_path).as_posix()}")

    def stage(source, table, key, jsonpaths):
        operator = StageToRedshiftOperator(task_id="stage", table=table, source=source, s3_key=key,
                                           jsonpaths=jsonpaths, **STAGING_KIND[table])
        return operator.execute(run_context(START, f"run_{small_object}", hours=24))

    events = stage(f"s3://{name}/gz", "staging_events", "log_data/%Y/%m/%Y-%m-%d-events.json",
                   "jsonpaths/log_events.json")
    day = gzip.decompress((tmp_path / "log_data/2018/11/2018-11-01-events.json.gz").read_bytes())
    assert (events["object_count"], events["rows_written"]) == (1, len(day.splitlines()))
    songs = stage(f"s3://{name}/gz", "staging_songs", "song_data/", "jsonpaths/song_data.json")
    assert (songs["object_count"], songs["rows_written"]) == (40, 40)
    with pytest.raises(AirflowFailException, match=f"no objects under s3://{name}/songs-only/log_data/"):
        stage(f"s3://{name}/songs-only", "staging_events", "log_data/%Y/%m/%Y-%m-%d-events.json",
              "jsonpaths/log_events.json")


def test_a_listing_s3_refuses_fails_naming_the_prefix(s3_endpoint, aws_default):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk.exceptions import AirflowException

    from sparkify.sources.s3 import S3Source

    client = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    client.create_bucket(Bucket="sparkify-vanishing")
    client.put_object(Bucket="sparkify-vanishing", Key="raw/song_data/A/A/A/TRAAAAA.json", Body=b"{}")
    source = S3Source("s3://sparkify-vanishing/raw", S3Hook(aws_conn_id="aws_default"))
    client.delete_object(Bucket="sparkify-vanishing", Key="raw/song_data/A/A/A/TRAAAAA.json")
    client.delete_bucket(Bucket="sparkify-vanishing")
    with pytest.raises(AirflowException, match=r"cannot list s3://sparkify-vanishing/raw/song_data/: .*NoSuchBucket"):
        source.list_objects("song_data/")


def test_stage_from_a_missing_bucket_is_a_clear_error(warehouse, aws_default, s3_endpoint):
    from airflow.sdk.exceptions import AirflowFailException

    operator = StageToRedshiftOperator(task_id="stage", table="staging_events", source="s3://no-such-bucket/raw",
                                       s3_key="log_data/", jsonpaths="jsonpaths/log_events.json", time_field="ts")
    with pytest.raises(AirflowFailException, match="bucket does not exist or is not readable: s3://no-such-bucket"):
        operator.execute(run_context(START))


def test_stage_from_a_prefix_without_objects_is_a_clear_error(warehouse, bucket, aws_default):
    from airflow.sdk.exceptions import AirflowFailException

    operator = StageToRedshiftOperator(task_id="stage", table="staging_events", source=f"s3://{BUCKET}/rwa",
                                       s3_key="log_data/", jsonpaths="jsonpaths/log_events.json", time_field="ts")
    with pytest.raises(AirflowFailException, match=f"no objects under s3://{BUCKET}/rwa/: is the source right"):
        operator.execute(run_context(START))


def test_a_day_from_s3_through_the_real_dag_gives_the_reference(bucket, aws_default, warehouse_uri):
    end = START + timedelta(days=1)
    command = backfill_command(f"s3://{BUCKET}/{PREFIX}", warehouse_uri, START, end)
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), timeout=900)
    assert_succeeded(result.returncode, result.stdout, result.stderr)
    assert_matches_reference(warehouse_uri, build_reference(bucket, START, end))
