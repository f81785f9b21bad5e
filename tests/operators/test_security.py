"""Production credentials stay secret, and run input never becomes SQL.

- With access keys instead of an IAM role, the keys reach the COPY sent to Redshift and
  nothing else: not the logs (at debug level), the XCom, the rendered template fields, or
  an error that quotes the failed statement.
- Every value a user can set (trigger params, Variables rendered into templated fields,
  operator arguments) is validated or bound: an injection attempt fails cleanly and the
  warehouse is untouched.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from datetime import datetime, timezone

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from tests.support.inputs import DAY_KEY, HOUR, event, write_lines
from tests.support.operator_runs import rows
from tests.support.redshift_recording import SOURCE, RecordingCursor
from tests.support.tasks import run_context, sql_file
from tests.support.warehouse_state import AnsweringDataApi, WarehouseState, serve_data_api

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE//////////wEaDEXAMPLETOKEN"


@pytest.fixture
def aws_keys(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
        "extra": {"aws_session_token": SESSION_TOKEN, "region_name": "us-west-2"},
    }))


def keyed_staging() -> StageToRedshiftOperator:
    return StageToRedshiftOperator(
        task_id="stage", table="staging_events", source=SOURCE, s3_key="log_data/2018/11/2018-11-01-events.json",
        jsonpaths="jsonpaths/log_events.json", time_field="ts", jsonpaths_uri=f"{SOURCE}/jsonpaths/log_events.json",
        region="us-west-2", manifest_prefix="s3://sparkify-work/manifests",
    )


def assert_no_secret(text: str) -> None:
    assert SECRET_KEY not in text and SESSION_TOKEN not in text


def test_access_keys_reach_the_copy_and_nothing_else(redshift, s3, aws_keys, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    operator = keyed_staging()
    result = operator.execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00"))
    copy = next(statement for statement in redshift.statements if statement.startswith('COPY "incoming'))
    assert f"ACCESS_KEY_ID '{ACCESS_KEY}'" in copy and f"SECRET_ACCESS_KEY '{SECRET_KEY}'" in copy
    assert f"SESSION_TOKEN '{SESSION_TOKEN}'" in copy and "IAM_ROLE" not in copy
    assert "Running: COPY" in caplog.text  # the statements were logged, masked
    output = capsys.readouterr()
    assert_no_secret(caplog.text + output.out + output.err)
    assert_no_secret(json.dumps(result, default=str))
    assert_no_secret(repr({field: getattr(operator, field) for field in operator.template_fields}))


def test_an_error_quoting_the_copy_does_not_carry_the_keys(redshift, s3, aws_keys, monkeypatch):
    original = RecordingCursor.execute

    def failing(self, statement, parameters=None):
        original(self, statement, parameters)
        if statement.startswith('COPY "incoming'):
            raise RuntimeError(f"syntax error at or near FORMAT in statement: {statement}")

    monkeypatch.setattr(RecordingCursor, "execute", failing)
    with pytest.raises(AirflowFailException) as failure:
        keyed_staging().execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00"))
    text = "".join(traceback.format_exception(failure.value))
    assert "Redshift COPY failed: syntax error" in text and "SECRET_ACCESS_KEY '***'" in text
    assert_no_secret(text)
    assert redshift.commits == 1  # the read of what is staged; the unit rolled back


def test_a_data_api_batch_whose_error_quotes_the_copy_does_not_carry_the_keys(s3, aws_keys, monkeypatch, caplog):
    """The provider hook's error quotes a failed batch's description whole (its statements included, a COPY's
    keys with them): the task fails with Redshift's error alone, the keys masked."""
    caplog.set_level(logging.DEBUG)
    service = serve_data_api(monkeypatch, AnsweringDataApi(WarehouseState()))
    aws = os.environ["AIRFLOW_CONN_AWS_DEFAULT"]
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        **json.loads(aws), "login": ACCESS_KEY, "password": SECRET_KEY,
        "extra": {"aws_session_token": SESSION_TOKEN, "region_name": "us-west-2"}}))
    service.failing = lambda sqls: any(sql.startswith("COPY") for sql in sqls)
    service.error = f"ERROR: syntax error at or near FORMAT in COPY ... SECRET_ACCESS_KEY '{SECRET_KEY}' ..."
    with pytest.raises(AirflowFailException) as failure:
        keyed_staging().execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00"))
    text = "".join(traceback.format_exception(failure.value))
    assert "Redshift COPY failed: Data API statement" in text and "SECRET_ACCESS_KEY '***'" in text
    assert_no_secret(text + caplog.text)
    (batch,) = service.batches()
    assert f"SECRET_ACCESS_KEY '{SECRET_KEY}'" in " ".join(batch["Sqls"])  # it reached the COPY, and only it


def test_with_an_iam_role_no_key_is_read(redshift, s3, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    operator = keyed_staging()
    operator.iam_role = "arn:aws:iam::123456789012:role/sparkify-copy"
    operator.execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00"))
    assert not any("ACCESS_KEY_ID" in statement for statement in redshift.statements)


# Injection through every user-facing value, against a real PostgreSQL.

INJECTIONS = ['x"; DROP TABLE songplays; --', "x'); DROP TABLE songplays; --", "1; DROP TABLE songplays"]


def staging(bucket, **overrides) -> StageToRedshiftOperator:
    arguments = {"task_id": "stage_events", "table": "staging_events", "source": bucket.as_uri(), "s3_key": DAY_KEY,
                 "jsonpaths": "jsonpaths/log_events.json", "time_field": "ts", **overrides}
    return StageToRedshiftOperator(**arguments)


def songs_staging(bucket, **overrides) -> StageToRedshiftOperator:
    return staging(bucket, table="staging_songs", s3_key="song_data/", jsonpaths="jsonpaths/song_data.json",
                   time_field=None, catalog_key="song_id", **overrides)


IDENTIFIER = "not a valid SQL identifier"
USER_FACING = {
    # field: (the operator with the value in that field, what refuses it; None: taken as data)
    "table": (lambda bucket, value: staging(bucket, table=value), IDENTIFIER),
    "source": (lambda bucket, value: staging(bucket, source=f"file:///{value}"), "source folder does not exist"),
    "s3_key": (lambda bucket, value: staging(bucket, s3_key=value), None),
    "max_errors": (lambda bucket, value: staging(bucket, max_errors=value), "max_errors must be a whole number"),
    "spill_hours": (lambda bucket, value: staging(bucket, spill_hours=value), "spill_hours must be a whole number"),
    "full_restage_songs": (lambda bucket, value: songs_staging(bucket, restage=value), "restage must be true or false"),
    "fact table": (lambda bucket, value: LoadFactOperator(
        task_id="f", table=value, sql=sql_file("load/songplays.sql"), parameters={"duration_tolerance": 0.5}),
        IDENTIFIER),
    "late song look-back": (lambda bucket, value: LoadFactOperator(
        task_id="f", table="songplays", sql=sql_file("load/songplays_late_songs.sql"), mode="update",
        parameters={"duration_tolerance": 0.5, "lookback_hours": value}), "invalid input syntax for type bigint"),
    "dimension table": (lambda bucket, value: LoadDimensionOperator(
        task_id="d", table=value, sql=sql_file("load/users.sql"), mode="upsert", key="user_id"), IDENTIFIER),
    "dimension key": (lambda bucket, value: LoadDimensionOperator(
        task_id="d", table="users", sql=sql_file("load/users.sql"), mode="upsert", key=value), IDENTIFIER),
    "check parameter": (lambda bucket, value: DataQualityOperator(task_id="q", checks=[
        {"name": "canary", "sql": "SELECT %(label)s, COUNT(*) FROM songplays", "expected": 1}],
        parameters={"label": value}), None),
}


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("field", USER_FACING)
def test_an_injection_through_any_user_facing_value_is_refused_or_bound(warehouse, tmp_path, field, payload):
    write_lines(tmp_path / DAY_KEY, [event(10, item=1)])
    warehouse.execute("INSERT INTO songplays (songplay_id, start_time) VALUES ('canary', %s)",
                      (datetime(2018, 11, 1, tzinfo=timezone.utc).replace(tzinfo=None),))
    build, refusal = USER_FACING[field]
    if refusal is None:
        build(tmp_path, payload).execute(run_context(HOUR, "run_1"))
    else:
        with pytest.raises(Exception, match=refusal):
            build(tmp_path, payload).execute(run_context(HOUR, "run_1"))
    assert rows(warehouse, "SELECT songplay_id FROM songplays") == [("canary",)]
