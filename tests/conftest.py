"""Fixtures every layer may use: a real PostgreSQL (the embedded one), a fresh warehouse
database per test, the small hand-written bucket, and the recorded Redshift path (a warehouse
connection of type redshift that records every statement, and a fixed S3 listing).
Fixtures of one layer are in that layer's conftest.py; helpers are in ``tests.support``.

Airflow reads its configuration when first imported, so the environment is set here, at
import, before any test module or layer conftest imports it: nothing this module imports at
its top may import Airflow (the hooks the Redshift fixtures patch are imported inside them).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.inputs import DAY_KEY, event, song, write_lines, write_song
from tests.support.paths import REPO
from tests.support.redshift_recording import RecordingConnection, etag
from tests.support.tasks import WAREHOUSE_CONN
from tools import local_pg
from tools.airflow_env import connection_json
from tools.ddl import create_tables
from tools.moto_server import MotoServer

if "airflow" in sys.modules:
    raise RuntimeError("Airflow was imported before tests/conftest.py set its environment")
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sparkify-airflow-home-"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"


@pytest.fixture(scope="session")
def pg_server() -> None:
    """The embedded PostgreSQL server, started once for the whole run."""
    local_pg.ensure_server()


@pytest.fixture
def warehouse_uri(pg_server: None) -> Iterator[str]:
    """A fresh, empty warehouse database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    local_pg.ensure_database(name)
    yield local_pg.database_uri(name)
    with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def warehouse(warehouse_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """The fresh warehouse with its tables created, set as the ``sparkify_warehouse``
    connection, and an autocommit connection to inspect it."""
    monkeypatch.setenv(WAREHOUSE_CONN, connection_json(warehouse_uri))
    create_tables(warehouse_uri)
    with psycopg.connect(warehouse_uri, autocommit=True) as connection:
        yield connection


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    """A folder laid out like the bucket: the day file of 2018-11-01 (five events, one of the next
    hour, no final newline) and one song file. (Some modules have a ``bucket`` of their own.)"""
    root = tmp_path / "bucket"
    write_lines(root / DAY_KEY, [
        event(10, page="Home", item=0),
        event(20, item=1, song="Song A", artist="Artist A", length=200.2),
        event(30, item=2, song="Song A", artist="Other artist", length=200.0),
        event(40, page="Login", user="", item=0, session=2),
        event(3600 + 5, item=3),  # the next hour
    ], trailing_newline=False)
    write_song(root, "TRAAAAW128F429D538", song("SOA", "Song A", "ARA", "Artist A", 200.0))
    return root


@pytest.fixture
def redshift(monkeypatch: pytest.MonkeyPatch) -> RecordingConnection:
    """The ``sparkify_warehouse`` connection of type redshift, its hook's connection a RecordingConnection."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    connection = RecordingConnection()
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps({
        "conn_type": "redshift", "host": "example.us-west-2.redshift.amazonaws.com", "port": 5439,
        "login": "loader", "password": "secret-password", "schema": "dev",
    }))
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: connection)
    return connection


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> dict:
    """S3 as a fixed listing under s3://sparkify-bucket/raw/ (ETags from ``etag``); what is written is kept."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    bucket = {"keys": ["raw/log_data/2018/11/2018-11-01-events.json",
                       "raw/song_data/A/A/A/TRAAAAA128F429D538.json",
                       "raw/song_data/A/A/B/TRAABBB128F429D538.json"],
              "written": {}}
    monkeypatch.setattr(S3Hook, "check_for_bucket", lambda self, name: name == "sparkify-bucket")
    monkeypatch.setattr(S3Hook, "check_for_key", lambda self, key, bucket_name: key in bucket["keys"])
    monkeypatch.setattr(S3Hook, "head_object", lambda self, key, bucket_name: {"ETag": f'"{etag(key)}"'}
                        if key in bucket["keys"] else None)
    monkeypatch.setattr(S3Hook, "iter_file_metadata",
                        lambda self, prefix, bucket_name, page_size=None, max_items=None: iter(
                            [{"Key": k, "ETag": f'"{etag(k)}"'} for k in bucket["keys"] if k.startswith(prefix)]))
    monkeypatch.setattr(S3Hook, "list_keys",
                        lambda self, bucket_name, prefix, max_items=None: [
                            k for k in bucket["keys"] if k.startswith(prefix)][:max_items])
    monkeypatch.setattr(S3Hook, "load_string",
                        lambda self, data, key, replace: bucket["written"].__setitem__(key, data))
    return bucket


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A local AWS endpoint (moto in server mode, S3 and SQS, with its request log) for the session."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def sqs_queue(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty SQS queue on the local endpoint, reached through ``aws_default``; its URL.
    (With the ``s3`` fixture, S3 stays the fixed listing: only SQS goes to the endpoint.)"""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(moto_server.aws_connection()))
    return moto_server.client("sqs").create_queue(QueueName=f"catalog-{uuid.uuid4().hex[:8]}")["QueueUrl"]
