"""The Redshift path, which cannot run here: the exact SQL each operator sends.

The warehouse connection is of type redshift and records statements
(tests/support/redshift_recording.py), and S3 is a fixed listing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
import redshift_connector
from airflow.sdk.exceptions import AirflowFailException

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from tests.support.redshift_recording import (
    HOUR,
    IAM_ROLE,
    SOURCE,
    assert_transaction_safe,
    etag,
    normalized,
    s3_notification,
)
from tests.support.tasks import run_context, sql_file
from tools.ddl import render_sql


def stage(**kwargs) -> dict:
    operator = StageToRedshiftOperator(
        task_id="stage", source=SOURCE, iam_role=IAM_ROLE, region="us-west-2", **kwargs,
    )
    return operator.execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00"))


DAY_KEY = "log_data/2018/11/2018-11-01-events.json"
EVENTS = {"table": "staging_events", "s3_key": "log_data/%Y/%m/%Y-%m-%d-events.json",
          "jsonpaths": "jsonpaths/log_events.json", "time_field": "ts",
          "jsonpaths_uri": f"{SOURCE}/jsonpaths/log_events.json"}
SONGS = {"table": "staging_songs", "s3_key": "song_data/", "jsonpaths": "jsonpaths/song_data.json",
         "jsonpaths_uri": f"{SOURCE}/jsonpaths/song_data.json", "catalog_key": "song_id",
         "manifest_prefix": "s3://sparkify-work/manifests"}


def staged(key: str, version: str, first_ts=None, last_ts=None, rejected_at=None, batch="earlier", rows=None,
           reason=None):
    """A staged_objects record as stage/staged_objects.sql reads it."""
    return (key, version, first_ts, last_ts, rejected_at, batch, rows, reason)


def test_hourly_layout_over_a_day_copies_each_object_and_tags_its_rows(redshift, s3):
    s3["keys"] += ["raw/log_data/2018/11/01/00/part-0.json", "raw/log_data/2018/11/01/05/part-0.json"]
    redshift.results.extend([[], [(0,)]])  # nothing staged before; no record rejected
    StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE,
                            **{**EVENTS, "s3_key": "log_data/%Y/%m/%d/%H/"}).execute(run_context(HOUR, hours=24))
    statements = normalized(redshift.statements)
    copies = [s for s in statements if s.startswith("COPY")]
    assert [copy.split(" FROM ")[1].split(" IAM_ROLE")[0] for copy in copies] == [
        "'s3://sparkify-bucket/raw/log_data/2018/11/01/00/part-0.json'",
        "'s3://sparkify-bucket/raw/log_data/2018/11/01/05/part-0.json'",
    ]
    tags = [s for s in statements if s.startswith('INSERT INTO "staging_events"')]
    assert ["'log_data/2018/11/01/00/part-0.json', %(batch_id)s FROM" in tags[0],
            "'log_data/2018/11/01/05/part-0.json', %(batch_id)s FROM" in tags[1]] == [True, True]
    records = [s for s in statements if s.startswith("INSERT INTO staged_objects")]
    assert len(records) == 2 and all('COUNT(*), MIN("ts"), MAX("ts"), NULL FROM "incoming"' in s for s in records)
    assert statements[0] == 'LOCK "staging_events"'
    assert_transaction_safe(redshift)


def test_each_object_copies_with_its_compression_and_a_mixed_catalog_fails(redshift, s3):
    s3["keys"] += ["raw/log_data/2018/11/2018-11-02-events.json.gz", "raw/log_data/2018/11/01/01/part-0.json",
                   "raw/log_data/2018/11/01/01/part-1.json.bz2"]
    stage(**{**EVENTS, "s3_key": "log_data/2018/11/2018-11-02-events.json"})  # the day file, compressed
    (copy,) = [s for s in normalized(redshift.statements) if s.startswith("COPY")]
    assert "FROM 's3://sparkify-bucket/raw/log_data/2018/11/2018-11-02-events.json.gz' IAM_ROLE" in copy
    assert " MAXERROR 0 GZIP REGION " in copy
    redshift.statements.clear()
    stage(**{**EVENTS, "s3_key": "log_data/2018/11/01/01/"})  # one COPY per object: compressions may mix
    copies = [s for s in normalized(redshift.statements) if s.startswith("COPY")]
    assert [" BZIP2 " in copy for copy in copies] == [False, True]
    s3["keys"].append("raw/song_data/A/A/C/TRAACCC128F429D538.json.zst")
    with pytest.raises(AirflowFailException, match=r"the new objects of staging_songs: objects of several "
                                                   r"compressions \(ZSTD, uncompressed\)"):
        stage(**SONGS)


def test_the_audit_record_commits_with_the_copy(redshift, s3):
    redshift.results.extend([[], [(0,)]])
    result = stage(**EVENTS)
    assert [s.split()[0:3] for s in redshift.statements[-2:]] == [
        ["DELETE", "FROM", "load_audit"], ["INSERT", "INTO", "load_audit"],
    ]
    assert (result["object_count"], result["rows_written"]) == (1, None)  # COPY's count stays on the cluster
    assert_transaction_safe(redshift)


def test_an_object_staged_before_in_the_same_version_is_not_copied_again(redshift, s3):
    redshift.results.append([staged(DAY_KEY, etag(f"raw/{DAY_KEY}"))])
    assert stage(**EVENTS)["object_count"] == 0
    assert not any(s.startswith(("COPY", "DELETE FROM \"staging_events\"")) for s in redshift.statements)
    assert_transaction_safe(redshift)


def test_a_new_version_replaces_the_rows_of_the_old_one_in_the_same_transaction(redshift, s3):
    first, last = 1541030400000, 1541033999000
    redshift.results.extend([[staged(DAY_KEY, "an-older-etag", first, last, rows=10)], [(0,)]])
    stage(**EVENTS)
    statements = normalized(redshift.statements)
    forget = statements.index('DELETE FROM "staging_events" WHERE object_key = %(object_key)s AND ("ts" BETWEEN '
                              '%(first_ts)s AND %(last_ts)s OR "ts" IS NULL)')
    copy = statements.index(next(s for s in statements if s.startswith('COPY "incoming"')))
    assert statements[forget + 1:forget + 3] == [
        "DELETE FROM quarantine WHERE table_name = %(table_name)s AND object_uri = %(object_uri)s",
        "DELETE FROM staged_objects WHERE table_name = %(table_name)s AND object_key = %(object_key)s",
    ] and forget < copy
    assert_transaction_safe(redshift)


def test_events_for_an_hour_without_objects_copy_nothing(redshift, s3):
    result = stage(**{**EVENTS, "s3_key": "log_data/2018/11/2018-11-02-events.json"})
    assert result["object_count"] == 0
    assert not any(s.startswith("COPY") for s in redshift.statements)


def test_the_catalog_copies_only_new_or_changed_files_through_a_manifest(redshift, s3):
    known = "song_data/A/A/A/TRAAAAA128F429D538.json"
    redshift.results.append([staged(known, etag(f"raw/{known}"))])  # staged by an earlier run, unchanged
    stage(**SONGS)
    base = "sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00"
    manifest = json.loads(s3["written"][f"s3://{base}.manifest"])
    assert manifest == {"entries": [
        {"url": "s3://sparkify-bucket/raw/song_data/A/A/B/TRAABBB128F429D538.json", "mandatory": True}]}
    assert s3["written"][f"s3://{base}.objects.csv"].startswith(
        "staging_songs,song_data/A/A/B/TRAABBB128F429D538.json,etag-")
    statements = normalized(redshift.statements)
    assert statements[0] == 'LOCK "staging_songs"'
    copy = next(s for s in statements if s.startswith('COPY "incoming"'))
    assert f"FROM 's3://{base}.manifest'" in copy and " MANIFEST " in copy
    record = next(s for s in statements if s.startswith("COPY staged_objects"))
    assert f"FROM 's3://{base}.objects.csv'" in record and "FORMAT AS CSV" in record
    assert any(s.startswith('DELETE FROM "staging_songs" USING (SELECT DISTINCT "song_id" AS restaged_key')
               for s in statements[statements.index(record):])
    assert_transaction_safe(redshift)


def _notify(queue: str, *notifications: tuple[str, str | None]) -> None:
    """S3 event notifications in the queue: (key under the base, its ETag; None for a removal)."""
    from tools.moto_server import CREDENTIALS

    sqs = boto3.client("sqs", endpoint_url=queue.split("/1234")[0], **CREDENTIALS)
    for key, version in notifications:
        sqs.send_message(QueueUrl=queue, MessageBody=s3_notification(
            "sparkify-bucket", f"raw/{key}", version, removed=version is None))


def _listed_prefixes(s3, monkeypatch) -> list[str]:
    """Record the prefixes the S3 hook lists (the fixed listing answers as before)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    prefixes: list[str] = []
    listing = S3Hook.iter_file_metadata

    def recorded(self, prefix, bucket_name, page_size=None, max_items=None):
        prefixes.append(prefix)
        return listing(self, prefix, bucket_name, page_size, max_items)

    monkeypatch.setattr(S3Hook, "iter_file_metadata", recorded)
    return prefixes


def _hour_ago() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)


def test_the_catalog_by_notifications_reads_back_only_the_named_files_and_copies_the_new_one(
        redshift, s3, sqs_queue, monkeypatch):
    known, new = "song_data/A/A/A/TRAAAAA128F429D538.json", "song_data/A/A/B/TRAABBB128F429D538.json"
    s3["keys"].append("raw/song_data/A/A/C/TRAACCC128F429D538.json")  # in the bucket, named by no message
    _notify(sqs_queue, (known, etag(f"raw/{known}")), (new, etag(f"raw/{new}")), (known, etag(f"raw/{known}")))
    listed = _listed_prefixes(s3, monkeypatch)
    redshift.results += [[(_hour_ago(),)], [staged(known, etag(f"raw/{known}"))]]
    result = stage(**SONGS, catalog_queue=sqs_queue)
    assert (result["catalog_discovery"], result["object_count"], result["messages_deleted"]) == ("notifications", 1, 3)
    assert not [prefix for prefix in listed if "song_data" in prefix]  # no LIST of the catalog
    statements = normalized(redshift.statements)
    assert statements[0] == "SELECT MAX(listed_at) FROM catalog_listings WHERE table_name = %(table_name)s"
    assert "SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count FROM staged_objects " \
           "WHERE table_name = %(table_name)s" not in statements  # the whole catalog's records: never read
    (read,) = [index for index, s in enumerate(statements) if s.startswith("SELECT object_key") and " IN (" in s]
    assert statements[read].endswith("AND object_key IN ( %(key_0)s, %(key_1)s )")
    assert {name: redshift.parameters[read][name] for name in ("key_0", "key_1")} == {"key_0": known, "key_1": new}
    base = "sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00"
    assert json.loads(s3["written"][f"s3://{base}.manifest"]) == {"entries": [
        {"url": f"{SOURCE}/{new}", "mandatory": True}]}
    copy = next(s for s in statements if s.startswith('COPY "incoming"'))
    assert f"FROM 's3://{base}.manifest'" in copy and " MANIFEST " in copy
    assert not any(s.startswith("INSERT INTO catalog_listings") for s in statements)
    assert_transaction_safe(redshift, reads=1)


def test_the_catalog_with_nothing_new_sends_no_copy_and_writes_no_manifest(redshift, s3, sqs_queue, monkeypatch):
    listed = _listed_prefixes(s3, monkeypatch)
    redshift.results += [[(_hour_ago(),)]]
    result = stage(**SONGS, catalog_queue=sqs_queue)
    assert (result["catalog_discovery"], result["object_count"], result["messages_received"]) == ("notifications", 0, 0)
    assert not [prefix for prefix in listed if "song_data" in prefix] and s3["written"] == {}
    statements = normalized(redshift.statements)
    assert not any(s.startswith("COPY") for s in statements)
    # No staged version is read back: only the files set aside as bad, which every run names.
    assert [s for s in statements if s.startswith("SELECT object_key")] == [
        "SELECT object_key, rejected_reason FROM staged_objects WHERE table_name = %(table_name)s "
        "AND rejected_at IS NOT NULL"]
    assert_transaction_safe(redshift, reads=1)


def test_a_due_reconciliation_lists_the_catalog_and_records_what_only_it_found(redshift, s3, sqs_queue, monkeypatch):
    new = "song_data/A/A/B/TRAABBB128F429D538.json"
    _notify(sqs_queue, (new, etag(f"raw/{new}")))
    listed = _listed_prefixes(s3, monkeypatch)
    redshift.results += [[(_hour_ago() - timedelta(hours=24),)], []]  # listed 25 hours ago; nothing staged since
    result = stage(**SONGS, catalog_queue=sqs_queue)
    assert result["catalog_discovery"] == "listing" and result["catalog_reason"].startswith("reconciliation: ")
    assert (result["object_count"], result["found_by_listing_only"]) == (2, 1)  # A/A/A was named by no message
    assert "raw/song_data/" in listed
    statements = normalized(redshift.statements)
    record = statements.index(next(s for s in statements if s.startswith("INSERT INTO catalog_listings")))
    assert {name: redshift.parameters[record][name] for name in
            ("objects_listed", "objects_staged", "found_by_listing_only")} == {
        "objects_listed": 2, "objects_staged": 2, "found_by_listing_only": 1}
    assert statements.index(next(s for s in statements if s.startswith('COPY "incoming"'))) < record
    assert_transaction_safe(redshift, reads=1)


def test_bad_records_up_to_max_errors_go_to_the_quarantine_from_the_load_error_view(redshift, s3):
    redshift.results.extend([[], [(2,)]])  # nothing staged before; the quarantine holds two records of this run
    audit = stage(**EVENTS, max_errors="5")
    statements = normalized(redshift.statements)
    copy = statements.index(next(s for s in statements if s.startswith('COPY "incoming"')))
    assert " MAXERROR 5 " in statements[copy]
    assert statements[copy + 1].startswith("INSERT INTO quarantine") and statements[copy + 1].endswith(
        "FROM sys_load_error_detail WHERE query_id = PG_LAST_COPY_ID()")
    # Records outside the object's hours (or without a time) go to the quarantine too.
    assert statements[copy + 2].startswith("INSERT INTO quarantine") and "'ts missing or outside " in statements[
        copy + 2] and statements[copy + 2].endswith('FROM "incoming" WHERE "ts" IS NULL OR "ts" < 1540944000000 OR '
                                                    '"ts" >= 1541203200000')
    assert statements[copy + 3].startswith('DELETE FROM "incoming" WHERE "ts" IS NULL')
    assert statements[copy + 4].startswith('INSERT INTO "staging_events"')
    assert "SELECT COUNT(*) FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s" in statements
    assert audit["rows_rejected"] == 2
    assert_transaction_safe(redshift)


#: Options of COPY that would make Redshift read the same bytes otherwise than the PostgreSQL path does
#: (README "Bad input"): load invalid UTF-8 or over-long strings instead of rejecting the record, turn
#: empty or blank strings of text columns into NULL, round numbers, pad short records, skip lines, or
#: match keys by name ('auto', which leaves the camelCase keys NULL).
READING_OPTIONS = ("ACCEPTINVCHARS", "TRUNCATECOLUMNS", "EMPTYASNULL", "BLANKSASNULL", "ROUNDEC", "FILLRECORD",
                   "IGNOREHEADER", "IGNOREBLANKLINES", "ACCEPTANYDATE", "DATEFORMAT", "'auto'", "NOSHRED")


@pytest.mark.parametrize("table", ["events", "songs"])
def test_copy_reads_json_by_jsonpaths_with_no_option_that_changes_what_the_bytes_give(redshift, s3, table):
    """How Redshift reads a record (several on a line or one over several lines, a number for text, a
    number written as text, an empty string for a number, a top-level array, a record over 4 MB) is
    FORMAT AS JSON with the JSONPaths file: the COPY is exactly that, MAXERROR and the per-run options."""
    redshift.results.extend([[], [(0,)]])
    stage(**(EVENTS if table == "events" else SONGS))
    (copy,) = [s for s in normalized(redshift.statements) if s.startswith('COPY "incoming"')]
    source = ("'s3://sparkify-bucket/raw/log_data/2018/11/2018-11-01-events.json'" if table == "events" else
              "'s3://sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00.manifest'")
    jsonpaths = "log_events.json" if table == "events" else "song_data.json"
    assert copy.split(") FROM ", 1)[1] == (
        f"{source} IAM_ROLE '{IAM_ROLE}' FORMAT AS JSON 's3://sparkify-bucket/raw/jsonpaths/{jsonpaths}' "
        f"TIMEFORMAT 'epochmillisecs' MAXERROR 0{' MANIFEST' if table == 'songs' else ''} REGION 'us-west-2' "
        "COMPUPDATE OFF STATUPDATE OFF")
    assert not [option for option in READING_OPTIONS if option.upper() in copy.upper()]


def test_more_bad_records_than_max_errors_fail_the_run_and_roll_it_back(redshift, s3):
    redshift.results.extend([[], [(6,)]])  # six rejected over the COPYs, each within its own MAXERROR
    with pytest.raises(AirflowFailException, match="6 records rejected by COPY or outside their object's hours, "
                                                   "more than max_errors=5"):
        stage(**EVENTS, max_errors=5)
    assert redshift.commits == 0 and redshift.rollbacks == 1


def test_a_record_outside_its_hours_fails_the_run_even_without_max_errors(redshift, s3):
    redshift.results.extend([[], [(1,)]])
    with pytest.raises(AirflowFailException, match="1 records rejected .* more than max_errors=0"):
        stage(**EVENTS)
    assert redshift.rollbacks == 1


# A COPY that fails on bad records: the objects its load errors name are set aside, as on PostgreSQL.

#: What redshift_connector raises when a COPY meets more bad records than its MAXERROR.
LOAD_FAILED = redshift_connector.ProgrammingError({
    "S": "ERROR", "C": "XX000",
    "M": "Load into table 'incoming_0123456789ab' failed. Check 'sys_load_error_detail' system table for details.",
})
BAD_SONG = "song_data/A/A/B/TRAABBB128F429D538.json"
GOOD_SONG = "song_data/A/A/A/TRAAAAA128F429D538.json"
LOAD_ERRORS = ("SELECT TRIM(file_name), line_number, TRIM(column_name), TRIM(error_message) FROM sys_load_error_detail "
               "WHERE query_id = PG_LAST_COPY_ID() ORDER BY file_name, line_number")
SET_ASIDE = [
    "DELETE FROM staged_objects WHERE table_name = %(table_name)s AND object_key = %(object_key)s",
    "INSERT INTO staged_objects ( table_name, object_key, version, batch_id, staged_at, used_at, row_count, "
    "first_ts, last_ts, rejected_at, rejected_reason ) VALUES ( %(table_name)s, %(object_key)s, %(version)s, "
    "%(batch_id)s, %(rejected_at)s, %(rejected_at)s, %(row_count)s, %(first_ts)s, %(last_ts)s, %(rejected_at)s, "
    "%(rejected_reason)s )",
]


def set_aside_versions(connection) -> list[tuple[str, str]]:
    return [(parameters["object_key"], parameters["version"]) for statement, parameters
            in zip(connection.statements, connection.parameters, strict=True)
            if statement.startswith("INSERT INTO staged_objects")
            and "rejected_reason)s )" in " ".join(statement.split())]


def test_a_catalog_copy_failing_on_bad_records_sets_aside_the_files_its_load_errors_name(redshift, s3):
    """The manifest COPY names no file when it fails: after the rollback its load errors do. The run
    fails with the first of them (file, line, column), nothing of it staged, and each file they name is
    recorded as set aside in a transaction of its own."""
    redshift.failures.append(('COPY "incoming', LOAD_FAILED))
    redshift.results.extend([
        [],  # nothing staged before: both song files are new
        [(f"{SOURCE}/{BAD_SONG}", 1, "year", "Invalid digit, Value 'x', Pos 0, Type: Integer")],
    ])
    with pytest.raises(AirflowFailException, match=(
            rf"^staging_songs: {SOURCE}/{BAD_SONG} line 1: year: Invalid digit, Value 'x', Pos 0, Type: Integer \(the "
            r"COPY failed on more bad records than max_errors=0; set aside until they change: 1 of its 2 objects, "
            r"those its load errors name\); nothing of this run was staged\nIt is set aside: later runs stage the "
            r"other objects and skip it until it changes\.$")):
        stage(**SONGS)
    statements = normalized(redshift.statements)
    copy = statements.index(next(s for s in statements if s.startswith('COPY "incoming"')))
    # The COPY fails; after the rollback, its load errors; then the set-aside transaction, under the lock.
    assert statements[copy + 1:] == [LOAD_ERRORS, 'LOCK "staging_songs"', *SET_ASIDE]
    assert set_aside_versions(redshift) == [(BAD_SONG, etag(f"raw/{BAD_SONG}"))]
    assert (redshift.commits, redshift.rollbacks) == (1, 2)  # the failed COPY's, then the task's; the set-aside
    assert not any(s.upper().startswith(("TRUNCATE", "COMMIT", "BEGIN")) for s in redshift.statements)


def test_after_a_file_is_set_aside_the_next_run_copies_the_others_and_its_retries_try_it_again(redshift, s3):
    rejected = datetime(2018, 11, 1, 0, 30)
    redshift.results.append([staged(BAD_SONG, etag(f"raw/{BAD_SONG}"), rejected_at=rejected, batch="earlier")])
    result = stage(**SONGS)
    base = "sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00"
    assert [entry["url"] for entry in json.loads(s3["written"][f"s3://{base}.manifest"])["entries"]] == [
        f"{SOURCE}/{GOOD_SONG}"]
    assert (result["object_count"], result["objects_set_aside"]) == (1, 1)
    assert_transaction_safe(redshift)
    # A retry of the run that set it aside (same batch) tries it again, as on PostgreSQL.
    redshift.statements.clear()
    redshift.results.append([staged(BAD_SONG, etag(f"raw/{BAD_SONG}"), rejected_at=rejected,
                                    batch="scheduled__2018-11-01T00:00:00+00:00")])
    assert stage(**SONGS)["object_count"] == 2


def test_a_copy_failing_for_another_reason_fails_as_it_is_and_sets_nothing_aside(redshift, s3):
    redshift.failures.append(('COPY "incoming', redshift_connector.ProgrammingError({
        "S": "ERROR", "M": "S3ServiceException:Access Denied,Status 403"})))
    redshift.results.extend([[], [(f"{SOURCE}/song_data/Z/Z/Z/TRZZZ.json", 3, "year", "an older COPY's error")]])
    with pytest.raises(redshift_connector.ProgrammingError, match="Access Denied"):
        stage(**SONGS)
    assert LOAD_ERRORS in normalized(redshift.statements)  # read, but naming none of this COPY's files
    assert set_aside_versions(redshift) == [] and redshift.commits == 0


def test_an_event_copy_failing_on_bad_records_sets_aside_its_object(redshift, s3):
    redshift.failures.append(('COPY "incoming', LOAD_FAILED))
    redshift.results.extend([[], [(f"{SOURCE}/{DAY_KEY}", 7, "ts", "Invalid digit, Value '.', Pos 13, Type: Long"),
                                  (f"{SOURCE}/{DAY_KEY}", 9, "ts", "Invalid digit, Value '.', Pos 13, Type: Long")]])
    with pytest.raises(AirflowFailException, match=rf"^staging_events: {SOURCE}/{DAY_KEY} line 7: ts: Invalid digit"):
        stage(**EVENTS)
    assert set_aside_versions(redshift) == [(DAY_KEY, etag(f"raw/{DAY_KEY}"))]
    assert normalized(redshift.statements)[-4:] == [LOAD_ERRORS, 'LOCK "staging_events"', *SET_ASIDE]


@pytest.mark.parametrize("max_errors", ["-1", "5; DROP TABLE songplays", "1e3"])
def test_max_errors_must_be_a_count(redshift, s3, max_errors):
    with pytest.raises(AirflowFailException, match="max_errors must be a whole number"):
        stage(**EVENTS, max_errors=max_errors)
    assert not any("DROP" in statement for statement in redshift.statements)


def test_staging_refuses_quotes_smuggled_into_literals(redshift, s3):
    redshift.results.extend([[], [(0,)]])
    stage(**{**EVENTS, "jsonpaths_uri": "s3://x/it's.json"})
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


def test_retention_drops_objects_no_run_listed_for_long_in_the_staging_transaction(redshift, s3):
    old = "log_data/2018/10/2018-10-01-events.json"
    redshift.results.extend([[staged(DAY_KEY, etag(f"raw/{DAY_KEY}"))], [(old, 1538352000000, 1538438399000)]])
    result = stage(retention_hours="72", **EVENTS)
    statements = normalized(redshift.statements)
    assert statements[1].startswith("SELECT object_key, version")
    assert statements[2:4] == ["DELETE FROM loaded_intervals WHERE table_name = %(table_name)s AND batch_id = "
                               "%(batch_id)s", "INSERT INTO loaded_intervals (table_name, batch_id, interval_start, "
                               "interval_end, recorded_at) VALUES (%(table_name)s, %(batch_id)s, %(interval_start)s, "
                               "%(interval_end)s, %(recorded_at)s)"]
    touch, expired, forget = statements[4], statements[5], statements[6]
    assert touch.startswith("UPDATE staged_objects SET used_at = %(used_at)s")
    assert expired.startswith("SELECT object_key, first_ts, last_ts FROM staged_objects WHERE table_name = "
                              "%(table_name)s AND used_at < %(purge_before)s")
    assert forget.startswith('DELETE FROM "staging_events" WHERE object_key = %(object_key)s')
    assert statements[10] == 'ANALYZE "staging_events"'
    assert not any("pg_" in s for s in statements)  # PostgreSQL's staging lock
    assert result["objects_purged"] == 1
    assert_transaction_safe(redshift)


def test_retention_sends_no_delete_when_no_object_is_old_enough(redshift, s3):
    redshift.results.append([staged(DAY_KEY, etag(f"raw/{DAY_KEY}"))])
    assert stage(retention_hours="72", **EVENTS)["objects_purged"] == 0
    assert not any(s.startswith("DELETE") and "loaded_intervals" not in s  # but the run's interval record
                   for s in redshift.statements[:-2])  # and the audit record's own
    assert any("purge_before" in s and s.startswith("SELECT") for s in redshift.statements)
    assert_transaction_safe(redshift)


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
    assert normalized(redshift.statements)[3:5] == [
        'DELETE FROM "incoming" USING "users" AS stored WHERE "incoming"."user_id" = stored."user_id" '
        'AND stored."last_seen_at" > "incoming"."last_seen_at" AND NOT (stored."last_seen_at" >= '
        '%(interval_start)s AND stored."last_seen_at" < %(interval_end)s)',
        'DELETE FROM "users" WHERE "last_seen_at" >= %(interval_start)s AND "last_seen_at" < %(interval_end)s '
        'AND "user_id" NOT IN (SELECT "user_id" FROM "incoming")',
    ]


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
    # staging_songs, staged_objects, loaded_intervals, restatements, catalog_listings, quarantine, load_audit, users,
    # artists
    assert ddl.count("DISTSTYLE ALL") == 9
    postgres = ddl_statements("postgres")
    assert "DISTSTYLE" not in postgres and "CREATE INDEX songplays_start_time_idx" in postgres
