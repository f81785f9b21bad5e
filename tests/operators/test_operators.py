"""The four operators against a real PostgreSQL warehouse, on small hand-written inputs."""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from sparkify.warehouse.run_parameters import batch_id
from tests.support.inputs import DAY_KEY, HOUR, HOUR_MS, event, song, write_lines, write_song
from tests.support.operator_runs import (
    SHIPPED_CHECKS,
    load_dimension,
    load_songplays,
    quality,
    rows,
    stage_events,
    stage_songs,
)
from tests.support.tasks import run_context, sql_file
from tools.ddl import create_tables

DOCS_WAREHOUSE = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"


def rewrite(path: Path, text: str) -> None:
    """A new version of an object: its size or modification time changes."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def an_earlier_day(root: Path) -> None:
    """Another day's file in the bucket, so an hour whose object has not landed yet is an empty hour
    rather than a source without objects."""
    write_lines(root / "log_data/2018/10/2018-10-31-events.json", [event(-3600, item=99)])


def test_stage_events_streams_every_line_tagged_with_its_object(warehouse, bucket):
    assert stage_events(bucket)["rows_written"] == 5
    assert rows(warehouse, "SELECT count(*), min(batch_id), min(object_key), max(user_id) FROM staging_events") \
        == [(5, "run_1", DAY_KEY, "39")]
    first_play = "SELECT first_name, session_id, registration FROM staging_events WHERE item_in_session = 1"
    assert rows(warehouse, first_play) == [("Walter", 1, 1540919166796.0)]
    assert rows(warehouse, "SELECT object_key, row_count, first_ts, last_ts, batch_id FROM staged_objects") \
        == [(DAY_KEY, 5, HOUR_MS + 10_000, HOUR_MS + 3_605_000, "run_1")]


def test_each_object_version_is_staged_once_and_a_new_version_replaces_its_rows(warehouse, bucket):
    stage_events(bucket, run_id="run_1")
    assert stage_events(bucket, run_id="run_2")["object_count"] == 0  # another hour of the day: staged already
    assert stage_events(bucket, run_id="run_1")["object_count"] == 0  # a retry
    path = bucket / DAY_KEY
    rewrite(path, path.read_text() + "\n" + json.dumps(event(50, item=9)) + "\n")
    result = stage_events(bucket, run_id="run_3", start=HOUR.replace(hour=1))
    assert (result["object_count"], result["rows_written"]) == (1, 6)
    assert rows(warehouse, "SELECT batch_id, count(*) FROM staging_events GROUP BY 1") == [("run_3", 6)]
    # The rewrite covers hour 0 again, before run_3's own hour: restated.
    assert result["restated"] == [{"object_uri": (bucket / DAY_KEY).as_uri(), "change": "changed",
                                   "hours_start": "2018-11-01T00:00", "hours_end": "2018-11-01T01:00"}]
    assert result["hours_loaded"] == ["2018-11-01T00:00Z/2018-11-01T02:00Z"]


def test_a_gone_object_withdraws_its_rows_and_restates_its_hours(warehouse, tmp_path):
    root = tmp_path / "bucket"
    write_lines(root / "log_data/2018/11/01/00/part-0.json", [event(1, item=1)])
    write_lines(root / "log_data/2018/11/01/00/part-1.json", [event(2, item=2)])
    stage_events(root, key="log_data/%Y/%m/%d/%H/")
    (root / "log_data/2018/11/01/00/part-1.json").unlink()
    result = stage_events(root, run_id="run_2", key="log_data/%Y/%m/%d/%H/", start=HOUR.replace(hour=1),
                          lookback_hours=1)
    assert (result["objects_gone"], result["hours_loaded"]) == (1, ["2018-11-01T00:00Z/2018-11-01T02:00Z"])
    assert rows(warehouse, "SELECT object_key FROM staging_events") == [("log_data/2018/11/01/00/part-0.json",)]
    assert rows(warehouse, "SELECT change FROM restatements") == [("gone",)]


def test_a_retry_keeps_what_the_first_attempt_restated(warehouse, bucket, tmp_path):
    """Staging committed, then the run was cleared: the second attempt stages nothing new but still
    returns the hours the first restated, so its loads cover them."""
    held = tmp_path / "held.json"
    (bucket / DAY_KEY).rename(held)
    an_earlier_day(bucket)
    stage_events(bucket, run_id="run_1")  # hour 0 loaded before its object landed
    held.rename(bucket / DAY_KEY)
    later = HOUR.replace(hour=1)
    first = stage_events(bucket, run_id="run_2", start=later)
    assert first["hours_loaded"] == ["2018-11-01T00:00Z/2018-11-01T02:00Z"]
    assert stage_events(bucket, run_id="run_2", start=later)["hours_loaded"] == first["hours_loaded"]
    assert stage_events(bucket, run_id="run_3", start=later)["hours_loaded"] == ["2018-11-01T01:00Z/2018-11-01T02:00Z"]


def test_an_object_landing_for_hours_no_run_loaded_restates_nothing(warehouse, bucket):
    """Staged by a later hour's run, its earlier hours are left to their own runs, which load them."""
    result = stage_events(bucket, run_id="run_2", start=HOUR.replace(hour=1))
    assert (result["object_count"], result["restated"]) == (1, [])
    assert result["hours_loaded"] == ["2018-11-01T01:00Z/2018-11-01T02:00Z"]
    assert rows(warehouse, "SELECT count(*) FROM restatements") == [(0,)]
    assert rows(warehouse, "SELECT batch_id, interval_start, interval_end FROM loaded_intervals") == [
        ("run_2", HOUR.replace(hour=1, tzinfo=None), HOUR.replace(hour=2, tzinfo=None))]


def test_restatement_covers_only_the_loaded_hours_among_those_an_object_covers(warehouse, tmp_path):
    """Hours 00 and 02 loaded, 01 not: a late day file restates 00 and 02, each a span of its own,
    and the fact load reloads exactly those and its own hour."""
    root = tmp_path / "bucket"
    an_earlier_day(root)
    for hour in (0, 2):
        stage_events(root, run_id=f"run_{hour}", start=HOUR.replace(hour=hour))
    write_lines(root / DAY_KEY, [event(hour * 3600 + 10, item=hour + 1) for hour in range(4)])
    result = stage_events(root, run_id="run_3", start=HOUR.replace(hour=3))
    assert [(entry["hours_start"], entry["hours_end"]) for entry in result["restated"]] == [
        ("2018-11-01T00:00", "2018-11-01T01:00"), ("2018-11-01T02:00", "2018-11-01T03:00")]
    assert result["hours_loaded"] == ["2018-11-01T00:00Z/2018-11-01T01:00Z", "2018-11-01T02:00Z/2018-11-01T04:00Z"]
    load_songplays(run_id="run_3", start=HOUR.replace(hour=3), restated_table="staging_events")
    assert rows(warehouse, "SELECT EXTRACT(HOUR FROM start_time)::int FROM songplays ORDER BY 1") == [(0,), (2,), (3,)]


def test_the_hourly_and_the_daily_dag_never_share_a_batch_though_their_run_ids_match(warehouse, bucket):
    """Both DAGs schedule scheduled__2018-11-01T00:00:00+00:00: a batch is named by DAG and run."""
    run_id = "scheduled__2018-11-01T00:00:00+00:00"
    context = {**run_context(HOUR, run_id, hours=24), "dag_run": SimpleNamespace(dag_id="sparkify_dwh_daily")}
    StageToRedshiftOperator(
        task_id="stage_events", table="staging_events", source=bucket.as_uri(), s3_key=DAY_KEY,
        jsonpaths="jsonpaths/log_events.json", time_field="ts",
    ).execute(context)
    assert rows(warehouse, "SELECT batch_id FROM staged_objects") == [(f"sparkify_dwh_daily/{run_id}",)]
    with pytest.raises(AirflowFailException, match="is over 256 characters: shorten the DAG id"):
        batch_id({"run_id": run_id, "dag_run": SimpleNamespace(dag_id="d" * 250)})


def test_stage_events_hourly_prefix_reads_every_object_under_it(warehouse, tmp_path):
    root = tmp_path / "bucket"
    write_lines(root / "log_data/2018/11/01/00/part-0.json", [event(1, item=1)])
    write_lines(root / "log_data/2018/11/01/00/part-1.json", [event(2, item=2), event(3, item=3)])
    write_lines(root / "log_data/2018/11/01/01/part-0.json", [event(3601, item=4)])
    result = stage_events(root, key="log_data/2018/11/01/00/")
    assert (result["object_count"], result["rows_written"]) == (2, 3)
    assert stage_events(root, key="log_data/%Y/%m/%d/%H/")["object_count"] == 0
    whole_day = stage_events(root, key="log_data/%Y/%m/%d/%H/", hours=24)
    assert (whole_day["object_count"], whole_day["rows_written"]) == (1, 1)
    assert rows(warehouse, "SELECT count(*) FROM staging_events") == [(4,)]


def test_stage_events_daily_pattern_reads_each_day_of_the_interval_once(warehouse, bucket):
    write_lines(bucket / "log_data/2018/11/2018-11-02-events.json", [event(86_400 + 1)])
    pattern = "log_data/%Y/%m/%Y-%m-%d-events.json"
    assert stage_events(bucket, key=pattern, start=HOUR.replace(hour=23), hours=2)["object_count"] == 2
    assert stage_events(bucket, key=pattern, hours=24)["object_count"] == 0
    assert rows(warehouse, "SELECT count(*) FROM staging_events") == [(6,)]


def test_stage_events_missing_object_is_an_empty_hour_the_audit_names(warehouse, bucket):
    result = stage_events(bucket, key="log_data/2018/11/2018-11-02-events.json")
    assert (result["object_count"], result["rows_written"]) == (0, 0)
    assert rows(warehouse, "SELECT source_objects FROM load_audit") == [
        (f"no objects at {(bucket / 'log_data/2018/11/2018-11-02-events.json').as_uri()}: "
         "nothing of the run's own to stage",)]


def test_a_bad_event_object_fails_every_run_of_its_hours_until_it_changes(warehouse, bucket):
    stage_events(bucket, run_id="run_1")
    path = bucket / DAY_KEY
    good = path.read_text()
    rewrite(path, good + '\n{"artist": nul')
    ways_on = "re-publish a fixed object .* raise the Variable sparkify_max_errors"
    with pytest.raises(AirflowFailException, match=rf"(?s)2018-11-01-events\.json line 6: not valid JSON.*{ways_on}"):
        stage_events(bucket, run_id="run_2")
    assert rows(warehouse, "SELECT count(*) FROM staging_events") == [(5,)]  # the version staged before stays
    assert rows(warehouse, "SELECT rejected_reason FROM staged_objects")[0][0].startswith(
        f"staging_events: {path.as_uri()} line 6: not valid JSON")
    with pytest.raises(AirflowFailException, match=r"2018-11-01-events\.json line 6: not valid JSON"):
        stage_events(bucket, run_id="run_2")  # the run's retry tries it again, and fails again
    with pytest.raises(AirflowFailException, match=r"2018-11-01-events\.json line 6: not valid JSON"):
        stage_events(bucket, run_id="run_3", start=HOUR.replace(hour=5))  # another run of the day's hours
    next_day = stage_events(bucket, run_id="run_4", key="log_data/%Y/%m/%Y-%m-%d-events.json",
                            start=HOUR.replace(day=2, hour=5), lookback_hours=48)
    assert next_day["objects_set_aside"] == 0, "listed in the look-back, its hours are none of the run's"
    raised = stage_events(bucket, run_id="run_3", start=HOUR.replace(hour=5), max_errors=1)  # cleared, limit raised
    assert (raised["rows_written"], raised["rows_rejected"]) == (5, 1)
    rewrite(path, good + "\n" + json.dumps(event(60, item=7)) + "\n")
    assert stage_events(bucket, run_id="run_5", start=HOUR.replace(hour=6))["rows_written"] == 6  # fixed: staged


def test_a_run_restating_hours_a_set_aside_object_covers_fails_naming_it(warehouse, tmp_path):
    """Hourly layout: hour 00's second part goes bad after 00 was loaded; hour 02's run meets a late
    part of hour 00: it stages it, but the hours it restates hold data set aside, so it fails."""
    root = tmp_path / "bucket"
    layout = "log_data/%Y/%m/%d/%H/"
    write_lines(root / "log_data/2018/11/01/00/part-0.json", [event(1, item=1)])
    write_lines(root / "log_data/2018/11/01/00/part-1.json", [event(2, item=2)])
    stage_events(root, key=layout)
    rewrite(root / "log_data/2018/11/01/00/part-1.json", '{"artist": nul\n')
    with pytest.raises(AirflowFailException, match="part-1.json line 1: not valid JSON"):
        stage_events(root, run_id="run_0b", key=layout)
    write_lines(root / "log_data/2018/11/01/00/part-2.json", [event(3, item=3)])
    message = (r"(?s)this run restates 2018-11-01T00:00Z/2018-11-01T01:00Z, which event objects set aside as bad "
               r"cover: \S+/00/part-1\.json \(staging_events: \S+ line 1: not valid JSON"
               r".*No run of those hours succeeds")
    with pytest.raises(AirflowFailException, match=message):
        stage_events(root, run_id="run_2", key=layout, start=HOUR.replace(hour=2), lookback_hours=2)
    assert rows(warehouse, "SELECT object_key FROM staged_objects WHERE rejected_at IS NULL ORDER BY 1") == [
        ("log_data/2018/11/01/00/part-0.json",), ("log_data/2018/11/01/00/part-2.json",)], "its staging committed"
    with pytest.raises(AirflowFailException, match=message):  # and its retry fails the same
        stage_events(root, run_id="run_2", key=layout, start=HOUR.replace(hour=2), lookback_hours=2)
    write_lines(root / "log_data/2018/11/01/00/part-1.json", [event(4, item=4)])
    fixed = stage_events(root, run_id="run_2", key=layout, start=HOUR.replace(hour=2), lookback_hours=2)
    assert fixed["hours_loaded"] == ["2018-11-01T00:00Z/2018-11-01T01:00Z", "2018-11-01T02:00Z/2018-11-01T03:00Z"]


def test_stage_from_a_missing_folder_is_a_clear_error(warehouse, tmp_path):
    with pytest.raises(AirflowFailException, match="source folder does not exist"):
        stage_events(tmp_path / "nowhere")


def test_stage_songs_is_incremental_and_a_rewritten_file_replaces_its_songs(warehouse, bucket):
    assert stage_songs(bucket, "run_1")["object_count"] == 1
    assert stage_songs(bucket, "run_2")["object_count"] == 0
    write_song(bucket, "TRBBBBW128F429D538", song("SOB", "Song B", "ARB", "Artist B", 100.0))
    assert stage_songs(bucket, "run_3")["object_count"] == 1
    assert stage_songs(bucket, "run_1")["object_count"] == 0
    assert rows(warehouse, "SELECT batch_id, song_id FROM staging_songs ORDER BY 2") == [
        ("run_1", "SOA"), ("run_3", "SOB"),
    ]
    path = next((bucket / "song_data").rglob("TRAAAAW128F429D538.json"))
    rewrite(path, json.dumps(song("SOA", "Song A (remastered)", "ARA", "Artist A", 201.0)) + "\n")
    assert stage_songs(bucket, "run_4")["object_count"] == 1
    assert rows(warehouse, "SELECT batch_id, song_id, title FROM staging_songs ORDER BY 2") == [
        ("run_4", "SOA", "Song A (remastered)"), ("run_3", "SOB", "Song B"),
    ]
    assert rows(warehouse, "SELECT count(*) FROM staged_objects") == [(2,)]


def test_load_songplays_matches_catalog_and_replaces_only_its_interval(warehouse, bucket):
    stage_events(bucket)
    stage_songs(bucket)
    assert load_songplays()["rows_written"] == 2
    assert rows(warehouse, "SELECT user_id, song_id, artist_id, session_id FROM songplays ORDER BY start_time") \
        == [("39", "SOA", "ARA", 1), ("39", None, None, 1)]
    assert load_songplays(start=HOUR.replace(hour=1))["rows_written"] == 1
    assert load_songplays()["rows_written"] == 2
    assert rows(warehouse, "SELECT count(*), count(DISTINCT songplay_id) FROM songplays") == [(3, 3)]


def test_load_songplays_twice_at_once_leaves_one_copy(warehouse, bucket):
    stage_events(bucket)
    stage_songs(bucket)
    errors = []

    def load():
        try:
            load_songplays()
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert rows(warehouse, "SELECT count(*) FROM songplays") == [(2,)]


def test_users_upsert_keeps_the_latest_event_whatever_the_load_order(warehouse, tmp_path):
    root = tmp_path / "bucket"
    write_lines(root / DAY_KEY, [
        event(10, page="Home", level="free", item=0),
        event(3600 + 10, page="Upgrade", level="paid", item=1),
    ])
    second_hour = HOUR.replace(hour=1)
    stage_events(root, run_id="late", start=second_hour)
    load_dimension("users", "upsert", run_id="late", start=second_hour, key="user_id", version_column="last_seen_at")
    stage_events(root, run_id="early")
    load_dimension("users", "upsert", run_id="early", key="user_id", version_column="last_seen_at")
    assert rows(warehouse, "SELECT user_id, level FROM users") == [("39", "paid")]


def test_dimension_modes(warehouse, bucket):
    stage_songs(bucket)
    assert load_dimension("songs", "upsert", key="song_id")["rows_written"] == 1
    assert load_dimension("songs", "upsert", key="song_id")["rows_written"] == 1
    assert load_dimension("artists", "truncate-insert")["rows_written"] == 1
    assert load_dimension("artists", "truncate-insert")["rows_written"] == 1
    assert rows(warehouse, "SELECT song_id FROM songs") == [("SOA",)]
    assert rows(warehouse, "SELECT artist_id, name FROM artists") == [("ARA", "Artist A")]
    stage_events(bucket)
    load_songplays()
    time = {"mode": "replace-interval", "interval_column": "start_time"}
    assert load_dimension("time", **time)["rows_written"] == 2
    assert load_dimension("time", **time)["rows_written"] == 2
    assert rows(warehouse, 'SELECT count(*) FROM "time"') == [(2,)]
    assert rows(warehouse, 'SELECT hour, day, week, month, year, weekday FROM "time" LIMIT 1') \
        == [(0, 1, 44, 11, 2018, 4)]


def test_dimension_rejects_unknown_mode_and_unsafe_names(warehouse):
    with pytest.raises(AirflowFailException, match="unknown mode"):
        load_dimension("songs", "merge")
    with pytest.raises(AirflowFailException, match="not a valid SQL identifier"):
        LoadDimensionOperator(task_id="x", table='songs"; DROP TABLE users; --', sql="SELECT 1",
                              mode="append").execute(run_context(HOUR))


def test_shipped_checks_pass_on_a_loaded_hour_and_on_an_empty_one(warehouse, bucket):
    stage_events(bucket)
    stage_songs(bucket)
    load_songplays()
    load_dimension("users", "upsert", key="user_id", version_column="last_seen_at")
    load_dimension("time", "time")
    assert quality(SHIPPED_CHECKS)["failed"] == 0
    assert quality(SHIPPED_CHECKS, run_id="empty", start=HOUR.replace(day=5))["failed"] == 0


def test_failed_checks_are_all_reported_with_their_actual_values(warehouse, bucket):
    stage_events(bucket)
    stage_songs(bucket)
    load_songplays()  # users and time never loaded
    with pytest.raises(AirflowFailException) as failure:
        quality(SHIPPED_CHECKS + [{"name": "at least 5 plays", "sql": "SELECT count(*) FROM songplays",
                                   "expected": 5, "comparison": ">="}])
    message = str(failure.value)
    assert "3 of 14 data quality checks failed" in message
    assert "songplays without a users row: expected == 0, got 2" in message
    assert "songplays without a time row: expected == 0, got 2" in message
    assert "at least 5 plays: expected >= 5, got 2" in message


def test_every_shipped_check_has_its_own_label_and_a_shared_label_is_refused(warehouse, bucket):
    stage_events(bucket)
    load_songplays()
    # As on Redshift, which enforces no key: one play twice, two without an id.
    warehouse.execute("ALTER TABLE songplays DROP CONSTRAINT songplays_pkey, ALTER COLUMN songplay_id DROP NOT NULL")
    warehouse.execute("INSERT INTO songplays SELECT * FROM songplays LIMIT 1")
    warehouse.execute("INSERT INTO songplays (songplay_id, start_time) SELECT NULL, start_time FROM songplays LIMIT 2")
    with pytest.raises(AirflowFailException) as failure:
        quality(SHIPPED_CHECKS[:2])
    message = str(failure.value)
    assert "2 of 10 data quality checks failed" in message
    assert "songplays of the interval with a NULL songplay_id: expected == 0, got 2" in message
    assert "duplicate songplay_id among the songplays of the interval: expected == 0, got 3" in message
    with pytest.raises(AirflowFailException, match="the label 'plays' is also first's"):
        quality([{"name": "first", "sql": "SELECT 'plays', 0", "expected": 0},
                 {"name": "second", "sql": "SELECT 'plays', 0", "expected": 0}])


def test_check_catches_songplays_that_differ_from_staged_plays(warehouse, bucket):
    stage_events(bucket)
    stage_songs(bucket)
    load_songplays()
    warehouse.execute("DELETE FROM songplays WHERE song_id IS NULL")
    with pytest.raises(AirflowFailException, match="songplays minus staged NextSong events in the interval: "
                                                   "expected == 0, got -1"):
        quality(SHIPPED_CHECKS[2:3])


def match_late_songs(run_id: str, start: datetime, lookback_hours: int = 168) -> dict:
    operator = LoadFactOperator(task_id="match_late_songs", table="songplays", mode="update",
                                sql=sql_file("load/songplays_late_songs.sql"),
                                parameters={"duration_tolerance": 0.5, "lookback_hours": str(lookback_hours)})
    return operator.execute(run_context(start, run_id))


def a_play_whose_song_is_not_in_the_catalog_yet(tmp_path) -> Path:
    """A bucket with one play of "Late hit" and a catalog without it, staged and loaded: its songplay has no song."""
    root = tmp_path / "bucket"
    write_lines(root / DAY_KEY, [event(20, item=1, song="Late hit", artist="Slow band", length=180.0)])
    write_song(root, "TRAAAAW128F429D538", song("SOA", "Song A", "ARA", "Artist A", 200.0))
    stage_events(root)
    stage_songs(root)
    load_songplays()
    return root


def test_a_song_that_lands_after_its_plays_fills_them_in_within_the_look_back(warehouse, tmp_path):
    root = a_play_whose_song_is_not_in_the_catalog_yet(tmp_path)
    assert rows(warehouse, "SELECT song_id FROM songplays") == [(None,)]

    write_song(root, "TRBBBBW128F429D538", song("SOLATE", "Late hit", "ARSLOW", "Slow band", 180.2))
    three_hours_later = HOUR.replace(hour=3)
    stage_songs(root, run_id="run_2")
    assert match_late_songs("run_2", three_hours_later, lookback_hours=2)["rows_written"] == 0  # beyond the look-back
    assert match_late_songs("run_2", three_hours_later)["rows_written"] == 1
    assert match_late_songs("run_2", three_hours_later)["rows_written"] == 0  # idempotent
    assert rows(warehouse, "SELECT song_id, artist_id FROM songplays") == [("SOLATE", "ARSLOW")]


def test_fact_load_rejects_an_unknown_mode(warehouse):
    with pytest.raises(AirflowFailException, match="unknown mode"):
        LoadFactOperator(task_id="x", table="songplays", sql="SELECT 1", mode="merge").execute(run_context(HOUR))


def test_every_task_leaves_an_audit_record_and_a_retry_replaces_it(warehouse, bucket):
    stage_events(bucket)
    stage_events(bucket)  # a retry of the same run
    stage_songs(bucket)
    result = load_songplays()
    load_dimension("users", "upsert", key="user_id", version_column="last_seen_at")
    assert result == {"batch_id": "run_1", "task_id": "load_songplays", "table_name": "songplays", "rows_read": 2,
                      "rows_written": 2, "rows_rejected": 0, "object_count": 0, "mode": "replace-interval",
                      "cost": result["cost"]}
    # What the load cost: its settings (PostgreSQL), lock, delete, insert and audit record (two), in one transaction.
    assert {key: result["cost"][key] for key in ("statements", "transactions", "copies", "s3_requests")} == {
        "statements": 7, "transactions": 1, "copies": 0, "s3_requests": 0}
    audit = rows(warehouse, "SELECT task_id, table_name, rows_read, rows_written, rows_rejected, object_count, "
                            "source_objects FROM load_audit WHERE batch_id = 'run_1' ORDER BY task_id")
    assert audit == [
        ("load_songplays", "songplays", 2, 2, 0, 0, None),
        ("load_users", "users", 1, 1, 0, 0, None),
        ("stage_events", "staging_events", 0, 0, 0, 0, None),  # the retry found its object staged
        ("stage_songs", "staging_songs", 1, 1, 0, 1, next((bucket / "song_data").rglob("*.json")).as_uri()),
    ]


def test_a_failed_load_leaves_no_audit_record(warehouse, bucket):
    path = bucket / DAY_KEY
    path.write_text(path.read_text() + '\n{"broken')
    with pytest.raises(AirflowFailException):
        stage_events(bucket)
    assert rows(warehouse, "SELECT count(*) FROM load_audit") == [(0,)]


def test_a_full_restage_replaces_the_staged_catalog(warehouse, bucket):
    stage_songs(bucket, "run_1")
    write_song(bucket, "TRBBBBW128F429D538", song("SOB", "Song B", "ARB", "Artist B", 100.0))
    assert stage_songs(bucket, "run_2", restage="True")["object_count"] == 2
    assert rows(warehouse, "SELECT batch_id, count(*) FROM staging_songs GROUP BY 1") == [("run_2", 2)]
    assert rows(warehouse, "SELECT batch_id, count(*) FROM staged_objects GROUP BY 1") == [("run_2", 2)]
    assert stage_songs(bucket, "run_3")["object_count"] == 0


def test_staging_arguments_are_checked(warehouse, bucket):
    with pytest.raises(AirflowFailException, match="restage must be true or false"):
        stage_songs(bucket, restage="maybe")
    with pytest.raises(AirflowFailException, match="restage applies to a catalog only"):
        stage_events(bucket, restage=True)
    with pytest.raises(AirflowFailException, match="give exactly one of time_field"):
        stage_songs(bucket, time_field="duration")
    with pytest.raises(AirflowFailException, match="'when' is not a key of"):
        stage_events(bucket, time_field="when")
    for retention in ("-1", "72; DELETE FROM songs"):
        with pytest.raises(AirflowFailException, match="retention_hours must be a whole number"):
            stage_events(bucket, retention_hours=retention)
    with pytest.raises(AirflowFailException, match="retention_hours applies to tables staged by time"):
        stage_songs(bucket, retention_hours="72")


def unused_for(warehouse, hours: int) -> None:
    """Make every staged object look last listed ``hours`` ago: what retention reads."""
    warehouse.execute("UPDATE staged_objects SET used_at = used_at - make_interval(hours => %s)", (hours,))


def test_retention_drops_only_objects_no_run_listed_for_longer(warehouse, bucket):
    write_lines(bucket / "log_data/2018/11/2018-11-05-events.json", [event(4 * 86_400 + 1)])
    pattern = "log_data/%Y/%m/%Y-%m-%d-events.json"
    stage_events(bucket, key=pattern)
    stage_events(bucket, run_id="day_5", key=pattern, start=HOUR.replace(day=5))
    stage_songs(bucket)
    unused_for(warehouse, 80)
    # A run of day 5 lists its own file again: that one stays; day 1's goes, with its record.
    result = stage_events(bucket, run_id="later", key=pattern, start=HOUR.replace(day=5, hour=1),
                          retention_hours="72")
    assert result["objects_purged"] == 1
    assert rows(warehouse, "SELECT DISTINCT object_key FROM staging_events") == [
        ("log_data/2018/11/2018-11-05-events.json",)]
    assert rows(warehouse, "SELECT table_name, count(*) FROM staged_objects GROUP BY 1 ORDER BY 1") == [
        ("staging_events", 1), ("staging_songs", 1)]  # the catalog is never dropped
    # A rerun of the old hour simply stages its object again.
    assert stage_events(bucket, run_id="rerun", key=pattern, retention_hours="72")["rows_written"] == 5


def test_retention_zero_keeps_every_object(warehouse, bucket):
    stage_events(bucket)
    unused_for(warehouse, 10_000)
    for retention in ("0", "", None):
        assert stage_events(bucket, run_id="now", start=HOUR.replace(day=9), retention_hours=retention)[
            "objects_purged"] == 0
    assert rows(warehouse, "SELECT count(*) FROM staging_events") == [(5,)]


def test_loads_read_by_time_and_cover_the_hours_their_run_restated(warehouse, tmp_path):
    """An event in two objects is one songplay; a load of a run whose staging restated earlier hours
    covers them too, whatever object holds their events."""
    root = tmp_path / "bucket"
    write_lines(root / "log_data/2018/11/01/01/part-0.json", [event(2, item=2), event(3601, item=3)])
    stage_events(root, run_id="run_1", key="log_data/%Y/%m/%d/%H/")  # hour 0 loaded before its object landed
    write_lines(root / "log_data/2018/11/01/00/part-0.json", [event(1, item=1), event(2, item=2)])
    second_hour = HOUR.replace(hour=1)
    assert stage_events(root, run_id="run_2", key="log_data/%Y/%m/%d/%H/", start=second_hour,
                        lookback_hours=1)["restated"][0]["change"] == "late"  # hour 0's object, new
    assert load_songplays(run_id="run_2", start=second_hour)["rows_written"] == 1
    restated = load_songplays(run_id="run_2", start=second_hour, restated_table="staging_events")
    assert restated["rows_written"] == 3
    assert rows(warehouse, "SELECT count(*), count(DISTINCT songplay_id) FROM songplays") == [(3, 3)]
    assert load_songplays(run_id="another", start=second_hour, restated_table="staging_events")["rows_written"] == 1


def test_fact_load_of_an_hour_staged_empty_passes_with_no_rows(warehouse, bucket):
    stage_events(bucket, run_id="no_object", key="log_data/2018/11/2018-11-05-events.json")
    assert load_songplays(run_id="no_object")["rows_written"] == 0
    write_lines(bucket / "log_data/2018/11/2018-11-06-events.json", [])
    assert stage_events(bucket, run_id="empty_file", key="log_data/2018/11/2018-11-06-events.json")[
        "object_count"] == 1
    assert load_songplays(run_id="empty_file")["rows_written"] == 0


def test_a_late_song_fills_in_only_plays_whose_events_are_still_staged(warehouse, tmp_path):
    """The documented limit: match_late_songs reads the staged events, so the retention bounds its look-back."""
    root = a_play_whose_song_is_not_in_the_catalog_yet(tmp_path)
    unused_for(warehouse, 100)
    stage_events(root, run_id="run_2", start=HOUR.replace(hour=3), key="log_data/2018/11/2018-11-05-events.json",
                 retention_hours=72)
    write_song(root, "TRBBBBW128F429D538", song("SOLATE", "Late hit", "ARSLOW", "Slow band", 180.2))
    stage_songs(root, run_id="run_2")
    assert match_late_songs("run_2", HOUR.replace(hour=3))["rows_written"] == 0
    assert rows(warehouse, "SELECT song_id FROM songplays") == [(None,)]


@pytest.mark.parametrize(("build", "error"), [
    (lambda: LoadFactOperator(task_id="x", table="songplays", sql="SELECT 1", mode="merge"), "unknown mode"),
    (lambda: LoadFactOperator(task_id="x", table="songplays", sql="SELECT 1", interval_column="a-b"),
     "interval_column: not a valid SQL identifier"),
    (lambda: LoadDimensionOperator(task_id="x", table="users", sql="SELECT 1", mode="upsert"), "needs a key"),
    (lambda: LoadDimensionOperator(task_id="x", table="users", sql="SELECT 1", mode="upsert", key="id; --"),
     "key: not a valid SQL identifier"),
    (lambda: LoadDimensionOperator(task_id="x", table="time", sql="SELECT 1", mode="replace-interval"),
     "needs an interval_column"),
    (lambda: DataQualityOperator(task_id="x", checks=[]), "no data quality checks"),
    (lambda: DataQualityOperator(task_id="x", checks=[{"sql": "SELECT 1", "expected": 1, "comparison": "=~"}]),
     "needs 'expected' and a comparison"),
    (lambda: DataQualityOperator(task_id="x", checks=[{"sql": "SELECT 1", "name": "no value"}]), "no value: needs"),
])
def test_arguments_that_are_not_templated_are_checked_when_the_dag_is_parsed(build, error):
    with pytest.raises(AirflowFailException, match=error):
        build()


def test_users_whose_events_in_the_hours_loaded_were_withdrawn_fall_back_to_their_earlier_events(warehouse, tmp_path):
    """users.sql reads the hours loaded once; only a user whose stored row came from them and who has no
    event left there is looked up in the events before: their row comes from those, or goes."""
    root = tmp_path / "bucket"
    key = "log_data/%Y/%m/%d/%H/"
    write_lines(root / "log_data/2018/11/01/00/part-0.json", [event(10, item=1, user="7", level="free")])
    second = root / "log_data/2018/11/01/01/part-0.json"
    write_lines(second, [event(3610, item=2, user="7", level="paid"), event(3620, item=1, user="8")])
    for run_id, start in (("run_1", HOUR), ("run_2", HOUR.replace(hour=1))):
        stage_events(root, run_id=run_id, key=key, start=start)
        load_dimension("users", "upsert", run_id=run_id, start=start, key="user_id", version_column="last_seen_at")
    assert rows(warehouse, "SELECT user_id, level FROM users ORDER BY user_id") == [("7", "paid"), ("8", "free")]
    write_lines(second, [event(3630, item=1, user="9", level="paid")])  # a corrected hour: 7 and 8 withdrawn
    stage_events(root, run_id="run_3", key=key, start=HOUR.replace(hour=1))
    load_dimension("users", "upsert", run_id="run_3", start=HOUR.replace(hour=1), key="user_id",
                   version_column="last_seen_at")
    assert rows(warehouse, "SELECT user_id, level, last_seen_at FROM users ORDER BY user_id") == [
        ("7", "free", datetime(2018, 11, 1, 0, 0, 10)), ("9", "paid", datetime(2018, 11, 1, 1, 0, 30))]


ONE_KEY = [("songplays_pkey",
            "CREATE UNIQUE INDEX songplays_pkey ON public.songplays USING btree (start_time, songplay_id)")]


def songplays_indexes(warehouse) -> list[tuple]:
    return rows(warehouse, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'songplays' ORDER BY 1")


def test_a_songplays_keyed_on_the_id_alone_loads_alike_and_the_documented_upgrade_rekeys_it(warehouse, tmp_path):
    """A warehouse created before songplays' key led with start_time (its primary key on songplay_id and an
    index on start_time, which create_tables leaves as they are) loads and matches late songs as a new one
    does; the statements docs/warehouse.md gives then leave the one key, and the loads go on."""
    assert songplays_indexes(warehouse) == ONE_KEY
    warehouse.execute("ALTER TABLE songplays DROP CONSTRAINT songplays_pkey, ADD PRIMARY KEY (songplay_id)")
    warehouse.execute("CREATE INDEX songplays_start_time_idx ON songplays (start_time)")
    create_tables(warehouse.info.dsn)  # an earlier warehouse is left as it is
    assert [name for name, _ in songplays_indexes(warehouse)] == ["songplays_pkey", "songplays_start_time_idx"]

    root = a_play_whose_song_is_not_in_the_catalog_yet(tmp_path)
    write_song(root, "TRBBBBW128F429D538", song("SOLATE", "Late hit", "ARSLOW", "Slow band", 180.2))
    stage_songs(root, run_id="run_2")
    assert match_late_songs("run_2", HOUR.replace(hour=3))["rows_written"] == 1
    before = rows(warehouse, "SELECT * FROM songplays")

    upgrade = re.search(r"## songplays' key on PostgreSQL.*?```sql\n(.*?)```", DOCS_WAREHOUSE.read_text(), re.DOTALL)
    assert upgrade, "docs/warehouse.md gives the upgrade's statements"
    with warehouse.transaction():
        warehouse.execute(upgrade.group(1))
    assert songplays_indexes(warehouse) == ONE_KEY
    assert load_songplays()["rows_written"] == 1  # the hour again, over the new key
    assert rows(warehouse, "SELECT * FROM songplays") == before
    warehouse.execute("UPDATE songplays SET song_id = NULL, artist_id = NULL")
    assert match_late_songs("run_2", HOUR.replace(hour=3))["rows_written"] == 1  # found by the new key
    assert rows(warehouse, "SELECT * FROM songplays") == before
    # The key refuses a second copy of a play, as the key on the id did.
    with pytest.raises(psycopg.errors.UniqueViolation):
        warehouse.execute("INSERT INTO songplays SELECT * FROM songplays")
