"""The Redshift path without a cluster: a warehouse connection that records the exact SQL each
operator sends, and a fixed S3 listing.

The warehouse connection is of type redshift; the provider hook's connection is replaced by a
RecordingConnection. Shared by the tests of the statements (test_redshift_sql.py), of their
parsing (test_sql_parse.py) and of the golden COPY texts.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
import redshift_connector.core
from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from conftest import WAREHOUSE_CONN

HOUR = datetime(2018, 11, 1, 0, tzinfo=timezone.utc)
SOURCE = "s3://sparkify-bucket/raw"
IAM_ROLE = "arn:aws:iam::123456789012:role/sparkify-copy"


class RecordingCursor:
    def __init__(self, connection: RecordingConnection) -> None:
        self.connection = connection
        self.paramstyle = "format"
        self.rowcount = 0

    def execute(self, statement: str, parameters=None) -> None:
        self.connection.statements.append(statement)
        self.connection.parameters.append(parameters)
        if self.connection.failures and statement.startswith(self.connection.failures[0][0]):
            raise self.connection.failures.pop(0)[1]
        if parameters and re.search(r"%\(\w+\)s", statement):
            # What redshift_connector would send: the statement with $n placeholders.
            self.connection.sent.append(redshift_connector.core.convert_paramstyle(self.paramstyle, statement)[0])
            assert self.paramstyle == "pyformat"
        else:
            self.connection.sent.append(statement)

    def fetchall(self) -> list:
        if self.connection.results:
            return self.connection.results.pop(0)
        # Unless a test says otherwise, a count counts nothing (as on an empty warehouse).
        return [(0,)] if self.connection.statements[-1].startswith("SELECT COUNT(*)") else []

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None


class RecordingConnection:
    def __init__(self) -> None:
        self.statements: list[str] = []
        #: The parameters each statement was given, in the same order.
        self.parameters: list[dict | None] = []
        #: The statements as the driver puts them on the wire (%(name)s made $n).
        self.sent: list[str] = []
        self.results: list[list] = []
        #: ``(statement prefix, error)``: the next statement that starts so raises the error, once.
        self.failures: list[tuple[str, Exception]] = []
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


def etag(key: str) -> str:
    """A fixed ETag per key, as S3 gives one per object version."""
    return f"etag-{len(key)}-{key.rsplit('/', 1)[-1][:8]}"


def stable_temp_names(statement: str) -> str:
    """Temporary table names are random per run: one stable name instead."""
    return re.sub(r'"incoming_[0-9a-f]{12}"', '"incoming"', statement)


def normalized(statements: list[str]) -> list[str]:
    """The data statements (the audit record has its own test), temporary table names made
    stable and whitespace folded."""
    return [stable_temp_names(" ".join(s.split())) for s in statements if "load_audit" not in s]


def assert_transaction_safe(connection: RecordingConnection) -> None:
    """One commit at the end, and nothing that commits on its own in Redshift."""
    assert connection.commits == 1 and connection.rollbacks == 0
    assert not any(s.upper().startswith(("TRUNCATE", "COMMIT", "BEGIN")) for s in connection.statements)
