"""Golden files: the exact staging transaction the operator sends on Redshift, COPY text included.

One file per representative case in tests/sql/golden/. A change to the SQL templates or to the
operator that alters what Redshift receives fails here until the golden files are regenerated
and the diff reviewed:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/sql/test_copy_golden.py
"""

from __future__ import annotations

import json
import os
import re
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
from tests.support.warehouse_state import AnsweringConnection, AnsweringDataApi, WarehouseState, serve_data_api

GOLDEN_DIR = Path(__file__).parent / "golden"
#: The hour as the warehouse stores times (naive UTC).
NAIVE_HOUR = HOUR.replace(tzinfo=None)
EVENTS = {"table": "staging_events", "jsonpaths": "jsonpaths/log_events.json", "time_field": "ts",
          "jsonpaths_uri": f"{SOURCE}/jsonpaths/log_events.json", "manifest_prefix": "s3://sparkify-work/manifests"}
HOURLY = {**EVENTS, "s3_key": "log_data/%Y/%m/%d/%H/"}
SONGS = {"table": "staging_songs", "jsonpaths": "jsonpaths/song_data.json",
         "jsonpaths_uri": f"{SOURCE}/jsonpaths/song_data.json"}

CASES = {
    # The public layout: the day file (a unit of its own) rewritten since it was staged (the unit's old rows
    # go first, in its transaction), an hourly run, the bucket in another region, and the retention of a unit
    # no run listed for long, in the run's bookkeeping.
    "events_daily_key": ({**EVENTS, "s3_key": "log_data/%Y/%m/%Y-%m-%d-events.json", "region": "us-west-2",
                          "retention_hours": "72", "lookback_hours": "24"}, 1),
    # The hourly layout over a day's run: each hour prefix one manifest COPY, in a transaction of its own, its
    # rows tagged with the prefix; same region.
    "events_hourly_prefixes": ({**EVENTS, "s3_key": "log_data/%Y/%m/%d/%H/"}, 24),
    # An on-time hourly run of a Firehose hour: its gzip objects in one COPY (GZIP, MANIFEST), max_errors 5 (the
    # COPY's rejected records kept), the 24-hour look-back listed and unchanged.
    "events_hourly_gzip": ({**HOURLY, "lookback_hours": "24", "max_errors": "5"}, 1),
    # The run of 01:00 meets a late second part of hour 00, which a run has loaded: the whole hour prefix is
    # forgotten and copied again, and hour 00 restated, in the unit's transaction.
    "events_unit_restated": ({**HOURLY, "lookback_hours": "24"}, 1),
    # New or changed song files only, through a manifest, and the record of what was staged.
    "songs_manifest": ({**SONGS, "s3_key": "song_data/", "catalog_key": "song_id", "region": "us-west-2",
                        "manifest_prefix": "s3://sparkify-work/manifests"}, 1),
    # The catalog from the bucket's notifications (catalog_queue: the queue is filled by the test): a
    # read of the last full listing, then of the named files' records only, and a manifest of the new one.
    "songs_notifications": ({**SONGS, "s3_key": "song_data/", "catalog_key": "song_id", "region": "us-west-2",
                             "manifest_prefix": "s3://sparkify-work/manifests", "catalog_queue": True}, 1),
}


def staging_transaction(connection, s3, arguments: dict, hours: int, queue: str | None = None,
                        case: str = "", start: datetime = HOUR) -> str:
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
    else:
        prepare_events(connection.state, s3, case)
        if case == "events_unit_restated":
            start = HOUR + timedelta(hours=1)
    StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, **arguments).execute(
        run_context(start, "scheduled__2018-11-01T00:00:00+00:00", hours=hours)
    )
    if arguments.get("time_field"):  # by unit: the read, a transaction per unit, the run's bookkeeping
        assert connection.rollbacks == 0
        assert not any(s.upper().startswith(("TRUNCATE", "COMMIT", "BEGIN")) for s in connection.statements)
    else:
        assert_transaction_safe(connection, reads)
    sent = "".join(stable_temp_names(statement.strip()) + ";\n\n" for statement in connection.statements)
    if not arguments.get("time_field"):
        return sent
    # What each unit's COPY reads: its manifest, named by the unit and a digest of its batch.
    return sent + "".join(f"-- {uri}:\n-- {text}\n" for uri, text in s3["written"].items() if uri.endswith(".manifest"))


def prepare_events(state, s3, case: str) -> None:
    """The warehouse and bucket an events case meets (the state the recording connection answers from)."""
    if case == "events_daily_key":  # the day file, staged in an older version; October's, unused for long
        day = "log_data/2018/11/2018-11-01-events.json"
        state.record(day, "an-older-etag", 1541030400000, 1541036000000)
        state.expired.append(("log_data/2018/10/2018-10-01-events.json", 1538352000000, 1538438399000))
    elif case == "events_hourly_gzip":  # hour 00 is three gzip objects; the 24 hours before are staged
        s3["keys"][-3:] = [f"raw/log_data/2018/11/01/00/part-{n}.json.gz" for n in range(3)]
        state.loaded.append((NAIVE_HOUR - timedelta(hours=24), NAIVE_HOUR))
    elif case == "events_unit_restated":  # part-0 of hour 00 staged and its hour loaded; part-1 is new
        state.record("log_data/2018/11/01/00/part-0.json", etag("raw/log_data/2018/11/01/00/part-0.json"),
                     1541030460000, 1541033400000)
        state.record("log_data/2018/11/01/05/part-0.json", etag("raw/log_data/2018/11/01/05/part-0.json"),
                     1541048400000, 1541050200000)
        state.loaded.append((NAIVE_HOUR, NAIVE_HOUR + timedelta(hours=1)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_staging_sends_the_golden_statements(redshift, s3, case, request, monkeypatch):
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    connection = AnsweringConnection(WarehouseState())
    connection.results = redshift.results
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: connection)
    arguments, hours = CASES[case]
    queue = request.getfixturevalue("sqs_queue") if arguments.get("catalog_queue") else None
    sent = staging_transaction(connection, s3, arguments, hours, queue, case)
    golden = GOLDEN_DIR / f"{case}.sql"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(sent)
    assert golden.exists(), f"{golden} is missing: regenerate with UPDATE_GOLDEN=1 (see the module docstring)"
    assert sent == golden.read_text(), f"{case}: the SQL sent differs from {golden.name} (UPDATE_GOLDEN=1 to accept)"


#: Values that change from run to run (the clock), replaced in the Data API golden file.
_NOW = {"recorded_at", "staged_at", "used_at", "purge_before"}


def _shown(name: str, value: str) -> str:
    return "<now>" if re.sub(r"_[0-9]+$", "", name) in _NOW else json.dumps(value)


def data_api_requests(service) -> str:
    """The Data API requests as the golden file shows them: each statement (a batch's one per line, under its
    StatementName), with its parameters, temporary table names made stable and the clock's values replaced."""
    text = []
    for name, request in service.calls:
        if name == "ListStatements":
            text.append(f"-- ListStatements {request['StatementName']}\n")
        elif name in ("ExecuteStatement", "BatchExecuteStatement"):
            parameters = ", ".join(f"{entry['name']}={_shown(entry['name'], entry['value'])}"
                                   for entry in request.get("Parameters", []))
            text.append(" ".join(["--", name, *filter(None, [request.get("StatementName")])]) + "\n")
            text.append(f"-- parameters: {parameters}\n")
            text += [stable_temp_names(sql.strip()) + ";\n" for sql in request.get("Sqls", [request.get("Sql")])]
        text.append("\n" if name != "DescribeStatement" and name != "GetStatementResult" else "")
    return "".join(text)


def test_the_data_api_sends_the_golden_batches(monkeypatch, s3):
    """The first run of 01:00 on the hourly layout through the Data API: two reads ahead (what is staged, and
    no hour loaded), then for each hour prefix a look for a batch of its name and the batch, then the run's
    bookkeeping batch, after its read of the hours restated."""
    service = serve_data_api(monkeypatch, AnsweringDataApi(WarehouseState()))
    s3["keys"] += ["raw/log_data/2018/11/01/00/part-0.json.gz", "raw/log_data/2018/11/01/00/part-1.json.gz",
                   "raw/log_data/2018/11/01/01/part-0.json.gz"]
    StageToRedshiftOperator(task_id="stage", source=SOURCE, iam_role=IAM_ROLE, lookback_hours="24", **HOURLY).execute(
        run_context(HOUR + timedelta(hours=1), "scheduled__2018-11-01T01:00:00+00:00"))
    sent = data_api_requests(service)
    golden = GOLDEN_DIR / "events_data_api_first_run.sql"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(sent)
    assert golden.exists(), f"{golden} is missing: regenerate with UPDATE_GOLDEN=1 (see the module docstring)"
    assert sent == golden.read_text(), f"the Data API requests differ from {golden.name} (UPDATE_GOLDEN=1 to accept)"


def test_every_golden_file_has_a_case():
    """A golden file whose case was removed would never be checked again."""
    assert sorted(path.stem for path in GOLDEN_DIR.glob("*.sql")) == sorted([*CASES, "events_data_api_first_run"])
