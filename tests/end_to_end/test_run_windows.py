"""A run loads what it was asked for, and no hour succeeds while its data is set aside: on the real
DAG and a real PostgreSQL, each warehouse compared with the independent reference of exactly the
windows the runs were asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from tests.support.paths import REPO
from tests.support.reference import build_reference
from tests.support.smtp_inbox import body, smtp_server
from tests.support.warehouse_checks import assert_exact, assert_succeeded, backfill, backfill_command
from tools import local_pg
from tools.generate_data import generate

DAY = datetime(2018, 11, 15, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
BAD_LINE = 100


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Four generated days in the public daily layout, 2018-11-14 to 2018-11-17."""
    folder = tmp_path_factory.mktemp("generated")
    generate(folder, DAY - timedelta(days=1), DAY + timedelta(days=3), events_per_day=300, songs=100, users=12,
             seed=19)
    return folder


@pytest.fixture
def bucket(generated, tmp_path) -> Path:
    folder = tmp_path / "bucket"
    shutil.copytree(generated, folder)
    return folder


def at(hour: int) -> datetime:
    return DAY + hour * HOUR


def union(*references: dict[str, Counter]) -> dict[str, Counter]:
    """The reference of several disjoint windows: plays and times add up; a user keeps the row of
    their latest event, from the latest window they appear in (windows given in time order)."""
    merged: dict[str, Counter] = {table: Counter() for table in references[0]}
    users: dict[str, tuple] = {}
    for reference in references:
        merged["songplays"] += reference["songplays"]
        merged["time"] += reference["time"]
        users.update({row[0]: row for row in reference["users"]})
        merged["songs"], merged["artists"] = reference["songs"], reference["artists"]
    merged["users"] = Counter(users.values())
    return merged


def rows(uri: str, query: str, *parameters) -> list[tuple]:
    with psycopg.connect(uri) as connection:
        return connection.execute(query, parameters).fetchall()


def test_a_day_backfilled_into_an_empty_warehouse_holds_exactly_that_day(bucket, warehouse_uri):
    """The day's run lists the day before in its look-back and stages it, unasked: it loads none of it."""
    backfill(bucket, warehouse_uri, at(0), at(24))
    assert_exact(warehouse_uri, build_reference(bucket, at(0), at(24)))
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM restatements") == [(0,)]
    # Hours of the day before, backfilled newest first afterwards: the union of the two windows, exactly.
    backfill(bucket, warehouse_uri, at(-14), at(-11), "--hourly", "--reverse")
    both = union(build_reference(bucket, at(-14), at(-11)), build_reference(bucket, at(0), at(24)))
    assert_exact(warehouse_uri, both)


def make_backfill(bucket: Path, warehouse: str, first: datetime, last: datetime) -> subprocess.Popen:
    return subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed", "backfill", f"PY={sys.executable}",
         f"FROM={first.isoformat()}", f"TO={last.isoformat()}", f"SOURCE={bucket.as_uri()}", f"WAREHOUSE={warehouse}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_overlapping_backfills_at_once_hold_exactly_the_union_of_their_windows(bucket, warehouse_uri):
    """Two days, and their second half at the same moment (the issue's report: 414 plays outside
    their windows); each lists the days either side and loads none of them."""
    processes = [make_backfill(bucket, warehouse_uri, at(0), at(47)),
                 make_backfill(bucket, warehouse_uri, at(24), at(47))]
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert_succeeded(process.returncode, stdout, stderr)
    assert_exact(warehouse_uri, build_reference(bucket, at(0), at(48)))


def corrupt(path: Path, line: int) -> str:
    """Break one line of an object as a faulty producer would; the object as it was, to put back."""
    good = path.read_text()
    lines = good.split("\n")
    lines[line - 1] = lines[line - 1][:-7]  # cut inside the last value
    rewrite(path, "\n".join(lines))
    return good


def rewrite(path: Path, text: str) -> None:
    """A new version of an object (its size or modification time changes)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def hourly_runs(bucket: Path, warehouse: str, first: int, last: int, env: dict | None = None):
    """`make backfill --hourly` of the hours first..last of DAY, whatever its runs' states."""
    command = backfill_command(bucket, warehouse, at(first), at(last + 1), "--hourly")
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900)


def run_notes(first: datetime, last: datetime) -> list[str]:
    """The notes (run summaries) of the latest hourly runs of the hours first..last."""
    with psycopg.connect(local_pg.database_uri("airflow")) as metadata:
        return [note for (note,) in metadata.execute(
            "SELECT DISTINCT ON (r.logical_date) n.content FROM dag_run AS r JOIN dag_run_note AS n "
            "ON n.dag_run_id = r.id WHERE r.dag_id = 'sparkify_dwh' AND r.logical_date BETWEEN %s AND %s "
            "ORDER BY r.logical_date, r.id DESC", (first, last)).fetchall()]


def test_a_bad_event_file_fails_every_run_of_its_hours_until_it_changes(bucket, warehouse_uri, tmp_path):
    day_file = bucket / f"log_data/{DAY:%Y/%m/%Y-%m-%d}-events.json"
    good = corrupt(day_file, BAD_LINE)
    failed = hourly_runs(bucket, warehouse_uri, 10, 14)
    assert failed.returncode == 1 and "0 of 5 runs succeeded" in failed.stdout, failed.stdout[-3000:]
    assert failed.stdout.count(f"{day_file.as_uri()} line {BAD_LINE}: not valid JSON") >= 5, failed.stdout[-3000:]
    assert "re-publish a fixed object" in failed.stdout
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM songplays") == [(0,)], "no hour loaded while its data is aside"
    notes = run_notes(at(10), at(14))
    assert len(notes) == 5 and all(f"stage_events: AirflowFailException: staging_events: {day_file.as_uri()} line "
                                   f"{BAD_LINE}" in note for note in notes), notes
    # A fixed version re-published, the hours run once more: exact.
    rewrite(day_file, good)
    hourly_runs_ok = hourly_runs(bucket, warehouse_uri, 10, 14)
    assert_succeeded(hourly_runs_ok.returncode, hourly_runs_ok.stdout, hourly_runs_ok.stderr)
    assert_exact(warehouse_uri, build_reference(bucket, at(10), at(15)))
    # Broken again; this time the limit is raised: the good records load, the bad one is quarantined.
    corrupt(day_file, BAD_LINE)
    raised = hourly_runs(bucket, warehouse_uri, 10, 14, env={"AIRFLOW_VAR_SPARKIFY_MAX_ERRORS": "1"})
    assert_succeeded(raised.returncode, raised.stdout, raised.stderr)
    assert rows(warehouse_uri, "SELECT object_uri, line_number FROM quarantine") == [(day_file.as_uri(), BAD_LINE)]
    without_it = tmp_path / "without_the_bad_line"
    shutil.copytree(bucket, without_it)
    lines = day_file.read_text().split("\n")
    (without_it / day_file.relative_to(bucket)).write_text("\n".join(lines[:BAD_LINE - 1] + lines[BAD_LINE:]))
    assert_exact(warehouse_uri, build_reference(without_it, at(10), at(15)))


def test_a_bad_song_file_is_set_aside_the_runs_go_on_and_every_run_names_it(bucket, warehouse_uri):
    song_file = sorted((bucket / "song_data").rglob("*.json"))[0]
    record = json.loads(song_file.read_text())
    rewrite(song_file, song_file.read_text()[:-10])
    first = hourly_runs(bucket, warehouse_uri, 10, 10)
    assert "0 of 1 runs succeeded" in first.stdout and f"{song_file.as_uri()} line 1" in first.stdout
    with smtp_server() as inbox:
        later = hourly_runs(bucket, warehouse_uri, 11, 12, env=inbox.settings())
    assert_succeeded(later.returncode, later.stdout, later.stderr)
    assert inbox.subjects == [f"[sparkify] sparkify_dwh 2018-11-15 {hour}:00 → {hour + 1}:00 UTC: stage_songs warning"
                              for hour in (11, 12)]
    assert f"Set aside: {song_file.as_uri()}: staging_songs: {song_file.as_uri()} line 1" in body(inbox.messages[0])
    for note in run_notes(at(11), at(12)):
        assert f"- Objects set aside as bad (until they change): {song_file.as_uri()} (staging_songs: " in note, note
    with psycopg.connect(local_pg.database_uri("airflow")) as metadata:
        (extra,) = metadata.execute(
            "SELECT e.extra FROM asset_event AS e JOIN dag_run AS r ON r.run_id = e.source_run_id "
            "AND r.dag_id = e.source_dag_id WHERE r.dag_id = 'sparkify_dwh' AND r.logical_date = %s "
            "AND e.source_task_id = 'load_songs' ORDER BY e.id DESC LIMIT 1", (at(12),)).fetchone()
    assert extra["objects_set_aside"] == [song_file.as_uri()]
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM songs WHERE song_id = %s", record["song_id"]) == [(0,)]
    rewrite(song_file, json.dumps(record))
    fixed = hourly_runs(bucket, warehouse_uri, 13, 13)
    assert_succeeded(fixed.returncode, fixed.stdout, fixed.stderr)
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM songs WHERE song_id = %s", record["song_id"]) == [(1,)]
    assert "set aside as bad" not in run_notes(at(13), at(13))[0]
