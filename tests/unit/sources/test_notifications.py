"""How a catalog notification is read (sparkify.sources.notifications.parse_message), on the bodies S3
sends to SQS: straight, wrapped by SNS, its test event; keys URL-encoded and full."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify.sources.notifications import Notification, parse_message
from tests.support.redshift_recording import s3_notification


def received(body: str) -> dict:
    return {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body}


def read(body: str, base: str = "raw") -> tuple[list[Notification], int]:
    message = parse_message(received(body), "sparkify-bucket", base, "song_data/")
    return message.notifications, message.elsewhere


def test_a_creation_names_the_key_under_the_base_decoded_with_its_etag():
    body = s3_notification("sparkify-bucket", "raw/song_data/A/B/C/TR one+two %.json", '"abc-2"')
    assert "TR+one%2Btwo+%25.json" in body  # as S3 writes it: form-encoded
    assert read(body) == ([Notification("song_data/A/B/C/TR one+two %.json", True, "abc-2")], 0)


def test_a_removal_and_a_lifecycle_expiration_are_removals():
    removal = json.loads(s3_notification("sparkify-bucket", "raw/song_data/A/A/A/TRA.json", removed=True))
    expiry = json.loads(json.dumps(removal))
    expiry["Records"][0]["eventName"] = "LifecycleExpiration:Delete"
    removal["Records"] += expiry["Records"]
    assert read(json.dumps(removal)) == ([Notification("song_data/A/A/A/TRA.json", False)] * 2, 0)


def test_keys_outside_the_catalog_and_other_events_are_counted_not_named():
    body = json.loads(s3_notification("sparkify-bucket", "raw/log_data/2018/11/x.json", "e"))
    other = json.loads(s3_notification("sparkify-bucket", "other/song_data/A/A/A/TRA.json", "e"))
    tagged = json.loads(s3_notification("sparkify-bucket", "raw/song_data/A/A/A/TRA.json", "e"))
    tagged["Records"][0]["eventName"] = "ObjectTagging:Put"
    folder = json.loads(s3_notification("sparkify-bucket", "raw/song_data/A/", "e"))
    body["Records"] += other["Records"] + tagged["Records"] + folder["Records"]
    assert read(json.dumps(body)) == ([], 4)


def test_a_bucket_without_a_base_prefix_and_an_sns_envelope():
    inner = s3_notification("sparkify-bucket", "song_data/A/A/A/TRA.json", "e1")
    envelope = json.dumps({"Type": "Notification", "MessageId": "x", "Message": inner})
    assert read(envelope, base="") == ([Notification("song_data/A/A/A/TRA.json", True, "e1")], 0)


def test_s3s_test_event_names_nothing():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "sparkify-bucket"})
    assert read(body) == ([], 0)


@pytest.mark.parametrize(("body", "error"), [
    ("not json", "is not an S3 event notification"),
    (json.dumps({"Records": "x"}), "is not an S3 event notification"),
    (json.dumps([1, 2]), "is not an S3 event notification"),
    (json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": "x"}]}), "has a record without its bucket"),
    (s3_notification("other-bucket", "raw/song_data/A/A/A/TRA.json", "e"), "names bucket 'other-bucket'"),
])
def test_a_message_of_something_else_fails_the_task(body, error):
    with pytest.raises(AirflowFailException, match=error):
        read(body)
