"""The Redshift path, which cannot run here: the exact SQL each operator sends.

The warehouse connection is of type redshift and records statements
(redshift_recording.py), and S3 is a fixed listing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from tools.ddl import render_sql

from conftest import run_context, sql_file
from redshift_recording import HOUR, IAM_ROLE, SOURCE, assert_transaction_safe, normalized


def stage(**kwargs) -> dict:
    operator = StageToRedshiftOperator(
        task_id="stage", source=SOURCE, iam_role=IAM_ROLE, region="us-west-2", **kwargs,
    )
    return operator.execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00"))


def test_hourly_layout_over_a_day_copies_each_hour_prefix_that_holds_objects(redshift, s3):
    s3["keys"] += ["raw/log_data/2018/11/01/00/part-0.json", "raw/log_data/2018/11/01/05/part-0.json"]
    StageToRedshiftOperator(
        task_id="stage", source=SOURCE, iam_role=IAM_ROLE, table="staging_events", s3_key="log_data/%Y/%m/%d/%H/",
        jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
    ).execute(run_context(HOUR, hours=24))
    copies = [s for s in normalized(redshift.statements) if s.startswith("COPY")]
    assert [copy.split(" FROM ")[1].split(" IAM_ROLE")[0] for copy in copies] == [
        "'s3://sparkify-bucket/raw/log_data/2018/11/01/00/'", "'s3://sparkify-bucket/raw/log_data/2018/11/01/05/'",
    ]
    assert_transaction_safe(redshift)


def test_compressed_objects_copy_with_their_compression_and_a_mixed_prefix_fails(redshift, s3):
    s3["keys"] += ["raw/log_data/2018/11/2018-11-02-events.json.gz", "raw/log_data/2018/11/01/00/part-0.json.zst",
                   "raw/log_data/2018/11/01/01/part-0.json", "raw/log_data/2018/11/01/01/part-1.json.bz2"]
    stage(table="staging_events", s3_key="log_data/2018/11/2018-11-02-events.json",
          jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json")
    (copy,) = [s for s in normalized(redshift.statements) if s.startswith("COPY")]
    assert "FROM 's3://sparkify-bucket/raw/log_data/2018/11/2018-11-02-events.json' IAM_ROLE" in copy
    assert " MAXERROR 0 GZIP REGION " in copy
    stage(table="staging_events", s3_key="log_data/2018/11/01/00/",
          jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json")
    assert " MAXERROR 0 ZSTD REGION " in [s for s in normalized(redshift.statements) if s.startswith("COPY")][-1]
    with pytest.raises(AirflowFailException, match=r"s3://sparkify-bucket/raw/log_data/2018/11/01/01/: objects "
                                                   r"of several compressions \(BZIP2, uncompressed\)"):
        stage(table="staging_events", s3_key="log_data/2018/11/01/01/",
              jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json")


def test_the_audit_record_commits_with_the_copy(redshift, s3):
    result = stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
                   jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json")
    assert [s.split()[0:3] for s in redshift.statements[-2:]] == [
        ["DELETE", "FROM", "load_audit"], ["INSERT", "INTO", "load_audit"],
    ]
    assert (result["object_count"], result["rows_written"]) == (1, None)  # COPY's count stays on the cluster
    assert_transaction_safe(redshift)


def test_events_for_an_hour_without_objects_copy_nothing(redshift, s3):
    result = stage(table="staging_events", s3_key="log_data/2018/11/2018-11-02-events.json",
                   jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json")
    assert result["object_count"] == 0
    assert not any(s.startswith("COPY") for s in redshift.statements)


def test_incremental_songs_copy_only_new_files_through_a_manifest(redshift, s3):
    redshift.results.append([("song_data/A/A/A/TRAAAAA128F429D538.json",)])  # staged by an earlier run
    stage(table="staging_songs", s3_key="song_data/", jsonpaths="jsonpaths/song_data.json",
          jsonpaths_uri=f"{SOURCE}/jsonpaths/song_data.json", incremental=True,
          manifest_prefix="s3://sparkify-work/manifests")
    base = "sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00"
    manifest = json.loads(s3["written"][f"s3://{base}.manifest"])
    assert manifest == {"entries": [
        {"url": "s3://sparkify-bucket/raw/song_data/A/A/B/TRAABBB128F429D538.json", "mandatory": True}]}
    statements = normalized(redshift.statements)
    assert statements[:3] == [
        "LOCK staged_objects",
        "DELETE FROM staged_objects WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s",
        'DELETE FROM "staging_songs" WHERE batch_id = %(batch_id)s',
    ]
    copy = next(s for s in statements if s.startswith('COPY "incoming"'))
    assert f"FROM 's3://{base}.manifest'" in copy and " MANIFEST " in copy
    record = next(s for s in statements if s.startswith("COPY staged_objects"))
    assert f"FROM 's3://{base}.objects.csv'" in record and "FORMAT AS CSV" in record
    assert_transaction_safe(redshift)


def test_bad_records_up_to_max_errors_go_to_the_quarantine_from_the_load_error_view(redshift, s3):
    redshift.results.append([(2,)])  # the quarantine holds two records of this run
    audit = stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
                  jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
                  max_errors="5")
    statements = normalized(redshift.statements)
    copy = statements.index(next(s for s in statements if s.startswith('COPY "incoming"')))
    assert " MAXERROR 5 " in statements[copy]
    assert statements[copy + 1].startswith("INSERT INTO quarantine") and statements[copy + 1].endswith(
        "FROM sys_load_error_detail WHERE query_id = PG_LAST_COPY_ID()")
    assert statements[copy + 2].startswith('INSERT INTO "staging_events"')
    assert "SELECT COUNT(*) FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s" in statements
    assert audit["rows_rejected"] == 2
    assert_transaction_safe(redshift)


def test_more_bad_records_than_max_errors_fail_the_run_and_roll_it_back(redshift, s3):
    redshift.results.append([(6,)])  # six rejected over two COPYs, each within its own MAXERROR
    with pytest.raises(AirflowFailException, match="6 records rejected by COPY, more than max_errors=5"):
        stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
              jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
              max_errors=5)
    assert redshift.commits == 0 and redshift.rollbacks == 1


@pytest.mark.parametrize("max_errors", ["-1", "5; DROP TABLE songplays", "1e3"])
def test_max_errors_must_be_a_count(redshift, s3, max_errors):
    with pytest.raises(AirflowFailException, match="max_errors must be a whole number"):
        stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
              jsonpaths="jsonpaths/log_events.json", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
              max_errors=max_errors)
    assert not any("DROP" in statement for statement in redshift.statements)


def test_staging_refuses_quotes_smuggled_into_literals(redshift, s3):
    stage(table="staging_events", s3_key="log_data/2018/11/2018-11-01-events.json",
          jsonpaths="jsonpaths/log_events.json", jsonpaths_uri="s3://x/it's.json")
    copy = next(s for s in redshift.statements if s.startswith("COPY"))
    assert "FORMAT AS JSON 's3://x/it''s.json'" in copy


def test_fact_load_deletes_then_inserts_under_a_lock(redshift):
    LoadFactOperator(task_id="f", table="songplays", sql=sql_file("load/songplays.sql"),
                     parameters={"duration_tolerance": 0.5}).execute(run_context(HOUR))
    statements = normalized(redshift.statements)
    assert statements[0] == 'LOCK "songplays"'
    assert statements[1] == ('DELETE FROM "songplays" WHERE "start_time" >= %(interval_start)s '
                             'AND "start_time" < %(interval_end)s')
    assert statements[2].startswith('INSERT INTO "songplays" SELECT songplay_id, start_time')
    assert len(statements) == 3
    assert_transaction_safe(redshift)


EVENTS = {"table": "staging_events", "s3_key": "log_data/2018/11/2018-11-01-events.json",
          "jsonpaths": "jsonpaths/log_events.json", "jsonpaths_uri": f"{SOURCE}/jsonpaths/log_events.json"}


def test_retention_purges_old_event_batches_with_a_plain_delete_in_the_staging_transaction(redshift, s3):
    redshift.results.append([("scheduled__2018-10-01T00:00:00+00:00", datetime(2026, 11, 1)),
                             ("scheduled__2018-10-01T01:00:00+00:00", datetime(2026, 11, 1, 1))])
    result = stage(retention_hours="72", **EVENTS)
    statements = [" ".join(s.split()) for s in redshift.statements]
    insert = next(i for i, s in enumerate(statements) if s.startswith('INSERT INTO "staging_events"'))
    listing, delete, analyze = statements[insert + 2:insert + 5]  # after the batch is in (and its temp table gone)
    assert listing.startswith("SELECT a.batch_id, MAX(a.recorded_at) AS staged_at FROM load_audit AS a "
                              "WHERE a.table_name = %(table_name)s AND a.batch_id <> %(batch_id)s")
    assert delete == ('DELETE FROM "staging_events" WHERE batch_id IN ( SELECT batch_id FROM load_audit '
                      "WHERE table_name = %(table_name)s AND batch_id <> %(batch_id)s GROUP BY batch_id "
                      "HAVING MAX(recorded_at) < %(purge_before)s )")
    assert analyze == 'ANALYZE "staging_events"'
    assert [s for s in statements if "purge_before" in s] == [listing, delete]  # no other table is purged
    assert not any("pg_" in s for s in statements)  # PostgreSQL's purge lock
    assert result["purged_batches"] == 2
    assert_transaction_safe(redshift)


def test_retention_sends_no_delete_when_no_batch_is_old_enough(redshift, s3):
    assert stage(retention_hours="72", **EVENTS)["purged_batches"] == 0
    assert not any("purge_before" in s and s.startswith("DELETE") for s in redshift.statements)
    assert any("purge_before" in s and s.startswith("SELECT") for s in redshift.statements)
    assert_transaction_safe(redshift)


def load_songplays_checking_the_batch(retention: str | None = "72") -> dict:
    return LoadFactOperator(task_id="f", table="songplays", sql=sql_file("load/songplays.sql"),
                            parameters={"duration_tolerance": 0.5}, staged_table="staging_events",
                            staged_retention_hours=retention).execute(run_context(HOUR))


STAGED_AT = datetime(2018, 11, 1, 1)  # years ago: past any retention
JUST_STAGED = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=5)


@pytest.mark.parametrize(("audit", "retention"), [
    (("stage_events", None, 1, STAGED_AT, 1), "72"),  # COPY's count is unknown; the batch has rows
    (("stage_events", None, 0, STAGED_AT, 0), "72"),  # no object: an hour without events
    (("stage_events", 0, 1, STAGED_AT, 0), "72"),  # counted empty (PostgreSQL)
    (("stage_events", None, 1, JUST_STAGED, 0), "72"),  # empty objects, younger than the retention
    (("stage_events", None, 1, STAGED_AT, 0), "0"),  # empty objects, and no retention purges anything
])
def test_fact_load_checks_its_batch_before_the_delete_and_loads(redshift, audit, retention):
    redshift.results.append([audit])
    load_songplays_checking_the_batch(retention)
    guard = " ".join(redshift.statements[0].split())
    assert guard.startswith("WITH staged AS ( SELECT COUNT(*) AS row_count FROM (SELECT 1 AS present FROM "
                            '"staging_events" WHERE batch_id = %(batch_id)s LIMIT 1) AS one_row')
    assert "FROM load_audit AS a CROSS JOIN staged WHERE a.batch_id = %(batch_id)s" in guard
    assert normalized(redshift.statements[1:])[:2] == ['LOCK "songplays"', 'DELETE FROM "songplays" WHERE '
                                                       '"start_time" >= %(interval_start)s AND "start_time" < '
                                                       '%(interval_end)s']
    assert_transaction_safe(redshift)


@pytest.mark.parametrize(("audit", "retention", "message"), [
    (None, "72", "staging_events holds no batch 'manual__test': no staging task has staged it"),
    (("stage_events", None, 1, STAGED_AT, 0), "72",
     r"batch 'manual__test' was purged from staging_events \(stage_events staged it \d+ hours ago, at "
     r"2018-11-01 01:00 UTC, and none of its rows remain\): clear the whole run so stage_events stages it again"),
    # Without the retention, a batch of unknown count with no rows left is taken for purged, however young.
    (("stage_events", None, 1, JUST_STAGED, 0), None, "staged it 0 hours ago"),
    # A known count is never taken for empty objects; the Data API returns timestamps as text.
    (("stage_events", 7, 1, JUST_STAGED.isoformat(sep=" "), 0), "72", "was purged from staging_events"),
])
def test_fact_load_fails_before_writing_when_its_batch_is_missing(redshift, audit, retention, message):
    redshift.results.append([audit] if audit else [])
    with pytest.raises(AirflowFailException, match=message):
        load_songplays_checking_the_batch(retention)
    assert len(redshift.statements) == 1 and redshift.commits == 0 and redshift.rollbacks == 1


def test_the_retention_a_fact_load_is_told_must_be_a_count(redshift):
    redshift.results.append([("stage_events", None, 1, STAGED_AT, 0)])
    with pytest.raises(AirflowFailException, match="staged_retention_hours must be a whole number"):
        load_songplays_checking_the_batch("72 hours")
    assert redshift.commits == 0


def test_late_song_matching_is_an_update_under_the_fact_lock(redshift):
    LoadFactOperator(task_id="f", table="songplays", mode="update", sql=sql_file("load/songplays_late_songs.sql"),
                     parameters={"duration_tolerance": 0.5, "lookback_hours": "168"}).execute(run_context(HOUR))
    statements = normalized(redshift.statements)
    assert statements[0] == 'LOCK "songplays"'
    assert statements[1].startswith("UPDATE songplays SET song_id = late.song_id")
    assert len(statements) == 2
    assert_transaction_safe(redshift)


@pytest.mark.parametrize(("mode", "kwargs", "expected"), [
    ("truncate-insert", {}, ['LOCK "songs"', 'DELETE FROM "songs"', 'INSERT INTO "songs" SELECT']),
    ("append", {}, ['LOCK "songs"', 'INSERT INTO "songs" SELECT']),
    ("upsert", {"key": "song_id"}, [
        'LOCK "songs"',
        'CREATE TEMP TABLE "incoming" (LIKE "songs")',
        'INSERT INTO "incoming" SELECT',
        'DELETE FROM "songs" USING "incoming" WHERE "songs"."song_id" = "incoming"."song_id"',
        'INSERT INTO "songs" SELECT * FROM "incoming"',
        'DROP TABLE "incoming"',
    ]),
])
def test_dimension_modes_are_one_transaction_without_truncate(redshift, mode, kwargs, expected):
    LoadDimensionOperator(task_id="d", table="songs", sql=sql_file("load/songs.sql"), mode=mode,
                          **kwargs).execute(run_context(HOUR))
    statements = normalized(redshift.statements)
    assert len(statements) == len(expected)
    for statement, start in zip(statements, expected, strict=True):
        assert statement.startswith(start)
    assert_transaction_safe(redshift)


def test_upsert_with_version_keeps_the_newer_stored_row(redshift):
    LoadDimensionOperator(task_id="d", table="users", sql=sql_file("load/users.sql"), mode="upsert",
                          key="user_id", version_column="last_seen_at").execute(run_context(HOUR))
    assert normalized(redshift.statements)[3] == (
        'DELETE FROM "incoming" USING "users" AS stored WHERE "incoming"."user_id" = stored."user_id" '
        'AND stored."last_seen_at" > "incoming"."last_seen_at"'
    )


def test_quality_checks_run_their_queries(redshift):
    redshift.results.extend([[("users.user_id", 0)], [(0,)]])
    result = DataQualityOperator(task_id="q", checks=[
        {"sql": sql_file("quality/null_keys.sql"), "expected": 0},
        {"name": "plays", "sql": "SELECT count(*) FROM songplays", "expected": 0},
    ]).execute(run_context(HOUR))
    assert result == {"checks": 2, "failed": 0}
    assert redshift.statements[1] == "SELECT count(*) FROM songplays"


def ddl_statements(dialect: str) -> str:
    """The DDL without its comments (which explain the layout in the same words)."""
    sql = render_sql("create/create_tables.sql", dialect)
    return " ".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def test_redshift_ddl_uses_distribution_and_sort_keys_and_no_indexes():
    ddl = " ".join(ddl_statements("redshift").split())
    assert "CREATE INDEX" not in ddl and "pg_advisory" not in ddl
    # songplays and time share their key; songplays never on song_id (NULL for unmatched plays: one slice)
    assert ddl.count(") DISTSTYLE KEY DISTKEY (start_time) SORTKEY (start_time);") == 2
    assert "DISTKEY (song_id) SORTKEY (start_time)" not in ddl
    assert ddl.count("DISTSTYLE ALL") == 6  # staging_songs, staged_objects, quarantine, load_audit, users, artists
    postgres = ddl_statements("postgres")
    assert "DISTSTYLE" not in postgres and "CREATE INDEX songplays_start_time_idx" in postgres
