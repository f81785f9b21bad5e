"""The real DAG, run hour by hour with `make backfill`'s tool over generated data,
against a real PostgreSQL; every table is compared with the independent reference."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from tests.support.reference import build_reference
from tests.support.warehouse_checks import SNAPSHOT_QUERIES, assert_matches_reference, backfill, snapshot
from tools import local_pg
from tools.generate_data import generate

START = datetime(2018, 11, 1, tzinfo=timezone.utc)
DAYS = 2
END = START + timedelta(days=DAYS)


@pytest.fixture(scope="module")
def daily_source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bucket")
    generate(folder, START, END, events_per_day=300, songs=200, users=25, seed=7)
    return folder


@pytest.fixture(scope="module")
def reference(daily_source) -> dict[str, Counter]:
    expected = build_reference(daily_source, START, END)
    # The data exercises what the SQL must get right, or the comparison proves little.
    plays = expected["songplays"]
    assert sum(plays.values()) > 300
    assert any(row[3] for row in plays) and any(row[3] is None for row in plays)
    assert len(expected["users"]) > 10 and len(expected["time"]) == len(plays)
    return expected


def test_48_hours_by_day_rerun_and_hourly_in_reverse_give_the_reference(daily_source, reference, warehouse_uri):
    """Whole days, then the same again, then every hour on its own newest first: one warehouse."""
    backfill(daily_source, warehouse_uri, START, END)
    assert_matches_reference(warehouse_uri, reference)
    first = snapshot(warehouse_uri)

    backfill(daily_source, warehouse_uri, START, END)
    assert snapshot(warehouse_uri) == first, "running the same backfill again changed the warehouse"

    with psycopg.connect(warehouse_uri, autocommit=True) as connection:
        for table in SNAPSHOT_QUERIES:
            connection.execute(f'DROP TABLE "{table}"')
        connection.execute("DROP TABLE staging_events, staging_songs, staged_objects")
    backfill(daily_source, warehouse_uri, START, END, "--hourly", "--reverse")
    assert snapshot(warehouse_uri) == first, "hours loaded one by one, newest first, gave another warehouse"


def test_partial_days_run_hour_by_hour_around_whole_days(daily_source, warehouse_uri):
    """The first run (22:00) meets the day file new: it stages it, and loads its own hour only (no run
    loaded the day's earlier hours), so the warehouse holds exactly the hours asked for."""
    start = START + timedelta(hours=22)
    began = datetime.now(timezone.utc)
    result = backfill(daily_source, warehouse_uri, start, END)
    assert "[1/3] 2018-11-01 22:00 → 2018-11-01 23:00 UTC" in result.stdout
    assert "[3/3] 2018-11-02 00:00 → 2018-11-03 00:00 UTC" in result.stdout
    assert_matches_reference(warehouse_uri, build_reference(daily_source, start, END))
    # The runs as the REST API serves them (DagRun.duration: end_date - start_date): started
    # when the backfill ran, lasting seconds, not since their logical date in 2018.
    with psycopg.connect(local_pg.database_uri("airflow")) as metadata:
        runs = metadata.execute(
            "SELECT dag_id, start_date, EXTRACT(EPOCH FROM end_date - start_date) FROM dag_run "
            "WHERE logical_date IN (%s, %s, %s) AND dag_id LIKE 'sparkify_dwh%%' AND start_date >= %s",
            (start, start + timedelta(hours=1), START + timedelta(days=1), began),
        ).fetchall()
    assert sorted(dag_id for dag_id, _, _ in runs) == ["sparkify_dwh", "sparkify_dwh", "sparkify_dwh_daily"], runs
    assert all(0 < seconds < 60 for _, _, seconds in runs), runs


def test_each_run_has_its_summary_as_note_and_its_asset_events_carry_the_figures(daily_source, warehouse_uri):
    hour = START + timedelta(hours=22)
    began = datetime.now(timezone.utc)
    # 21:00 ran before its object landed (loaded empty); 22:00 meets the day file new: it restates 21:00.
    held = daily_source.parent / "held.json"
    day_file = daily_source / "log_data/2018/11/2018-11-01-events.json"
    day_file.rename(held)
    try:
        backfill(daily_source, warehouse_uri, hour - timedelta(hours=1), hour,
                 env={"AIRFLOW_VAR_SPARKIFY_MISSING_OBJECTS": "empty"})
    finally:
        held.rename(day_file)
    backfill(daily_source, warehouse_uri, hour, hour + timedelta(hours=1))
    with psycopg.connect(warehouse_uri) as warehouse:
        (plays,) = warehouse.execute(
            "SELECT COUNT(*) FROM songplays WHERE start_time >= %s AND start_time < %s",
            ((hour - timedelta(hours=1)).replace(tzinfo=None), (hour + timedelta(hours=1)).replace(tzinfo=None)),
        ).fetchone()
        (users,) = warehouse.execute("SELECT COUNT(*) FROM users").fetchone()
    assert plays > 0
    with psycopg.connect(local_pg.database_uri("airflow")) as metadata:
        (run_id, note) = metadata.execute(
            "SELECT r.id, n.content FROM dag_run AS r LEFT JOIN dag_run_note AS n ON n.dag_run_id = r.id "
            "WHERE r.dag_id = 'sparkify_dwh' AND r.logical_date = %s AND r.start_date >= %s", (hour, began),
        ).fetchone()
        events = dict(metadata.execute(
            "SELECT e.source_task_id, e.extra FROM asset_event AS e JOIN dag_run AS r "
            # A run id names every run of its DAG and logical date: a run of the same hour made before
            # (a benchmark's, in a shared metadata database) left its events under it too.
            "ON r.run_id = e.source_run_id AND r.dag_id = e.source_dag_id WHERE r.id = %s AND e.timestamp >= %s",
            (run_id, began),
        ).fetchall())
    lines = note.splitlines()
    songs_listed = sum(1 for _ in (daily_source / "song_data").rglob("*.json"))
    assert lines[0] == "**Run summary**: success, 2018-11-01 22:00 → 23:00 UTC", note
    # The first run on an empty warehouse: every user it wrote is in the table.
    assert lines[2].startswith(f"- Rows written: songplays {plays} · users {users} · "), note
    assert lines[3].startswith("- Staged: ") and "(event objects read: 1)" in lines[3], note
    assert lines[4:] == [
        "- Bad records set aside (quarantine): 0",
        f"- Hours restated: 2018-11-01 21:00–22:00 (late object {daily_source.as_uri()}/log_data/2018/11/"
        "2018-11-01-events.json)",
        "- Quality checks: 13 of 13 passed",
        f"- Song catalog: full listing of {songs_listed} song files — no queue set (Variable sparkify_catalog_queue)",
        lines[-1],
    ], note
    # What the run cost, all its tasks together: the day file read (its size), its binary COPY and that of
    # its record, every statement and transaction, no S3 request (a local folder).
    size = (daily_source / "log_data/2018/11/2018-11-01-events.json").stat().st_size
    assert re.fullmatch(rf"- Cost: 1 object read \({size / 1000:.1f} KB\), 1 COPY of data \(\+1 of records\), "
                        r"\d+ statements in \d+ transactions, 0 S3 requests", lines[-1]), note
    assert set(events) == {"load_songplays", "match_late_songs", "load_users", "load_songs", "load_artists",
                           "load_time", "run_quality_checks"}, events
    assert events["load_songplays"]["rows_written"] == plays
    assert events["load_songplays"]["interval_start"] == hour.isoformat()
    assert events["load_songplays"]["hours_loaded"] == ["2018-11-01T21:00Z/2018-11-01T23:00Z"]
    assert events["load_songplays"]["hours_restated"] == ["2018-11-01T21:00Z/2018-11-01T22:00Z"]
    assert events["load_songplays"]["objects_set_aside"] == []
    # Each asset event carries what its task and the run's staging cost.
    assert events["load_songplays"]["cost"]["transactions"] == 1
    assert {key: events["load_songplays"]["staging_cost"][key] for key in ("objects_read", "bytes_read", "copies")} == {
        "objects_read": 1, "bytes_read": size, "copies": 1}
    assert events["load_users"]["table_name"] == "users" and events["load_users"]["rows_rejected"] == 0
    assert events["run_quality_checks"]["passed"] == 13


def test_hourly_layout_with_several_files_per_hour(warehouse_uri, tmp_path):
    source = tmp_path / "bucket"
    end = START + timedelta(hours=24)
    generate(source, START, end, events_per_day=400, songs=150, users=20, layout="hourly", files_per_hour=3, seed=11)
    backfill(source, warehouse_uri, START, end, env={"AIRFLOW_VAR_SPARKIFY_LOG_LAYOUT": "hourly"})
    assert_matches_reference(warehouse_uri, build_reference(source, START, end))


def test_compressed_days_and_catalog_give_the_reference(warehouse_uri, tmp_path):
    """A gzip day and a zstd day (each with its catalog), and a bzip2 hourly layout, through the real DAG."""
    source = tmp_path / "bucket"
    generate(source, START, START + timedelta(days=1), events_per_day=300, songs=120, users=20, seed=13,
             compress="gzip")
    generate(source, START + timedelta(days=1), END, events_per_day=300, songs=120, users=20, seed=13,
             compress="zstd")
    assert {path.suffix for path in source.rglob("*.json*")} == {".gz", ".zst"}
    backfill(source, warehouse_uri, START, END)
    assert_matches_reference(warehouse_uri, build_reference(source, START, END))


def test_a_compressed_hourly_layout_gives_the_reference(warehouse_uri, tmp_path):
    source, end = tmp_path / "bucket", START + timedelta(hours=6)
    generate(source, START, end, events_per_day=400, songs=60, users=20, layout="hourly", files_per_hour=2, seed=11,
             compress="bzip2")
    # A quiet night hour may have no object at all: it loads empty rather than failing.
    backfill(source, warehouse_uri, START, end,
             env={"AIRFLOW_VAR_SPARKIFY_LOG_LAYOUT": "hourly", "AIRFLOW_VAR_SPARKIFY_MISSING_OBJECTS": "empty"})
    assert_matches_reference(warehouse_uri, build_reference(source, START, end))


def test_songs_that_land_after_their_plays_are_matched_by_a_later_run(daily_source, reference, warehouse_uri, tmp_path):
    """A third of the catalog arrives a day late: the second day's run fills in the first day's plays."""
    source = tmp_path / "bucket"
    shutil.copytree(daily_source, source)
    late = sorted((source / "song_data").rglob("*.json"))[::3]
    held_back = tmp_path / "late"
    for path in late:
        target = held_back / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    backfill(source, warehouse_uri, START, START + timedelta(days=1))
    with psycopg.connect(warehouse_uri) as connection:
        (unmatched_first_day,) = connection.execute("SELECT COUNT(*) FROM songplays WHERE song_id IS NULL").fetchone()
    shutil.copytree(held_back, source, dirs_exist_ok=True)
    backfill(source, warehouse_uri, START + timedelta(days=1), END)
    assert_matches_reference(warehouse_uri, reference)
    assert unmatched_first_day > sum(count for row, count in reference["songplays"].items()
                                     if row[0] < START + timedelta(days=1) and row[3] is None)
