"""The Redshift path without a cluster: a warehouse connection that records the exact SQL each
operator sends, and the ETags of the fixed S3 listing.

The ``redshift`` fixture (tests/conftest.py) makes the warehouse connection of type redshift and
replaces the provider hook's connection by a RecordingConnection; the ``s3`` fixture lists fixed
keys with ``etag``'s ETags. Shared by the tests of the statements (sql/test_redshift_sql.py), of
their parsing (sql/test_sql_parse.py), of the golden COPY texts and of the operators' Redshift
paths (Data API, lineage, security).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import redshift_connector.core

HOUR = datetime(2018, 11, 1, 0, tzinfo=timezone.utc)
SOURCE = "s3://sparkify-bucket/raw"
IAM_ROLE = "arn:aws:iam::123456789012:role/sparkify-copy"


class RecordingCursor:
    #: No result columns: what the common SQL hook reads after a statement (create_tables).
    description = None

    def __init__(self, connection: RecordingConnection) -> None:
        self.connection = connection
        self.paramstyle = "format"
        self.rowcount = 0

    def close(self) -> None:
        pass

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
        # Unless a test says otherwise, a count counts nothing (as on an empty warehouse): a bare count, and
        # each labelled figure of a quality check (``SELECT 'label', COUNT(*) … UNION ALL …``), all 0 there.
        statement = self.connection.statements[-1]
        if statement.startswith("SELECT COUNT(*)"):
            return [(0,)]
        return [(label, 0) for label in re.findall(r"SELECT\s+'([^']*)'\s*,", statement)]

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


def s3_notification(bucket: str, key: str, etag: str | None = None, removed: bool = False) -> str:
    """The body of an S3 event notification as S3 sends it to SQS (the key URL-encoded)."""
    import json
    from urllib.parse import quote_plus

    found = {"key": quote_plus(key), "size": 10, **({"eTag": etag} if etag else {})}
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete" if removed else
        "ObjectCreated:Put", "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": found},
    }]})


def assert_transaction_safe(connection: RecordingConnection, reads: int = 0) -> None:
    """One commit at the end (after ``reads`` read-only transactions before it, each its own commit),
    and nothing that commits on its own in Redshift."""
    assert connection.commits == 1 + reads and connection.rollbacks == 0
    assert not any(s.upper().startswith(("TRUNCATE", "COMMIT", "BEGIN")) for s in connection.statements)
