"""The real DAG, run hour by hour with `make backfill`'s tool over generated data,
against a real PostgreSQL; every table is compared with the independent reference."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from tools.generate_data import generate

from reference import build_reference
from warehouse_checks import SNAPSHOT_QUERIES, assert_matches_reference, backfill, snapshot

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
    start = START + timedelta(hours=22)
    result = backfill(daily_source, warehouse_uri, start, END)
    assert "[1/3] 2018-11-01 22:00 → 2018-11-01 23:00 UTC" in result.stdout
    assert "[3/3] 2018-11-02 00:00 → 2018-11-03 00:00 UTC" in result.stdout
    assert_matches_reference(warehouse_uri, build_reference(daily_source, start, END))


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
    backfill(source, warehouse_uri, START, end, env={"AIRFLOW_VAR_SPARKIFY_LOG_LAYOUT": "hourly"})
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
