"""Alerts for real: `make backfill`'s runs of the real DAG against a warehouse it may not write,
with the SMTP notifier pointed at an SMTP server this test runs on 127.0.0.1 (aiosmtpd); the
messages it received are read back. Without the Variable, no alert is sent. (The late-hour alert
needs the scheduler: tests/services/test_services.py.)"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.support.smtp_inbox import RECIPIENT, SENDER, Inbox, body, smtp_server
from tests.support.warehouse_checks import backfill_command
from tools import local_pg
from tools.generate_data import generate

HOUR = datetime(2018, 11, 1, 14, tzinfo=timezone.utc)
RUN_ID = "manual__2018-11-01T14:00:00+00:00"


@pytest.fixture
def inbox():
    with smtp_server() as inbox:
        yield inbox


def unwritable_warehouse() -> str:
    """An empty warehouse database reached as a role that may not create tables in it (the public
    schema grants CREATE to its owner only): the backfill's check of the warehouse passes, and
    create_tables then fails on every try."""
    uri = local_pg.ensure_database("alerts_no_ddl")
    with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
        admin.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sparkify_no_ddl') THEN "
                      "CREATE ROLE sparkify_no_ddl LOGIN; END IF; END $$")
    with psycopg.connect(uri, autocommit=True) as owner:
        owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    return uri.replace("postgres:@", "sparkify_no_ddl:@", 1)


def failing_backfill(tmp_path, settings: dict[str, str]) -> subprocess.CompletedProcess:
    """One hour of `make backfill` whose warehouse may not be written: create_tables fails every
    try (3 retries 5 s apart, then it fails, and so does the run)."""
    source = tmp_path / "bucket"
    generate(source, HOUR, HOUR + timedelta(hours=1), events_per_day=100, songs=20, users=5, seed=3)
    command = backfill_command(source, unwritable_warehouse(), HOUR, HOUR + timedelta(hours=1))
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **settings}, timeout=300)


def test_a_retried_task_a_failed_task_and_the_failed_run_send_mail(pg_server, tmp_path, inbox: Inbox):
    result = failing_backfill(tmp_path, inbox.settings())
    assert result.returncode == 1 and "FAILED" in result.stdout, result.stdout

    hour = "2018-11-01 14:00 → 15:00 UTC"
    assert inbox.subjects == [
        *[f"[sparkify] sparkify_dwh {hour}: create_tables (try {n} of 4) up for retry" for n in (1, 2, 3)],
        f"[sparkify] sparkify_dwh {hour}: create_tables (try 4 of 4) failed",
        f"[sparkify] sparkify_dwh {hour}: create_tables failed the run",
    ], inbox.subjects
    for message in inbox.messages:
        assert message["From"] == SENDER and message["X-Envelope-To"] == RECIPIENT
        text = body(message)
        assert f"DAG run: sparkify_dwh / {RUN_ID}" in text and f"Hour: {hour}" in text
    for message in inbox.messages[:4]:
        # The first line of the error: the role may not create the tables.
        text = body(message)
        assert "Error: InsufficientPrivilege: permission denied for schema public" in text, text
        assert "Log: http" in text
    # dag.test() gives DAG callbacks no way to read the task's XCom: the run's alert points to the task's.
    assert "Error: see the alert of create_tables" in body(inbox.messages[4])
    assert "Reason: task_failure" in body(inbox.messages[4])
    # The failed run's note says what failed.
    with psycopg.connect(local_pg.database_uri("airflow")) as metadata:
        (note,) = metadata.execute(
            "SELECT n.content FROM dag_run AS r JOIN dag_run_note AS n ON n.dag_run_id = r.id "
            "WHERE r.dag_id = 'sparkify_dwh' AND r.run_id = %s", (RUN_ID,)).fetchone()
    assert note.startswith("**Run summary**: failed, 2018-11-01 14:00 → 15:00 UTC"), note
    assert "- Rows written: none (the loads did not run)" in note and "- Quality checks: not run" in note, note
    assert note.endswith("- Failed: create_tables (11 tasks after it did not run)\n"
                         "  - create_tables: InsufficientPrivilege: permission denied for schema public"), note


def test_no_variable_no_alert(pg_server, tmp_path, inbox: Inbox):
    result = failing_backfill(tmp_path, {})
    assert result.returncode == 1
    assert inbox.messages == []
