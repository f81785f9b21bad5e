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
from tests.support.warehouse_state import AnsweringConnection, WarehouseState
from tools.ddl import render_sql


@pytest.fixture
def redshift(redshift, monkeypatch) -> AnsweringConnection:
    """The recording connection, its reads answered from a WarehouseState (a test's queued results first)."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    connection = AnsweringConnection(WarehouseState())
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: connection)
    return connection


def stage(**kwargs) -> dict:
    operator = StageToRedshiftOperator(
        task_id="stage", source=SOURCE, iam_role=IAM_ROLE, region="us-west-2", **kwargs,
    )
    return operator.execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00"))


DAY_KEY = "log_data/2018/11/2018-11-01-events.json"
EVENTS = {"table": "staging_events", "s3_key": "log_data/%Y/%m/%Y-%m-%d-events.json",
          "jsonpaths": "jsonpaths/log_events.json", "time_field": "ts",
          "jsonpaths_uri": f"{SOURCE}/jsonpaths/log_events.json", "manifest_prefix": "s3://sparkify-work/manifests"}
HOURLY = {**EVENTS, "s3_key": "log_data/%Y/%m/%d/%H/"}
RUN = "scheduled__2018-11-01T00:00:00+00:00"
#: Where a run's staging units write their manifests and records (each file named by its unit and a digest).
UNIT_FILES = "s3://sparkify-work/manifests/staging_events/scheduled__2018-11-01T00_00_00_00_00/"
LOCK = 'LOCK "staging_events"'


def ms(hour: int, minute: int = 0) -> int:
    """Epoch milliseconds of 2018-11-01 at an hour."""
    return int(datetime(2018, 11, 1, hour, minute, tzinfo=timezone.utc).timestamp() * 1000)


def transactions(connection) -> list[list[str]]:
    """The statements sent, by transaction: the read of what is staged, then each unit's and the run's own,
    each starting with the staging lock (the recording connection counts commits without marking them)."""
    found, current = [], []
    for statement in normalized(connection.statements):
        if statement == LOCK and current:
            found.append(current)
            current = []
        current.append(statement)
    return [*found, current]


def written(s3, suffix: str) -> dict[str, str]:
    """The files the run wrote under the manifest prefix with a suffix, by name relative to UNIT_FILES."""
    return {uri[len(UNIT_FILES):]: text for uri, text in s3["written"].items()
            if uri.startswith(UNIT_FILES) and uri.endswith(suffix)}


SONGS = {"table": "staging_songs", "s3_key": "song_data/", "jsonpaths": "jsonpaths/song_data.json",
         "jsonpaths_uri": f"{SOURCE}/jsonpaths/song_data.json", "catalog_key": "song_id",
         "manifest_prefix": "s3://sparkify-work/manifests"}


def staged(key: str, version: str, first_ts=None, last_ts=None, rejected_at=None, batch="earlier", rows=None,
           reason=None):
    """A staged_objects record as stage/staged_objects.sql reads it."""
    return (key, version, first_ts, last_ts, rejected_at, batch, rows, reason)


def test_hourly_layout_over_a_day_stages_each_hour_prefix_in_one_manifest_copy_its_rows_tagged_with_it(
        redshift, s3):
    s3["keys"] += ["raw/log_data/2018/11/01/00/part-0.json", "raw/log_data/2018/11/01/00/part-1.json",
                   "raw/log_data/2018/11/01/05/part-0.json"]
    result = StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, **HOURLY).execute(
        run_context(HOUR, RUN, hours=24))
    statements = normalized(redshift.statements)
    copies = [s for s in statements if s.startswith('COPY "incoming"')]
    manifests = written(s3, ".manifest")
    assert [copy.split(" FROM ")[1].split(" IAM_ROLE")[0] for copy in copies] == [
        f"'{UNIT_FILES}{name}'" for name in manifests]
    assert all(" MANIFEST " in copy for copy in copies)
    assert [[entry["url"] for entry in json.loads(text)["entries"]] for text in manifests.values()] == [
        [f"{SOURCE}/log_data/2018/11/01/00/part-0.json", f"{SOURCE}/log_data/2018/11/01/00/part-1.json"],
        [f"{SOURCE}/log_data/2018/11/01/05/part-0.json"]]
    assert [name.split("-")[0] for name in manifests] == ["log_data_2018_11_01_00", "log_data_2018_11_01_05"]
    # The rows are tagged with their unit, each member recorded from the CSV beside its manifest.
    tags = [s for s in statements if s.startswith('INSERT INTO "staging_events"')]
    assert [tag.split(", %(batch_id)s FROM")[0].rsplit(", ", 1)[1] for tag in tags] == [
        "'log_data/2018/11/01/00/'", "'log_data/2018/11/01/05/'"]
    records = written(s3, ".objects.csv")
    assert [line.split(",")[1] for text in records.values() for line in text.splitlines()] == [
        "log_data/2018/11/01/00/part-0.json", "log_data/2018/11/01/00/part-1.json",
        "log_data/2018/11/01/05/part-0.json"]
    assert [s.split(" FROM ")[1].split(" IAM_ROLE")[0] for s in statements if s.startswith("COPY staged_objects")] == [
        f"'{UNIT_FILES}{name}'" for name in records]
    coverage = [s for s in statements if s.startswith("UPDATE staged_objects SET row_count")]
    assert coverage[0].endswith("WHERE staged_objects.table_name = %(table_name)s AND "
                                "LEFT(staged_objects.object_key, 23) = 'log_data/2018/11/01/00/'")
    # What is staged is read; each unit is a transaction of its own, under the lock; then the run's own.
    units = transactions(redshift)
    assert units[0][0].startswith("SELECT object_key, version") and len(units) == 4
    assert [unit[0] for unit in units[1:]] == [LOCK] * 3
    assert units[1][1] == ("SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, "
                           "rejected_reason FROM staged_objects WHERE table_name = %(table_name)s AND "
                           "LEFT(object_key, 23) = 'log_data/2018/11/01/00/'")
    assert units[3][1].startswith("DELETE FROM loaded_intervals")
    assert (redshift.commits, redshift.rollbacks) == (4, 0)
    assert (result["object_count"], result["units_listed"], result["units_staged"]) == (3, 24, 2)
    assert {key: result["cost"][key] for key in ("objects_read", "copies", "bookkeeping_copies", "transactions")} == {
        "objects_read": 3, "copies": 2, "bookkeeping_copies": 2, "transactions": 4}
    assert result["cost"]["statements"] == len(redshift.statements)


def test_a_unit_copies_once_per_compression_of_its_members_and_a_mixed_catalog_fails(redshift, s3):
    s3["keys"] += ["raw/log_data/2018/11/2018-11-02-events.json.gz", "raw/log_data/2018/11/01/01/part-0.json",
                   "raw/log_data/2018/11/01/01/part-1.json.bz2"]
    stage(**{**EVENTS, "s3_key": "log_data/2018/11/2018-11-02-events.json"})  # the day file, compressed
    (copy,) = [s for s in normalized(redshift.statements) if s.startswith('COPY "incoming"')]
    assert " MAXERROR 0 GZIP MANIFEST REGION " in copy
    (manifest,) = [text for uri, text in s3["written"].items() if uri.endswith(".manifest")]
    assert json.loads(manifest)["entries"] == [
        {"url": f"{SOURCE}/log_data/2018/11/2018-11-02-events.json.gz", "mandatory": True}]
    redshift.statements.clear()
    s3["written"].clear()
    stage(**{**EVENTS, "s3_key": "log_data/2018/11/01/01/"})  # one COPY reads one compression: two, one table
    statements = normalized(redshift.statements)
    copies = [s for s in statements if s.startswith('COPY "incoming"')]
    assert [" BZIP2 " in copy for copy in copies] == [False, True]
    assert sum(s.startswith('CREATE TEMP TABLE "incoming"') for s in statements) == 1
    assert sum(s.startswith('INSERT INTO "staging_events"') for s in statements) == 1
    names = [uri.rsplit("/", 1)[1] for uri in s3["written"] if uri.endswith(".manifest")]
    assert [name.endswith(".bzip2.manifest") for name in names] == [False, True]
    s3["keys"].append("raw/song_data/A/A/C/TRAACCC128F429D538.json.zst")
    with pytest.raises(AirflowFailException, match=r"the new objects of staging_songs: objects of several "
                                                   r"compressions \(ZSTD, uncompressed\)"):
        stage(**SONGS)


def test_the_audit_record_commits_with_the_runs_bookkeeping_after_its_units(redshift, s3):
    result = stage(**EVENTS)
    assert [s.split()[0:3] for s in redshift.statements[-2:]] == [
        ["DELETE", "FROM", "load_audit"], ["INSERT", "INTO", "load_audit"],
    ]
    assert transactions(redshift)[-1][:2] == [LOCK, "DELETE FROM loaded_intervals WHERE table_name = %(table_name)s "
                                                    "AND batch_id = %(batch_id)s"]
    assert (result["object_count"], result["rows_written"]) == (1, None)  # COPY's count stays on the cluster
    assert (redshift.commits, redshift.rollbacks) == (3, 0)


def test_a_unit_staged_before_in_the_same_versions_is_not_copied_again(redshift, s3):
    redshift.state.record(DAY_KEY, etag(f"raw/{DAY_KEY}"))
    result = stage(**EVENTS)
    assert (result["object_count"], result["units_staged"], result["cost"]["copies"]) == (0, 0, 0)
    assert not any(s.startswith(("COPY", 'DELETE FROM "staging_events"')) for s in redshift.statements)
    assert s3["written"] == {}  # no manifest either
    assert redshift.commits == 2  # the read of what is staged, the run's bookkeeping


def forget_unit(unit: str) -> list[str]:
    uri = f"{SOURCE}/{unit}"
    return [f'DELETE FROM "staging_events" WHERE LEFT(object_key, {len(unit)}) = \'{unit}\' AND ("ts" BETWEEN '
            '%(first_ts)s AND %(last_ts)s OR "ts" IS NULL)',
            f"DELETE FROM quarantine WHERE table_name = %(table_name)s AND LEFT(object_uri, {len(uri)}) = '{uri}'",
            f"DELETE FROM staged_objects WHERE table_name = %(table_name)s AND LEFT(object_key, {len(unit)}) = "
            f"'{unit}'"]


def restatements(connection) -> list[tuple[str, str, datetime, datetime]]:
    return [(parameters["object_uri"], parameters["change"], parameters["hours_start"], parameters["hours_end"])
            for statement, parameters in zip(connection.statements, connection.parameters, strict=True)
            if statement.startswith("INSERT INTO restatements")]


def test_a_new_object_in_a_staged_hour_restages_the_whole_unit_and_restates_its_loaded_hour(redshift, s3):
    """A late second part of hour 00, found by the run of 01:00: the hour prefix is forgotten and copied again
    with both parts, in one transaction, and hour 00 (loaded) is restated, from its old and new coverage."""
    unit = "log_data/2018/11/01/00/"
    s3["keys"] += [f"raw/{unit}part-0.json", f"raw/{unit}part-1.json"]
    redshift.state.record(f"{unit}part-0.json", etag(f"raw/{unit}part-0.json"), ms(0, 1), ms(0, 50))
    redshift.state.loaded.append((datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 1)))
    result = StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, lookback_hours=24,
                                     **HOURLY).execute(run_context(HOUR + timedelta(hours=1), RUN))
    (staging,) = [t for t in transactions(redshift) if any(s.startswith('COPY "incoming"') for s in t)]
    assert staging[:2] == [LOCK, staging[1]] and staging[1].endswith(f"LEFT(object_key, 23) = '{unit}'")
    assert staging[2:5] == forget_unit(unit)
    forgotten = redshift.parameters[redshift.statements.index(next(
        s for s in redshift.statements if s.startswith('DELETE FROM "staging_events"')))]
    assert (forgotten["first_ts"], forgotten["last_ts"]) == (ms(0, 1), ms(0, 50))
    (manifest,) = written(s3, ".manifest").values()
    assert len(json.loads(manifest)["entries"]) == 2  # the unit whole
    assert restatements(redshift) == [
        (f"{SOURCE}/{unit}", "changed", datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 1))]
    assert staging[-1].startswith("INSERT INTO restatements")  # with the unit, in its transaction
    assert result["hours_loaded"] == ["2018-11-01T00:00Z/2018-11-01T02:00Z"]
    assert [entry["change"] for entry in result["restated"]] == ["changed"]


def test_a_member_gone_restages_its_unit_without_it_and_a_unit_with_none_left_is_only_forgotten(redshift, s3):
    hour_0, hour_1 = "log_data/2018/11/01/00/", "log_data/2018/11/01/01/"
    s3["keys"] += [f"raw/{hour_0}part-0.json"]
    for key, first in [(f"{hour_0}part-0.json", ms(0)), (f"{hour_0}part-1.json", ms(0)),
                       (f"{hour_1}part-0.json", ms(1))]:
        redshift.state.record(key, etag(f"raw/{key}"), first, first + 60_000)
    redshift.state.loaded.append((datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 2)))
    result = StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, lookback_hours=24,
                                     **HOURLY).execute(run_context(HOUR + timedelta(hours=2), RUN))
    units = [t for t in transactions(redshift) if t[0] == LOCK][:-1]
    assert [unit[2:5] for unit in units] == [forget_unit(hour_0), forget_unit(hour_1)]
    assert [any(s.startswith('COPY "incoming"') for s in unit) for unit in units] == [True, False]
    assert restatements(redshift) == [
        (f"{SOURCE}/{hour_0}", "changed", datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 1)),
        (f"{SOURCE}/{hour_1}", "gone", datetime(2018, 11, 1, 1), datetime(2018, 11, 1, 2))]
    assert (result["objects_gone"], result["object_count"], result["units_staged"]) == (2, 1, 2)


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
    redshift.results.extend([[], [], [(2,)]])  # nothing staged before (twice); the quarantine holds two records
    audit = stage(**EVENTS, max_errors="5")
    statements = normalized(redshift.statements)
    copy = statements.index(next(s for s in statements if s.startswith('COPY "incoming"')))
    assert " MAXERROR 5 " in statements[copy]
    assert statements[copy + 1].startswith("INSERT INTO quarantine") and statements[copy + 1].endswith(
        "FROM sys_load_error_detail WHERE query_id = PG_LAST_COPY_ID()")
    # Records outside the unit's hours (or without a time) go to the quarantine too, under the unit.
    assert statements[copy + 2].startswith("INSERT INTO quarantine") and (
        f"'{SOURCE}/{DAY_KEY}', 0, 'ts missing or outside " in statements[copy + 2]) and statements[copy + 2].endswith(
        'FROM "incoming" WHERE "ts" IS NULL OR "ts" < 1540944000000 OR "ts" >= 1541203200000')
    assert statements[copy + 3].startswith('DELETE FROM "incoming" WHERE "ts" IS NULL')
    assert statements[copy + 4].startswith('INSERT INTO "staging_events"')
    assert "SELECT COUNT(*) FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s" in statements
    assert audit["rows_rejected"] == 2


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
    stage(**(EVENTS if table == "events" else SONGS))
    (copy,) = [s for s in normalized(redshift.statements) if s.startswith('COPY "incoming"')]
    (manifest,) = [uri for uri in s3["written"] if uri.endswith(".manifest")]
    jsonpaths = "log_events.json" if table == "events" else "song_data.json"
    assert copy.split(") FROM ", 1)[1] == (
        f"'{manifest}' IAM_ROLE '{IAM_ROLE}' FORMAT AS JSON 's3://sparkify-bucket/raw/jsonpaths/{jsonpaths}' "
        "TIMEFORMAT 'epochmillisecs' MAXERROR 0 MANIFEST REGION 'us-west-2' COMPUPDATE OFF STATUPDATE OFF")
    assert not [option for option in READING_OPTIONS if option.upper() in copy.upper()]


def test_more_bad_records_than_max_errors_fail_the_run_and_roll_its_unit_back(redshift, s3):
    redshift.results.extend([[], [], [(6,)]])  # six rejected over the COPYs, each within its own MAXERROR
    with pytest.raises(AirflowFailException, match="6 records rejected by COPY or outside their unit's hours, "
                                                   "more than max_errors=5"):
        stage(**EVENTS, max_errors=5)
    assert (redshift.commits, redshift.rollbacks) == (1, 1)  # the read of what is staged; the unit
    assert not any(s.startswith("INSERT INTO loaded_intervals") for s in redshift.statements)


def test_a_record_outside_its_hours_fails_the_run_even_without_max_errors(redshift, s3):
    redshift.results.extend([[], [], [(1,)]])
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


def test_an_event_unit_failing_on_bad_records_sets_aside_what_its_load_errors_name_and_the_run_goes_on(
        redshift, s3):
    """Hour 00's COPY fails on bad records: its transaction is rolled back, the member its load errors name set
    aside (a transaction of its own), hour 05 staged all the same; then the run fails naming the first error,
    without its bookkeeping (its hours are not loaded)."""
    bad, good = "log_data/2018/11/01/00/part-1.json", "log_data/2018/11/01/05/part-0.json"
    s3["keys"] += ["raw/log_data/2018/11/01/00/part-0.json", f"raw/{bad}", f"raw/{good}"]
    redshift.failures.append(('COPY "incoming', LOAD_FAILED))
    redshift.state.load_errors += [(f"{SOURCE}/{bad}", 7, "ts", "Invalid digit, Value '.', Pos 13, Type: Long"),
                                   (f"{SOURCE}/{bad}", 9, "ts", "Invalid digit, Value '.', Pos 13, Type: Long")]
    with pytest.raises(AirflowFailException) as failure:
        StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, **HOURLY).execute(
            run_context(HOUR, RUN, hours=24))
    assert str(failure.value).startswith(
        f"staging_events: {SOURCE}/{bad} line 7: ts: Invalid digit, Value '.', Pos 13, Type: Long (the COPY failed "
        "on more bad records than max_errors=0; set aside until they change: 1 of its 2 objects, those its load "
        f"errors name); its unit {SOURCE}/log_data/2018/11/01/00/ was not staged (the run's other units are, "
        "each in its own transaction)\nIt is set aside: every run of the hours it covers fails until it changes.")
    assert set_aside_versions(redshift) == [(bad, etag(f"raw/{bad}"))]
    statements = normalized(redshift.statements)
    failed = statements.index(next(s for s in statements if s.startswith('COPY "incoming"')))
    assert statements[failed + 1:failed + 5] == [LOAD_ERRORS, LOCK, *SET_ASIDE]
    copies = [s for s in statements if s.startswith('COPY "incoming"')]
    assert len(copies) == 2 and "log_data_2018_11_01_05" in copies[1]
    assert not any(s.startswith("INSERT INTO loaded_intervals") for s in statements)
    # The read of what is staged, the set-aside, hour 05; hour 00 rolled back (to read its load errors, then
    # by its transaction's end).
    assert (redshift.commits, redshift.rollbacks) == (3, 2)


def test_a_member_set_aside_holds_its_unit_back_for_other_runs_and_is_retried_by_the_runs_of_its_hours(
        redshift, s3):
    unit, later = "log_data/2018/11/01/00/", "log_data/2018/11/01/01/"
    s3["keys"] += [f"raw/{unit}part-0.json", f"raw/{unit}part-1.json", f"raw/{later}part-0.json"]
    redshift.state.record(f"{unit}part-1.json", etag(f"raw/{unit}part-1.json"), rejected_at=datetime(2018, 11, 1, 1),
                          reason="line 7: ts: Invalid digit")
    # The run of 01:00 lists hour 00 in its look-back only: it skips the unit (and its new part-0) and goes on.
    result = StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, lookback_hours=24,
                                     **HOURLY).execute(run_context(HOUR + timedelta(hours=1), RUN))
    copied = [s for s in normalized(redshift.statements) if s.startswith('COPY "incoming"')]
    assert len(copied) == 1 and "log_data_2018_11_01_01" in copied[0]
    assert (result["units_staged"], result["object_count"]) == (1, 1)
    # The run of 00:00 covers it: it tries the whole unit again.
    redshift.statements.clear()
    StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, **HOURLY).execute(
        run_context(HOUR, RUN))
    assert len([s for s in normalized(redshift.statements) if s.startswith('COPY "incoming"')]) == 1
    (manifest,) = [text for uri, text in s3["written"].items() if "log_data_2018_11_01_00" in uri
                   and uri.endswith(".manifest")]
    assert len(json.loads(manifest)["entries"]) == 2


def test_a_run_restating_hours_a_skipped_member_covers_fails_after_staging(redshift, s3):
    """Hour 01's rows once reached into hour 00: its new version restates hour 00, whose unit holds a member
    set aside (which this run of 02:00 skips): the run fails after committing, naming it."""
    hour_0, hour_1 = "log_data/2018/11/01/00/", "log_data/2018/11/01/01/"
    s3["keys"] += [f"raw/{hour_0}part-0.json", f"raw/{hour_1}part-0.json"]
    redshift.state.record(f"{hour_0}part-0.json", etag(f"raw/{hour_0}part-0.json"), rejected_at=datetime(2018, 11, 1),
                          reason="line 3: ts: Invalid digit")
    redshift.state.record(f"{hour_1}part-0.json", "an-older-etag", ms(0, 59), ms(1, 30))
    redshift.state.loaded.append((datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 2)))
    with pytest.raises(AirflowFailException, match=rf"^this run restates 2018-11-01T00:00Z/2018-11-01T02:00Z, which "
                                                   rf"event objects set aside as bad cover: {SOURCE}/{hour_0}part-0"
                                                   r"\.json \(line 3: ts: Invalid digit\)"):
        StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, lookback_hours=24,
                                **HOURLY).execute(run_context(HOUR + timedelta(hours=2), RUN))
    assert any(s.startswith("INSERT INTO loaded_intervals") for s in redshift.statements)  # staging committed
    assert restatements(redshift)[0][2:] == (datetime(2018, 11, 1, 0), datetime(2018, 11, 1, 2))


def test_a_unit_another_run_staged_meanwhile_is_not_staged_again(redshift, s3):
    """Two runs meet the same new hour: the second reads the unit's records again under the lock, finds them
    as its listing shows them, and copies nothing (on a driver)."""
    key = "log_data/2018/11/01/00/part-0.json"
    s3["keys"].append(f"raw/{key}")
    redshift.results.append([])  # when this run read what is staged, the hour was new
    redshift.state.record(key, etag(f"raw/{key}"), ms(0), ms(0, 30), batch_id="the other run")
    result = StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, **HOURLY).execute(
        run_context(HOUR, RUN))
    assert not any(s.startswith("COPY") or s.startswith("DELETE FROM \"staging_events\"")
                   for s in redshift.statements)
    assert (result["units_staged"], redshift.commits) == (0, 3)


@pytest.mark.parametrize("max_errors", ["-1", "5; DROP TABLE songplays", "1e3"])
def test_max_errors_must_be_a_count(redshift, s3, max_errors):
    with pytest.raises(AirflowFailException, match="max_errors must be a whole number"):
        stage(**EVENTS, max_errors=max_errors)
    assert not any("DROP" in statement for statement in redshift.statements)


def test_staging_refuses_quotes_smuggled_into_literals(redshift, s3):
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


def test_retention_drops_the_units_no_run_listed_for_long_in_the_runs_bookkeeping(redshift, s3):
    old_hour, old_day = "log_data/2018/10/01/05/", "log_data/2018/10/2018-10-01-events.json"
    listed = "log_data/2018/11/01/00/part-0.json"
    s3["keys"].append(f"raw/{listed}")
    redshift.state.record(listed, etag(f"raw/{listed}"), ms(0), ms(0, 30))
    redshift.results += [[staged(listed, etag(f"raw/{listed}"), ms(0), ms(0, 30))],
                         [(f"{old_hour}part-3.json", 1538370000000, 1538371000000),
                          (f"{old_hour}part-4.json", 1538369000000, 1538370500000),
                          (old_day, 1538352000000, 1538438399000),  # staged under the daily layout: its own unit
                          (listed, ms(0), ms(0, 30))]]  # listed by this run: kept
    result = StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, retention_hours="72",
                                     **HOURLY).execute(run_context(HOUR, RUN))
    (bookkeeping,) = transactions(redshift)[1:]
    assert bookkeeping[:3] == [LOCK, "DELETE FROM loaded_intervals WHERE table_name = %(table_name)s AND batch_id = "
                               "%(batch_id)s", "INSERT INTO loaded_intervals (table_name, batch_id, interval_start, "
                               "interval_end, recorded_at) VALUES (%(table_name)s, %(batch_id)s, %(interval_start)s, "
                               "%(interval_end)s, %(recorded_at)s)"]
    assert bookkeeping[3].startswith("UPDATE staged_objects SET used_at = %(used_at)s")
    assert bookkeeping[4].startswith("SELECT object_key, first_ts, last_ts FROM staged_objects WHERE table_name = "
                                     "%(table_name)s AND used_at < %(purge_before)s")
    # An hour prefix's expired members take their whole unit, once, over the times they all cover.
    assert bookkeeping[5:11] == [*forget_unit(old_hour), *forget_unit(old_day)]
    forgotten = [parameters for statement, parameters in zip(redshift.statements, redshift.parameters, strict=True)
                 if statement.startswith('DELETE FROM "staging_events"')]
    assert [(entry["first_ts"], entry["last_ts"]) for entry in forgotten] == [
        (1538369000000, 1538371000000), (1538352000000, 1538438399000)]
    assert bookkeeping[12] == 'ANALYZE "staging_events"'
    assert not any("pg_" in s for s in bookkeeping)  # PostgreSQL's staging lock
    assert result["objects_purged"] == 2  # units, on Redshift
    assert (redshift.commits, redshift.rollbacks) == (2, 0)


def test_a_key_pattern_the_retention_cannot_read_back_is_refused_before_anything_is_staged(redshift, s3):
    with pytest.raises(AirflowFailException, match=r"s3_key on Redshift with retention_hours: .*only %Y, %m, %d, %H"):
        stage(retention_hours="72", **{**EVENTS, "s3_key": "log_data/%Y/%j/"})
    assert not any(s.startswith(("COPY", "DELETE")) for s in redshift.statements)


def test_retention_sends_no_delete_when_no_unit_is_old_enough(redshift, s3):
    redshift.state.record(DAY_KEY, etag(f"raw/{DAY_KEY}"))
    assert stage(retention_hours="72", **EVENTS)["objects_purged"] == 0
    assert not any(s.startswith("DELETE") and "loaded_intervals" not in s  # but the run's interval record
                   for s in redshift.statements[:-2])  # and the audit record's own
    assert any("purge_before" in s and s.startswith("SELECT") for s in redshift.statements)
    assert redshift.commits == 2


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
    assert {key: result[key] for key in ("checks", "failed")} == {"checks": 2, "failed": 0}
    assert (result["cost"]["statements"], result["cost"]["transactions"]) == (2, 1)
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
    # songplays' key: songplay_id on Redshift; on PostgreSQL one index leading with start_time serves the key
    # and the reads by time (songplay_id begins with the ts start_time comes from), no second index.
    assert "user_agent VARCHAR(1024), PRIMARY KEY (songplay_id) ) DISTSTYLE KEY DISTKEY (start_time)" in ddl
    postgres = ddl_statements("postgres")
    assert "DISTSTYLE" not in postgres and "PRIMARY KEY (start_time, songplay_id)" in postgres
    assert "songplays_start_time_idx" not in postgres and "CREATE INDEX staging_events_ts_idx" in postgres
