"""Bad input on the PostgreSQL path, for real: every kind of bad record is named by object
and line, quarantined below ``max_errors`` and fails the run above it, with nothing of
the run committed; schema drift, duplicates and misfiled events have defined outcomes.
The same bytes give the rows Redshift's COPY with JSONPaths gives: objects over several
lines or several on one line, numbers for text and numbers written as text; a top-level
array is one bad record, and a record over the size limit fails its object.
(The Redshift path's MAXERROR, COPY options and quarantine SQL are in sql/test_redshift_sql.py.)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from airflow.sdk.exceptions import AirflowFailException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkify import StageToRedshiftOperator
from sparkify.staging.records import RAW_TEXT_KEPT
from tests.support.event_strategies import ANY_VALID_EVENT, FIELDS
from tests.support.inputs import DAY_KEY, HOUR, HOUR_MS, event, write_lines
from tests.support.operator_runs import load_songplays, rows
from tests.support.tasks import run_context

VALID = json.dumps(event(10, item=1)).encode()


def stage(bucket: Path, run_id: str = "run_1", key: str = DAY_KEY, start=HOUR, **kwargs) -> dict:
    operator = StageToRedshiftOperator(
        task_id="stage_events", table="staging_events", source=bucket.as_uri(), s3_key=key,
        jsonpaths="jsonpaths/log_events.json", time_field="ts", **kwargs,
    )
    return operator.execute(run_context(start, run_id))


def write_raw(bucket: Path, lines: list[bytes], key: str = DAY_KEY) -> None:
    path = bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines))


def with_field(**fields) -> bytes:
    record = event(20, item=2)
    record.update(fields)
    return json.dumps(record).encode()


def nothing_staged(warehouse) -> bool:
    return rows(warehouse, "SELECT (SELECT count(*) FROM staging_events) + (SELECT count(*) FROM quarantine)"
                           " + (SELECT count(*) FROM load_audit)") == [(0,)]


BAD_LINES = {
    "malformed": (b'{"artist": nul', r"not valid JSON"),
    "truncated": (VALID[: len(VALID) // 2], r"not valid JSON"),
    "not json at all": (b"timestamp=1541030594 user=39 page=NextSong", r"not valid JSON"),
    "invalid utf-8": (VALID.replace(b'"Song A"', b'"Song \xff\xfe"'), r"not valid JSON \(.*UTF-8"),
    "an array": (b'[1, 2, 3]', r"expected a JSON object, got an array of 3 values \(a top-level array is one record"),
    "a bare number": (b'42', r"expected a JSON object, got a number"),
    "text for a number": (with_field(itemInSession="three"),
                          r"field 'itemInSession': \"three\" is not a valid integer"),
    "a fraction written as text for an integer": (with_field(sessionId="7.5"),
                                                  r"field 'sessionId': \"7.5\" is not a valid integer"),
    "float for an integer": (with_field(ts=1541030410000.5), r"field 'ts': 1541030410000.5 is not a valid bigint"),
    "integer out of range": (with_field(sessionId=2**40), r"field 'sessionId': 1099511627776 is not a valid integer"),
    "boolean for a number": (with_field(status=True), r"field 'status': true is not a valid integer"),
    "boolean for text": (with_field(userId=True), r"field 'userId': true is not a valid character varying"),
    "text too long for its column": (with_field(gender="M" * 17), r"value too long for type character varying\(16\)"),
    "NUL character": (with_field(song="Night\u0000Song"), r"invalid byte sequence for encoding \"UTF8\": 0x00"),
}


@pytest.mark.parametrize("kind", BAD_LINES)
def test_a_bad_record_fails_the_run_naming_object_and_line_and_commits_nothing(warehouse, tmp_path, kind):
    line, reason = BAD_LINES[kind]
    write_raw(tmp_path, [VALID, VALID.replace(b'"itemInSession": 1', b'"itemInSession": 5'), line, VALID])
    with pytest.raises(AirflowFailException, match=rf"2018-11-01-events\.json line 3: {reason}"):
        stage(tmp_path)
    assert nothing_staged(warehouse)


@pytest.mark.parametrize("kind", BAD_LINES)
def test_below_max_errors_a_bad_record_is_quarantined_and_the_good_ones_staged(warehouse, tmp_path, kind):
    line, reason = BAD_LINES[kind]
    write_raw(tmp_path, [VALID, b"", line, with_field(itemInSession=7)])
    result = stage(tmp_path, max_errors=1)
    assert (result["rows_written"], result["rows_rejected"]) == (2, 1)
    assert rows(warehouse, "SELECT item_in_session FROM staging_events ORDER BY 1") == [(1,), (7,)]
    ((uri, number, error, raw),) = rows(warehouse, "SELECT object_uri, line_number, error, raw_line FROM quarantine"
                                                   " WHERE batch_id = 'run_1' AND table_name = 'staging_events'")
    assert (uri, number) == ((tmp_path / DAY_KEY).as_uri(), 3)
    assert re.search(reason, error)
    assert raw == line.decode("utf-8", errors="replace").replace("\x00", "\\u0000")
    assert rows(warehouse, "SELECT rows_rejected FROM load_audit WHERE task_id = 'stage_events'") == [(1,)]


def test_one_bad_record_more_than_max_errors_fails_the_run_and_a_retry_replaces_the_quarantine(warehouse, tmp_path):
    write_raw(tmp_path, [VALID, b"{", with_field(gender="X" * 40), b"]"])
    with pytest.raises(AirflowFailException, match=r"line 2: not valid JSON .*\(3 bad records, .* max_errors=2\)"):
        stage(tmp_path, max_errors=2)
    assert nothing_staged(warehouse)
    assert stage(tmp_path, max_errors="3")["rows_rejected"] == 3
    assert stage(tmp_path, max_errors="3")["object_count"] == 0  # a retry of the run: staged already
    assert rows(warehouse, "SELECT line_number FROM quarantine ORDER BY 1") == [(2,), (3,), (4,)]


def test_server_rejections_map_back_to_their_object_and_line_across_objects(warehouse, tmp_path):
    """Rows the server refuses are found by their place in the COPY stream: blank and rejected
    lines before them, and earlier objects, must not shift the line reported."""
    hour_key = "log_data/2018/11/01/00/"
    write_raw(tmp_path, [VALID, VALID], hour_key + "a.json")
    write_raw(tmp_path, [b"", b"{bad", VALID, b"", with_field(gender="too long for sixteen"), VALID,
                         with_field(song="\u0000")], hour_key + "b.json")
    result = stage(tmp_path, key=hour_key, max_errors=5)
    assert (result["rows_written"], result["rows_rejected"]) == (4, 3)
    assert rows(warehouse, "SELECT substr(object_uri, length(object_uri) - 5), line_number, left(error, 30)"
                           " FROM quarantine ORDER BY 2") == [
        ("b.json", 2, "not valid JSON (unexpected cha"),
        ("b.json", 5, "value too long for type charac"),
        ("b.json", 7, "invalid byte sequence for enco"),
    ]


def test_a_record_over_the_size_limit_is_rejected_with_its_size(warehouse, tmp_path):
    write_raw(tmp_path, [VALID, with_field(location="x" * 500)])
    with pytest.raises(AirflowFailException, match=r"line 2: record of \d+ bytes is over the limit of 500 "
                                                   r"\(Redshift's COPY fails on a JSON record over its limit"):
        stage(tmp_path, max_record_bytes=500, max_errors=5)  # whatever max_errors, as on Redshift


def test_an_empty_object_stages_nothing_and_succeeds(warehouse, tmp_path):
    write_raw(tmp_path, [])
    result = stage(tmp_path)
    assert (result["object_count"], result["rows_written"], result["rows_rejected"]) == (1, 0, 0)


def test_unknown_keys_are_ignored_and_counted_missing_keys_stage_as_null(warehouse, tmp_path):
    drifted = event(30, item=3, device="phone")  # as many keys as expected: one missing, one unknown
    del drifted["location"]
    write_lines(tmp_path / DAY_KEY, [event(10, item=1, mood="calm"), drifted])
    result = stage(tmp_path)
    assert result["ignored_keys"] == {"mood": 1, "device": 1}
    assert rows(warehouse, "SELECT item_in_session, location FROM staging_events ORDER BY 1") == [
        (1, "Somewhere, CA"), (3, None)]


@pytest.mark.parametrize(("ts", "reason"), [
    (None, "field 'ts' is missing: the record has no time"),
    (4102444800000, "field 'ts': 4102444800000 is outside the times this object may hold"),  # 2100
    (-1, "field 'ts': -1 is outside the times this object may hold"),
    (HOUR_MS + 4 * 86_400_000, "is outside the times this object may hold"),  # four days away from its file's day
], ids=["no ts", "in 2100", "negative", "four days away"])
def test_an_event_no_run_would_load_is_a_bad_record(warehouse, tmp_path, ts, reason):
    write_raw(tmp_path, [VALID, with_field(ts=ts)])
    pattern = "log_data/%Y/%m/%Y-%m-%d-events.json"  # names DAY_KEY: the object holds that day
    with pytest.raises(AirflowFailException, match=rf"line 2: .*{re.escape(reason)}"):
        stage(tmp_path, key=pattern)
    result = stage(tmp_path, key=pattern, max_errors=1)  # the run's retry, allowing one bad record
    assert (result["rows_written"], result["rows_rejected"]) == (1, 1)
    assert rows(warehouse, "SELECT line_number FROM quarantine") == [(2,)]


def test_a_duplicated_event_is_one_songplay(warehouse, tmp_path):
    play = event(20, item=1)
    write_lines(tmp_path / DAY_KEY, [play, play, event(30, item=2), play])
    stage(tmp_path)
    load_songplays()
    assert rows(warehouse, "SELECT count(*), count(DISTINCT songplay_id) FROM songplays") == [(2, 2)]


def test_an_event_filed_in_the_previous_days_file_loads_into_its_hour(warehouse, tmp_path):
    """The 00:00 run reads the day before's file too (spill_hours), so a play written to
    2018-11-01's file at 00:05 on 2018-11-02 is not lost; other hours do not read it."""
    next_day = HOUR + timedelta(days=1)
    write_lines(tmp_path / DAY_KEY, [event(10, item=1), event(86400 + 300, item=2, session=7)])
    write_lines(tmp_path / "log_data/2018/11/2018-11-02-events.json", [event(86400 + 600, item=3)])
    pattern = "log_data/%Y/%m/%Y-%m-%d-events.json"
    assert stage(tmp_path, run_id="next_day", key=pattern, start=next_day, spill_hours="1")["object_count"] == 2
    load_songplays(run_id="next_day", start=next_day)
    assert rows(warehouse, "SELECT session_id FROM songplays ORDER BY start_time") == [(7,), (1,)]
    later = next_day + timedelta(hours=5)
    assert stage(tmp_path, run_id="later", key=pattern, start=later, spill_hours="1")["object_count"] == 0


# The same bytes as Redshift's COPY with JSONPaths reads them (README "Bad input").

EVENTS = [event(10, item=1, song='Song "A" \u00e9'), event(20, item=2, user=""), event(30, item=3, mood="calm"),
          event(40, item=4)]


def staged_rows(warehouse) -> list[tuple]:
    return rows(warehouse, f"SELECT {_COLUMNS} FROM staging_events ORDER BY item_in_session")


LAYOUTS = {
    "pretty-printed": b"".join(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n" for record in EVENTS),
    "several on a line": orjson.dumps(EVENTS[0]) + b" " + orjson.dumps(EVENTS[1]) + b"\n" + b"".join(
        orjson.dumps(record) for record in EVENTS[2:]),
    "blank lines and CRLF": b"\r\n\r\n".join(orjson.dumps(record) for record in EVENTS) + b"\r\n",
    "indented, without a last newline": b"\n".join(b"  " + orjson.dumps(record) for record in EVENTS),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_objects_over_several_lines_or_several_on_a_line_stage_the_rows_of_one_a_line(warehouse, tmp_path, layout):
    write_lines(tmp_path / DAY_KEY, EVENTS)
    stage(tmp_path, run_id="one_a_line")
    expected = staged_rows(warehouse)
    warehouse.execute("DELETE FROM staging_events")
    write_raw(tmp_path, [LAYOUTS[layout]], key="log_data/2018/11/2018-11-01-events-2.json")
    result = stage(tmp_path, run_id=layout, key="log_data/2018/11/2018-11-01-events-2.json")
    assert (result["rows_written"], result["rows_rejected"], result["ignored_keys"]) == (4, 0, {"mood": 1})
    assert staged_rows(warehouse) == expected


def test_a_bad_record_over_several_lines_is_one_named_by_the_line_it_starts_on(warehouse, tmp_path):
    pretty = [orjson.dumps(record, option=orjson.OPT_INDENT_2) for record in EVENTS]
    broken = pretty[1].replace(b'"firstName"', b'"firstName" "oops"')  # a value without its key, on its 4th line
    write_raw(tmp_path, [pretty[0], broken, pretty[2] + b" " + orjson.dumps(EVENTS[3])[:-1], b""])
    starts = [1, pretty[0].count(b"\n") + 2, pretty[0].count(b"\n") + broken.count(b"\n") + 3]
    with pytest.raises(AirflowFailException, match=rf"events\.json line {starts[1]}: not valid JSON \(unexpected "):
        stage(tmp_path)
    assert nothing_staged(warehouse)
    result = stage(tmp_path, max_errors=2)
    assert (result["rows_written"], result["rows_rejected"]) == (2, 2)
    # The last record of the last line is cut short: named by that line, where it starts.
    assert rows(warehouse, "SELECT line_number, left(raw_line, 1) FROM quarantine ORDER BY 1") == [
        (starts[1], "{"), (starts[2] + pretty[2].count(b"\n"), "{")]


def test_values_load_as_copy_converts_them(warehouse, tmp_path):
    """Redshift's COPY reads each JSON value as the text of its field: a number for a text column loads as
    its text (an integer userId), an object as its JSON text, a number written as text loads into a
    number column, an empty string there is NULL."""
    write_raw(tmp_path, [
        b'{"ts": %d, "userId": 39, "itemInSession": "3", "length": "210.50", "sessionId": "", "status": 200,'
        b' "artist": {"name": "A", "id": [1, 2]}, "location": 1.50, "registration": -1.5e3}' % (HOUR_MS + 1000),
    ])
    assert stage(tmp_path)["rows_written"] == 1
    assert rows(warehouse, "SELECT user_id, item_in_session, length, session_id, status, artist, location, registration"
                           " FROM staging_events") == [("39", 3, 210.5, None, 200, '{"name":"A","id":[1,2]}', "1.50",
                                                        -1500.0)]


def test_a_top_level_array_is_one_bad_record_its_raw_text_cut_saying_so(warehouse, tmp_path):
    """A day written as one JSON array is one record for COPY (an array, not one row per element): a
    bad record on its first line, never its elements loaded one by one."""
    day = [event(seconds, item=number) for number, seconds in enumerate(range(0, 3600, 60))]
    array = orjson.dumps(day, option=orjson.OPT_INDENT_2)
    write_raw(tmp_path, [orjson.dumps(event(5, item=99)), array, orjson.dumps(event(6, item=98))])
    with pytest.raises(AirflowFailException, match=r"events\.json line 2: expected a JSON object, got an array "
                                                   r"of 60 values \(a top-level array is one record"):
        stage(tmp_path)
    assert stage(tmp_path, max_errors=1)["rows_written"] == 2
    ((line, raw),) = rows(warehouse, "SELECT line_number, raw_line FROM quarantine")
    assert line == 2 and len(array) > RAW_TEXT_KEPT
    assert raw == array[:RAW_TEXT_KEPT].decode() + f" … [cut: the first {RAW_TEXT_KEPT} of {len(array)} bytes]"


@pytest.mark.parametrize("layout", ["one line", "pretty-printed"])
def test_an_array_over_the_record_limit_fails_its_object_whatever_max_errors_and_is_set_aside(warehouse, tmp_path,
                                                                                                layout):
    day = [event(seconds, item=number) for number, seconds in enumerate(range(0, 3600, 10))]
    array = orjson.dumps(day, option=orjson.OPT_INDENT_2 if layout == "pretty-printed" else 0)
    write_raw(tmp_path, [orjson.dumps(event(5, item=99)), array])
    assert len(array) > 10 * 4096
    with pytest.raises(AirflowFailException, match=r"events\.json line 2: record of (more than )?\d+ bytes is over "
                                                   r"the limit of 4096 \(Redshift's COPY fails"):
        stage(tmp_path, max_record_bytes=4096, max_errors=100)
    assert nothing_staged(warehouse)
    assert rows(warehouse, "SELECT count(*) FROM staged_objects WHERE rejected_at IS NOT NULL") == [(1,)]


# Property-based: any valid event round-trips exactly; any invalid line is reported.

_COLUMNS = ("artist, auth, first_name, gender, item_in_session, last_name, length, level, location, method, page, "
            "registration, session_id, song, status, ts, user_agent, user_id")
_PROPERTIES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_PROPERTIES
@given(events=st.lists(ANY_VALID_EVENT, min_size=1, max_size=8), run=st.uuids())
def test_any_valid_event_round_trips_exactly(warehouse, tmp_path, events, run):
    write_raw(tmp_path, [orjson.dumps(record) for record in events])
    assert stage(tmp_path, run_id=str(run))["rows_written"] == len(events)
    staged = rows(warehouse, f"SELECT {_COLUMNS} FROM staging_events WHERE batch_id = '{run}'")
    # As multisets: a table has no order (vacuum may put new rows in old rows' place).
    assert Counter(staged) == Counter(tuple(record[field] for field in FIELDS) for record in events)


def _corrupt(line: bytes, how: str, cut: int) -> bytes:
    if how == "truncate":
        return line[: 1 + cut % (len(line) - 1)]
    if how == "bad utf-8":
        return line.replace(b'"page":', b'"p\xc3\x28ge":', 1)
    return line.replace(b'"status":', b'"status":"x","was":', 1)  # a string where a number belongs


@_PROPERTIES
@given(lines=st.lists(st.tuples(ANY_VALID_EVENT, st.sampled_from([None, "truncate", "bad utf-8", "wrong type"]),
                                st.integers(0, 10**6)), min_size=1, max_size=8),
       run=st.uuids())
def test_any_invalid_line_is_reported_never_dropped_or_half_loaded(warehouse, tmp_path, lines, run):
    raw = [orjson.dumps(record) if how is None else _corrupt(orjson.dumps(record), how, cut)
           for record, how, cut in lines]
    write_raw(tmp_path, raw)
    bad = [number for number, (_, how, _) in enumerate(lines, start=1) if how is not None]
    result = stage(tmp_path, run_id=str(run), max_errors=len(bad))
    assert (result["rows_written"], result["rows_rejected"]) == (len(lines) - len(bad), len(bad))
    quarantined = rows(warehouse, f"SELECT line_number FROM quarantine WHERE batch_id = '{run}' ORDER BY 1")
    assert [number for (number,) in quarantined] == bad
    if bad:  # the same lines in an object not staged yet, with one bad record fewer allowed
        strict = "log_data/2018/11/2018-11-02-events.json"
        write_raw(tmp_path, raw, strict)
        with pytest.raises(AirflowFailException, match=rf"line {bad[0]}: "):
            stage(tmp_path, run_id=f"{run}-strict", key=strict, max_errors=len(bad) - 1)
