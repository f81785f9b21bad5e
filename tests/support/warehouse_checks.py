"""What the end-to-end and fault tests share: running the backfill tool as a user does,
and comparing a warehouse with the independent reference (``tests/support/reference.py``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from tests.support.paths import REPO

WAREHOUSE_QUERIES = {
    "songplays": "SELECT start_time, user_id, level, song_id, artist_id, session_id, location, user_agent "
                 "FROM songplays",
    "users": "SELECT user_id, first_name, last_name, gender, level FROM users",
    "time": 'SELECT start_time, hour, day, week, month, year, weekday FROM "time"',
    "songs": "SELECT song_id, title, artist_id, year, duration FROM songs",
    "artists": "SELECT artist_id, name, location, latitude, longitude FROM artists",
}
#: Everything the warehouse holds, ids included, to compare two warehouses exactly.
SNAPSHOT_QUERIES = {
    "songplays": "SELECT * FROM songplays ORDER BY songplay_id",
    "users": "SELECT * FROM users ORDER BY user_id",
    "time": 'SELECT * FROM "time" ORDER BY start_time',
    "songs": "SELECT * FROM songs ORDER BY song_id",
    "artists": "SELECT * FROM artists ORDER BY artist_id",
}
#: Staging and audit invariants, each a query returning the rows that break it: every staged event
#: object holds exactly the rows its record counts (a new version replaced the old one, a retry
#: staged nothing twice), no staged row lacks its object's record, and every task of a run has one
#: audit record.
STAGING_INVARIANTS = {
    "staged event objects beside their recorded row count": """
        SELECT o.object_key, o.row_count, COUNT(s.object_key)
        FROM staged_objects AS o LEFT JOIN staging_events AS s ON s.object_key = o.object_key
        WHERE o.table_name = 'staging_events' AND o.rejected_at IS NULL
        GROUP BY o.object_key, o.row_count HAVING COUNT(s.object_key) <> o.row_count""",
    "staged events without their object's record": """
        SELECT DISTINCT object_key FROM staging_events
        WHERE object_key NOT IN (SELECT object_key FROM staged_objects WHERE table_name = 'staging_events')""",
    "songs staged twice": """
        SELECT song_id, COUNT(*) FROM staging_songs GROUP BY song_id HAVING COUNT(*) > 1
            AND COUNT(DISTINCT batch_id) > 1""",
    "audit records of a task run twice": """
        SELECT batch_id, task_id, COUNT(*) FROM load_audit GROUP BY batch_id, task_id HAVING COUNT(*) > 1""",
}


def backfill_command(source: Path | str, warehouse: str, start: datetime, end: datetime, *extra: str) -> list[str]:
    """The backfill tool's command line; ``source`` is a local folder or a URI."""
    uri = source.as_uri() if isinstance(source, Path) else source
    return [sys.executable, str(REPO / "tools" / "backfill.py"), "--from", start.isoformat(),
            "--to", (end - timedelta(hours=1)).isoformat(), "--source", uri, "--warehouse", warehouse, *extra]


def assert_succeeded(returncode: int, stdout: str, stderr: str) -> None:
    assert returncode == 0, stdout[-3000:] + stderr[-5000:]
    assert re.search(r"^(\d+) of \1 runs succeeded", stdout, re.MULTILINE), stdout


def backfill(source: Path, warehouse: str, start: datetime, end: datetime, *extra: str, env: dict | None = None):
    """`make backfill` as a user runs it: a separate process, the real DAG, hour by hour."""
    command = backfill_command(source, warehouse, start, end, *extra)
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900)
    assert_succeeded(result.returncode, result.stdout, result.stderr)
    return result


def with_utc(value):
    return value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) else value


def warehouse_tables(uri: str) -> dict[str, Counter]:
    with psycopg.connect(uri) as connection:
        return {
            table: Counter(tuple(with_utc(value) for value in row) for row in connection.execute(query))
            for table, query in WAREHOUSE_QUERIES.items()
        }


def snapshot(uri: str) -> dict[str, list[tuple]]:
    with psycopg.connect(uri) as connection:
        return {table: connection.execute(query).fetchall() for table, query in SNAPSHOT_QUERIES.items()}


def assert_matches_reference(uri: str, reference: dict[str, Counter]) -> None:
    actual = warehouse_tables(uri)
    for table, expected in reference.items():
        missing, extra = expected - actual[table], actual[table] - expected
        assert not missing and not extra, f"{table}: missing {list(missing)[:3]}, unexpected {list(extra)[:3]}"


def assert_exact(uri: str, reference: dict[str, Counter]) -> None:
    """The star tables equal the reference (no duplicate, no missing row, users by their latest
    event), and staging and audit hold one copy of each object version."""
    assert_matches_reference(uri, reference)
    with psycopg.connect(uri) as connection:
        broken = {name: rows for name, query in STAGING_INVARIANTS.items()
                  if (rows := connection.execute(query).fetchall())}
    assert not broken, broken
