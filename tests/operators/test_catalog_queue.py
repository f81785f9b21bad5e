"""The song catalog found from the bucket's event notifications, for real: moto in server mode
(tools/moto_server.py) keeps S3 and SQS in one process and delivers the bucket's notifications to
the queue as S3 does; its request log says which S3 and SQS requests each run made. The operators
run on the embedded PostgreSQL, reached through an ``aws_default`` connection with an endpoint_url."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from sparkify import LoadDimensionOperator, StageToRedshiftOperator
from tests.support.dates import START
from tests.support.inputs import song
from tests.support.tasks import run_context, sql_file
from tools.moto_server import MotoServer

PREFIX = "raw"
SONG_PREFIX = f"{PREFIX}/song_data/"


@pytest.fixture(scope="module")
def server():
    with MotoServer() as running:
        yield running


@pytest.fixture
def catalog(server, warehouse, monkeypatch):
    """A bucket of five song files whose song_data/ notifications go to a queue (the Variable's URL)."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(server.aws_connection()))
    name = f"catalog-{uuid.uuid4().hex[:8]}"
    queue = server.notifying_bucket(name, name, SONG_PREFIX)
    bucket = Bucket(server, name, queue)
    for number in range(5):
        bucket.put(f"TRAAAA{number}", song(f"SO{number}", f"Title {number}", "AR1", "Artist", 200.0 + number))
    return bucket


class Bucket:
    def __init__(self, server: MotoServer, name: str, queue: str) -> None:
        self.server, self.name, self.queue = server, name, queue
        self.s3, self.sqs = server.client("s3"), server.client("sqs")
        self.source = f"s3://{name}/{PREFIX}"

    @staticmethod
    def key(track: str) -> str:
        return f"{SONG_PREFIX}{track[2]}/{track[3]}/{track[4]}/{track}.json"

    def put(self, track: str, record: dict) -> None:
        self.s3.put_object(Bucket=self.name, Key=self.key(track), Body=json.dumps(record).encode())

    def remove(self, track: str) -> None:
        self.s3.delete_object(Bucket=self.name, Key=self.key(track))

    def waiting(self) -> int:
        """Messages in the queue, visible or received and not deleted."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def take(self) -> list[dict]:
        """Receive every waiting message (they stay, hidden, until deleted or released)."""
        taken: list[dict] = []
        while batch := self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                                VisibilityTimeout=60).get("Messages", []):
            taken += batch
        return taken

    def stage(self, run_id: str, queue: str | None = "", **arguments) -> dict:
        """stage_songs of one run, the request log cleared first; then load_songs as the DAG does."""
        self.server.log.clear()
        operator = StageToRedshiftOperator(
            task_id="stage_songs", table="staging_songs", source=self.source, s3_key="song_data/",
            jsonpaths="jsonpaths/song_data.json", catalog_key="song_id",
            catalog_queue=self.queue if queue == "" else queue, **arguments)
        result = operator.execute(run_context(START, run_id))
        self.requests = self.server.log.summary()
        self.song_data_requests = {operation: self.server.log.count("s3", operation, SONG_PREFIX)
                                   for operation in ("ListObjectsV2", "HeadObject", "GetObject")}
        LoadDimensionOperator(task_id="load_songs", table="songs", sql=sql_file("load/songs.sql"), mode="upsert",
                              key="song_id").execute(run_context(START, run_id))
        return result


def rows(warehouse, sql: str, *parameters) -> list[tuple]:
    return warehouse.execute(sql, parameters).fetchall()


def test_the_first_run_lists_the_catalog_and_deletes_the_messages_it_covers(catalog, warehouse):
    assert catalog.waiting() == 6  # S3's test event and five creations
    result = catalog.stage("run_1")
    assert (result["catalog_discovery"], result["catalog_reason"]) == (
        "listing", "reconciliation: no full listing recorded yet")
    assert (result["object_count"], result["messages_received"], result["messages_deleted"]) == (5, 6, 6)
    assert result["found_by_listing_only"] == 0  # every file it staged was named by a notification
    assert catalog.song_data_requests["ListObjectsV2"] == 1 and catalog.waiting() == 0
    assert rows(warehouse, "SELECT objects_listed, objects_staged, found_by_listing_only FROM catalog_listings") == [
        (5, 5, 0)]


def test_a_song_file_put_while_the_queue_is_set_reaches_songs_in_the_next_run_without_a_listing(catalog, warehouse):
    catalog.stage("run_1")
    catalog.put("TRBBBB9", song("SO9", "New song", "AR2", "Newcomer", 180.0))
    result = catalog.stage("run_2")
    assert result["catalog_discovery"] == "notifications", result["catalog_reason"]
    assert (result["object_count"], result["rows_written"], result["messages_deleted"]) == (1, 1, 1)
    assert rows(warehouse, "SELECT title FROM songs WHERE song_id = 'SO9'") == [("New song",)]
    # No LIST of the catalog: one HEAD (its current version) and one GET of the file named.
    assert catalog.song_data_requests == {"ListObjectsV2": 0, "HeadObject": 1, "GetObject": 1}
    assert "s3:ListObjectsV2" not in catalog.requests and "s3:HeadBucket" not in catalog.requests
    assert catalog.waiting() == 0
    # Nothing new: no S3 request at all, one empty receive.
    idle = catalog.stage("run_3")
    assert (idle["object_count"], idle["messages_received"]) == (0, 0)
    assert catalog.requests == {"sqs:ReceiveMessage": 1}


def test_a_message_deleted_by_hand_is_caught_by_the_reconciliation(catalog, warehouse):
    catalog.stage("run_1")
    catalog.put("TRCCCC7", song("SO7", "Lost song", "AR1", "Artist", 190.0))
    for message in catalog.take():  # the notification is lost
        catalog.sqs.delete_message(QueueUrl=catalog.queue, ReceiptHandle=message["ReceiptHandle"])
    missed = catalog.stage("run_2")
    assert (missed["catalog_discovery"], missed["object_count"]) == ("notifications", 0)
    assert rows(warehouse, "SELECT song_id FROM songs WHERE song_id = 'SO7'") == []
    # A day later (the cadence's clock is the last listing that committed): the listing finds it.
    warehouse.execute("UPDATE catalog_listings SET listed_at = listed_at - INTERVAL '24 hours'")
    reconciled = catalog.stage("run_3")
    assert reconciled["catalog_discovery"] == "listing"
    assert reconciled["catalog_reason"].startswith("reconciliation: the last full listing was at ")
    assert (reconciled["object_count"], reconciled["found_by_listing_only"]) == (1, 1)
    assert catalog.song_data_requests["ListObjectsV2"] == 1
    assert rows(warehouse, "SELECT title FROM songs WHERE song_id = 'SO7'") == [("Lost song",)]
    # The next hour is by notifications again, and the trigger form's re-stage forces a listing.
    assert catalog.stage("run_4")["catalog_discovery"] == "notifications"
    restaged = catalog.stage("run_5", restage=True)
    assert (restaged["catalog_discovery"], restaged["catalog_reason"], restaged["object_count"]) == (
        "listing", "re-stage of the whole catalog requested", 6)


def test_a_duplicated_message_stages_nothing_twice(catalog, warehouse):
    catalog.stage("run_1")
    catalog.put("TRDDDD5", song("SO5", "Twice told", "AR1", "Artist", 210.0))
    (message,) = catalog.take()
    for _ in range(2):  # S3 may notify twice, SQS may deliver twice
        catalog.sqs.send_message(QueueUrl=catalog.queue, MessageBody=message["Body"])
    catalog.sqs.change_message_visibility(QueueUrl=catalog.queue, ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)
    result = catalog.stage("run_2")
    assert (result["messages_received"], result["song_files_named"], result["object_count"]) == (3, 1, 1)
    assert catalog.song_data_requests == {"ListObjectsV2": 0, "HeadObject": 1, "GetObject": 1}
    # Delivered again after the run committed: that version is staged, so no S3 request at all.
    catalog.sqs.send_message(QueueUrl=catalog.queue, MessageBody=message["Body"])
    again = catalog.stage("run_3")
    assert (again["messages_received"], again["object_count"], again["messages_deleted"]) == (1, 0, 1)
    assert catalog.song_data_requests == {"ListObjectsV2": 0, "HeadObject": 0, "GetObject": 0}
    assert rows(warehouse, "SELECT COUNT(*) FROM staging_songs WHERE song_id = 'SO5'") == [(1,)]
    assert rows(warehouse, "SELECT COUNT(*) FROM staging_songs") == [(6,)]
    assert catalog.waiting() == 0


def test_a_removed_song_file_leaves_its_songs_and_a_new_version_replaces_them(catalog, warehouse):
    catalog.stage("run_1")
    catalog.remove("TRAAAA2")
    removed = catalog.stage("run_2")
    assert (removed["catalog_discovery"], removed["song_files_removed"], removed["object_count"]) == (
        "notifications", 1, 0)
    assert catalog.song_data_requests == {"ListObjectsV2": 0, "HeadObject": 1, "GetObject": 0}
    # The rule: the catalog only grows. Its songs stay staged and in songs, its record stays.
    assert rows(warehouse, "SELECT title FROM songs WHERE song_id = 'SO2'") == [("Title 2",)]
    assert rows(warehouse, "SELECT COUNT(*) FROM staging_songs WHERE song_id = 'SO2'") == [(1,)]
    assert rows(warehouse, "SELECT COUNT(*) FROM staged_objects WHERE object_key = %s",
                catalog.key("TRAAAA2").removeprefix(f"{PREFIX}/")) == [(1,)]
    assert catalog.waiting() == 0
    # Published again, corrected: the new version replaces the song's row.
    catalog.put("TRAAAA2", song("SO2", "Title 2 (remastered)", "AR1", "Artist", 202.0))
    republished = catalog.stage("run_3")
    assert (republished["object_count"], republished["song_files_removed"]) == (1, 0)
    assert rows(warehouse, "SELECT title FROM staging_songs WHERE song_id = 'SO2'") == [("Title 2 (remastered)",)]
    assert rows(warehouse, "SELECT title FROM songs WHERE song_id = 'SO2'") == [("Title 2 (remastered)",)]
    # A full listing applies the same rule: the removed file's songs are not withdrawn.
    catalog.remove("TRAAAA3")
    for message in catalog.take():
        catalog.sqs.delete_message(QueueUrl=catalog.queue, ReceiptHandle=message["ReceiptHandle"])
    catalog.stage("run_4", restage=False, reconcile_hours="0")
    assert rows(warehouse, "SELECT title FROM songs WHERE song_id = 'SO3'") == [("Title 3",)]


def test_a_queue_that_cannot_be_read_fails_the_task_and_stages_nothing(catalog, warehouse):
    from airflow.sdk.exceptions import AirflowFailException

    gone = catalog.queue.rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(AirflowFailException, match=(
            r"cannot read the song catalog's queue .*/no-such-queue \(Variable sparkify_catalog_queue\): .*"
            r"Nothing was staged")):
        catalog.stage("run_1", queue=gone)
    assert rows(warehouse, "SELECT COUNT(*) FROM staging_songs") == [(0,)]
    assert rows(warehouse, "SELECT COUNT(*) FROM catalog_listings") == [(0,)]


@pytest.mark.parametrize(("body", "error"), [
    ("hello", r"message \S+ of the catalog queue is not an S3 event notification \('hello'\)"),
    (json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "someone-else"}, "object": {"key": "raw/song_data/A/A/A/TRAAAAA.json", "eTag": "x"}}}]}),
     r"names bucket 'someone-else', not the source's"),
], ids=["not-a-notification", "another-bucket"])
def test_a_foreign_message_fails_the_task_and_stays_in_the_queue(catalog, warehouse, body, error):
    from airflow.sdk.exceptions import AirflowFailException

    catalog.stage("run_1")
    catalog.sqs.send_message(QueueUrl=catalog.queue, MessageBody=body)
    with pytest.raises(AirflowFailException, match=error):
        catalog.stage("run_2")
    assert [message["Body"] for message in catalog.take()] == [body]  # released, not deleted


def test_a_run_that_fails_leaves_its_messages_for_the_next_run(catalog, warehouse):
    from airflow.sdk.exceptions import AirflowFailException

    catalog.stage("run_1")
    catalog.put("TREEEE1", song("SO11", "Good", "AR1", "Artist", 100.0))
    catalog.s3.put_object(Bucket=catalog.name, Key=catalog.key("TREEEE2"), Body=b'{"song_id": "SO12", "title": ')
    with pytest.raises(AirflowFailException, match="TREEEE2.json"):
        catalog.stage("run_2")
    assert catalog.waiting() == 2 and rows(warehouse, "SELECT COUNT(*) FROM staging_songs") == [(5,)]
    # The next run stages the good file; the bad one stays set aside until it changes.
    result = catalog.stage("run_3")
    assert (result["object_count"], result["objects_set_aside"], result["messages_deleted"]) == (1, 1, 2)
    assert rows(warehouse, "SELECT song_id FROM songs WHERE song_id IN ('SO11', 'SO12')") == [("SO11",)]
    # An idle hour names no file, yet still names the one set aside; its fixed version clears it.
    idle = catalog.stage("run_4")
    assert (idle["messages_received"], [entry["object_uri"] for entry in idle["set_aside"]]) == (
        0, [f"{catalog.source}/{catalog.key('TREEEE2').removeprefix(PREFIX + '/')}"])
    assert idle["set_aside"][0]["reason"].startswith("staging_songs: ")
    catalog.put("TREEEE2", song("SO12", "Fixed", "AR1", "Artist", 101.0))
    fixed = catalog.stage("run_5")
    assert (fixed["object_count"], fixed["set_aside"]) == (1, [])


def test_without_a_queue_every_run_lists_the_catalog(catalog, warehouse):
    for run in ("run_1", "run_2"):
        result = catalog.stage(run, queue=None)
        assert (result["catalog_discovery"], result["catalog_reason"]) == (
            "listing", "no queue set (Variable sparkify_catalog_queue)")
        assert catalog.song_data_requests["ListObjectsV2"] == 1 and "sqs:ReceiveMessage" not in catalog.requests
    assert rows(warehouse, "SELECT found_by_listing_only FROM catalog_listings") == [(None,), (None,)]
    assert catalog.waiting() == 6  # nobody reads the queue


def test_the_cadence_counts_from_the_last_listing(catalog, warehouse):
    catalog.stage("run_1")
    warehouse.execute("UPDATE catalog_listings SET listed_at = listed_at - INTERVAL '5 hours'")
    assert catalog.stage("run_2", reconcile_hours="6")["catalog_discovery"] == "notifications"
    assert catalog.stage("run_3", reconcile_hours="5")["catalog_discovery"] == "listing"
    assert catalog.stage("run_4", reconcile_hours="5")["catalog_discovery"] == "notifications"


def test_the_real_dag_with_the_queue_set_loads_a_new_song_file_without_listing_the_catalog(
        server, warehouse_uri, tmp_path):
    """`make backfill` (the real DAG, hour by hour) on a bucket whose catalog notifications go to the
    queue the Variable names: the first hour lists the catalog, the next finds a new song file from
    its notification, and an hour with nothing new asks S3 about no song file at all. The summary of
    each run says how it found the catalog's changes."""
    import os
    import subprocess

    import psycopg

    from tests.support.warehouse_checks import assert_succeeded, backfill_command
    from tools import local_pg
    from tools.generate_data import generate

    folder = tmp_path / "bucket"
    generate(folder, START, START + timedelta(days=1), events_per_day=200, songs=40, users=10, seed=3)
    name = f"dag-{uuid.uuid4().hex[:8]}"
    queue = server.notifying_bucket(name, name, SONG_PREFIX)
    bucket = Bucket(server, name, queue)
    for path in folder.rglob("*.json"):
        bucket.s3.upload_file(str(path), name, f"{PREFIX}/{path.relative_to(folder).as_posix()}")
    env = {**os.environ, "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(server.aws_connection()),
           "AIRFLOW_VAR_SPARKIFY_CATALOG_QUEUE": queue}

    def run_hour(hour: int) -> dict[str, int]:
        server.log.clear()
        start = START + timedelta(hours=hour)
        result = subprocess.run(backfill_command(bucket.source, warehouse_uri, start, start + timedelta(hours=1)),
                                capture_output=True, text=True, env=env, timeout=600)
        assert_succeeded(result.returncode, result.stdout, result.stderr)
        return {"catalog LIST": server.log.count("s3", "ListObjectsV2", SONG_PREFIX),
                "catalog HEAD/GET": server.log.count("s3", "HeadObject", SONG_PREFIX)
                + server.log.count("s3", "GetObject", SONG_PREFIX),
                "s3": server.log.count("s3")}

    began = datetime.now(timezone.utc)
    assert run_hour(0)["catalog LIST"] == 1  # the first full listing
    bucket.put("TRZZZZ1", song("SOZZZ1", "Fresh off the press", "ARZ", "Newcomer", 201.0))
    assert run_hour(1) | {"s3": 0} == {"catalog LIST": 0, "catalog HEAD/GET": 2, "s3": 0}
    with psycopg.connect(warehouse_uri) as warehouse:
        assert warehouse.execute("SELECT title FROM songs WHERE song_id = 'SOZZZ1'").fetchall() == [
            ("Fresh off the press",)]
    idle = run_hour(2)  # (the whole run's S3 requests are bench/catalog_requests.py's)
    assert (idle["catalog LIST"], idle["catalog HEAD/GET"]) == (0, 0)
    with psycopg.connect(local_pg.database_uri("airflow")) as metadata:
        notes = [note for (note,) in metadata.execute(
            "SELECT n.content FROM dag_run AS r JOIN dag_run_note AS n ON n.dag_run_id = r.id "
            "WHERE r.dag_id = 'sparkify_dwh' AND r.start_date >= %s ORDER BY r.logical_date", (began,)).fetchall()]
    catalog = [next(line for line in note.splitlines() if line.startswith("- Song catalog: ")) for note in notes]
    assert catalog[0] == ("- Song catalog: full listing of 40 song files, 0 new or changed found by it alone — "
                          "reconciliation: no full listing recorded yet"), catalog  # their uploads were notified
    assert catalog[1].startswith("- Song catalog: notifications, 1 messages naming 1 song files — the last full "
                                 "listing was at "), catalog
    assert catalog[2].startswith("- Song catalog: notifications, 0 messages naming 0 song files — "), catalog


def test_a_wrong_source_still_fails_a_listing_with_the_queue_set(catalog, warehouse):
    """With the queue set the source is not checked up front (an idle hour asks S3 nothing), but the
    listing of a source without song files fails by name, never as an empty catalog."""
    from airflow.sdk.exceptions import AirflowFailException

    catalog.source = f"s3://{catalog.name}/rwa"
    with pytest.raises(AirflowFailException, match=rf"no objects under s3://{catalog.name}/rwa/song_data/: is "
                                                   "the source right"):
        catalog.stage("run_1")
    assert catalog.waiting() == 6  # nothing deleted
