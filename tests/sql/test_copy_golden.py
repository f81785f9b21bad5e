"""Golden files: the exact staging transaction the operator sends on Redshift, COPY text included.

One file per representative case in tests/sql/golden/. A change to the SQL templates or to the
operator that alters what Redshift receives fails here until the golden files are regenerated
and the diff reviewed:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/sql/test_copy_golden.py
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sparkify import StageToRedshiftOperator
from tests.support.redshift_recording import (
    HOUR,
    IAM_ROLE,
    SOURCE,
    assert_transaction_safe,
    etag,
    s3_notification,
    stable_temp_names,
)
from tests.support.tasks import run_context

GOLDEN_DIR = Path(__file__).parent / "golden"
EVENTS = {"table": "staging_events", "jsonpaths": "jsonpaths/log_events.json", "time_field": "ts",
          "jsonpaths_uri": f"{SOURCE}/jsonpaths/log_events.json"}
SONGS = {"table": "staging_songs", "jsonpaths": "jsonpaths/song_data.json",
         "jsonpaths_uri": f"{SOURCE}/jsonpaths/song_data.json"}

CASES = {
    # The public layout: one object a day rewritten since it was staged (its old rows go first), an
    # hourly run, the bucket in another region, and the retention of an object no run listed for long.
    "events_daily_key": ({**EVENTS, "s3_key": "log_data/%Y/%m/%Y-%m-%d-events.json", "region": "us-west-2",
                          "retention_hours": "72", "lookback_hours": "24"}, 1),
    # The hourly layout over a day's run: one COPY per object, its rows tagged with its key; same region.
    "events_hourly_prefixes": ({**EVENTS, "s3_key": "log_data/%Y/%m/%d/%H/"}, 24),
    # New or changed song files only, through a manifest, and the record of what was staged.
    "songs_manifest": ({**SONGS, "s3_key": "song_data/", "catalog_key": "song_id", "region": "us-west-2",
                        "manifest_prefix": "s3://sparkify-work/manifests"}, 1),
    # The catalog from the bucket's notifications (catalog_queue: the queue is filled by the test): a
    # read of the last full listing, then of the named files' records only, and a manifest of the new one.
    "songs_notifications": ({**SONGS, "s3_key": "song_data/", "catalog_key": "song_id", "region": "us-west-2",
                             "manifest_prefix": "s3://sparkify-work/manifests", "catalog_queue": True}, 1),
}


def staging_transaction(connection, s3, arguments: dict, hours: int, queue: str | None = None) -> str:
    s3["keys"] += ["raw/log_data/2018/11/01/00/part-0.json", "raw/log_data/2018/11/01/00/part-1.json",
                   "raw/log_data/2018/11/01/05/part-0.json"]
    reads = 0
    if queue:  # a listing an hour ago; notifications of a new file and of one staged as it is
        import boto3

        from tools.moto_server import CREDENTIALS

        arguments = {**arguments, "catalog_queue": queue}
        sqs = boto3.client("sqs", endpoint_url=queue.split("/1234")[0], **CREDENTIALS)
        known, new = "song_data/A/A/A/TRAAAAA128F429D538.json", "song_data/A/A/B/TRAABBB128F429D538.json"
        for key in (known, new):
            sqs.send_message(QueueUrl=queue, MessageBody=s3_notification("sparkify-bucket", f"raw/{key}",
                                                                         etag(f"raw/{key}")))
        connection.results += [[(datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1),)],
                               [(known, etag(f"raw/{known}"), None, None, None, "earlier", None)]]
        reads = 1
    elif arguments.get("catalog_key"):
        known = "song_data/A/A/A/TRAAAAA128F429D538.json"
        connection.results.append([(known, etag(f"raw/{known}"), None, None, None, "earlier", None)])
    elif arguments.get("retention_hours"):  # the day file, staged in an older version
        day = "log_data/2018/11/2018-11-01-events.json"
        connection.results += [
            [(day, "an-older-etag", 1541030400000, 1541036000000, None, "earlier", 12)],
            [(0,)],  # no record rejected
            [(day, 1541030400000, 1541116799000)],  # what the new version covers
            [("log_data/2018/10/2018-10-01-events.json", 1538352000000, 1538438399000)],  # unused for long
        ]
    else:
        connection.results += [[], [(0,)]]
    StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, **arguments).execute(
        run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00", hours=hours)
    )
    assert_transaction_safe(connection, reads)
    return "".join(stable_temp_names(statement.strip()) + ";\n\n" for statement in connection.statements)


@pytest.mark.parametrize("case", sorted(CASES))
def test_staging_sends_the_golden_statements(redshift, s3, case, request):
    arguments, hours = CASES[case]
    queue = request.getfixturevalue("sqs_queue") if arguments.get("catalog_queue") else None
    sent = staging_transaction(redshift, s3, arguments, hours, queue)
    golden = GOLDEN_DIR / f"{case}.sql"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(sent)
    assert golden.exists(), f"{golden} is missing: regenerate with UPDATE_GOLDEN=1 (see the module docstring)"
    assert sent == golden.read_text(), f"{case}: the SQL sent differs from {golden.name} (UPDATE_GOLDEN=1 to accept)"


def test_every_golden_file_has_a_case():
    """A golden file whose case was removed would never be checked again."""
    assert sorted(path.stem for path in GOLDEN_DIR.glob("*.sql")) == sorted(CASES)
