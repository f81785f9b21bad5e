"""Late, rewritten, corrected and deleted objects, on the real DAG and a real PostgreSQL: every
hour ends equal to the independent reference computed from the bucket as it is at the end.

Runs go through `make backfill` hour by hour (``--hourly``), as the schedule makes them; the
bucket is changed between them as a producer would: a day file landing after its first hours
ran, rewritten while its day goes on, corrected, an hour's second part landing late, a part
deleted.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from tests.support.dag_runner import finish_runner, runner_results, start_runner
from tests.support.reference import build_reference
from tests.support.warehouse_checks import assert_exact, backfill
from tools import local_pg
from tools.generate_data import generate

DAY = datetime(2018, 11, 15, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
#: Hours before the objects land run empty instead of failing, as a producer that is late makes them.
EMPTY_HOURS = {"AIRFLOW_VAR_SPARKIFY_MISSING_OBJECTS": "empty"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """One generated day in the public daily layout, and the next day's file."""
    folder = tmp_path_factory.mktemp("generated")
    generate(folder, DAY, DAY + timedelta(days=2), events_per_day=300, songs=100, users=12, seed=15)
    return folder


@pytest.fixture
def bucket(generated, tmp_path) -> Path:
    folder = tmp_path / "bucket"
    shutil.copytree(generated, folder)
    return folder


def day_file(bucket: Path, day: datetime = DAY) -> Path:
    return bucket / f"log_data/{day:%Y/%m/%Y-%m-%d}-events.json"


def events(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def rewrite(path: Path, lines: list[str]) -> None:
    """Write an object anew, as a producer does: its version (size, modification time) changes."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    stat = path.stat()
    if stat.st_mtime_ns <= before:  # a coarse clock: make the rewrite visible all the same
        os.utime(path, ns=(stat.st_atime_ns, before + 1_000_000))


def before(lines: list[str], hour: int) -> list[str]:
    """The lines of events earlier than ``hour`` of DAY: what a day file holds at that time."""
    cut = int((DAY + hour * HOUR).timestamp() * 1000)
    return [line for line in lines if json.loads(line)["ts"] < cut]


def hourly(bucket: Path, warehouse: str, first: int, last: int, env: dict | None = None):
    """`make backfill` of the hours first..last of DAY, each as its own hourly run."""
    return backfill(bucket, warehouse, DAY + first * HOUR, DAY + (last + 1) * HOUR, "--hourly", env=env)


def reference(bucket: Path, first: int, last: int):
    return build_reference(bucket, DAY + first * HOUR, DAY + (last + 1) * HOUR)


def rows(uri: str, query: str, *parameters) -> list[tuple]:
    with psycopg.connect(uri) as connection:
        return connection.execute(query, parameters).fetchall()


def staged_versions(uri: str) -> int:
    """How many event object versions staging has copied in, over every run."""
    return rows(uri, "SELECT COALESCE(SUM(object_count), 0) FROM load_audit WHERE task_id = 'stage_events'")[0][0]


def test_a_day_file_landing_after_its_first_hours_ran_restates_them(bucket, warehouse_uri, tmp_path):
    held = tmp_path / "held"
    shutil.move(day_file(bucket), held)
    hourly(bucket, warehouse_uri, 0, 5, env=EMPTY_HOURS)
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM songplays") == [(0,)]
    shutil.move(held, day_file(bucket))
    result = hourly(bucket, warehouse_uri, 6, 6)
    assert_exact(warehouse_uri, reference(bucket, 0, 6))
    restated = rows(warehouse_uri, "SELECT object_uri, change, hours_start, hours_end FROM restatements")
    assert restated == [(day_file(bucket).as_uri(), "late", datetime(2018, 11, 15, 0), datetime(2018, 11, 15, 6))]
    log = Path(result.stdout.split("logs: ", 1)[1].split()[0]).read_text()
    assert f"late object {day_file(bucket).as_uri()}: restating 2018-11-15 00:00–2018-11-15 06:00" in log


def test_a_correction_beyond_the_look_back_is_made_exact_by_a_backfill_of_its_hours(bucket, warehouse_uri):
    short = {"AIRFLOW_VAR_SPARKIFY_RESTATE_LOOKBACK_HOURS": "2"}
    next_day = DAY + timedelta(days=1)
    backfill(bucket, warehouse_uri, DAY, DAY + 24 * HOUR)  # the day, as one daily run
    backfill(bucket, warehouse_uri, next_day, next_day + 5 * HOUR, "--hourly", env=short)
    lines = events(day_file(bucket))
    play = next(index for index, line in enumerate(lines) if json.loads(line)["page"] == "NextSong")
    rewrite(day_file(bucket), lines[:play] + lines[play + 1:])
    # 05:00 of the next day lists 02:00-07:00 (look-back and spill): not the corrected day file.
    backfill(bucket, warehouse_uri, next_day + 5 * HOUR, next_day + 6 * HOUR, "--hourly", env=short)
    withdrawn = json.loads(lines[play])["ts"]
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM songplays WHERE songplay_id LIKE %s", f"{withdrawn}-%") \
        == [(1,)], "a run whose look-back does not reach the corrected file leaves its hours alone"
    hour = datetime.fromtimestamp(withdrawn / 1000, timezone.utc).hour
    hourly(bucket, warehouse_uri, hour, hour, env=short)
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM songplays WHERE songplay_id LIKE %s", f"{withdrawn}-%") == [(0,)]
    assert_exact(warehouse_uri, build_reference(bucket, DAY, next_day + 6 * HOUR))


def test_a_day_file_rewritten_three_times_under_the_hourly_schedule(bucket, warehouse_uri):
    """Each version is staged once (not once per hour), and every hour ends exact."""
    path = day_file(bucket)
    full = events(path)
    rewrite(path, before(full, 6))
    hourly(bucket, warehouse_uri, 0, 5)
    assert_exact(warehouse_uri, reference(bucket, 0, 5))
    rewrite(path, before(full, 12))
    hourly(bucket, warehouse_uri, 6, 11)
    rewrite(path, full)
    hourly(bucket, warehouse_uri, 12, 23)
    assert_exact(warehouse_uri, reference(bucket, 0, 23))
    # Three versions of the day file; the 00:00 run also met the previous day's (absent) and the
    # 23:00 run the next day's file through the spill hour.
    assert staged_versions(warehouse_uri) == 4
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM staging_events WHERE object_key LIKE %s",
                "%2018-11-15-events.json") == [(len(full),)]


def test_a_corrected_file_withdraws_a_play_and_moves_a_users_level(bucket, warehouse_uri):
    hourly(bucket, warehouse_uri, 20, 21)
    lines = events(day_file(bucket))
    records = [json.loads(line) for line in lines]
    loaded = range(int((DAY + 20 * HOUR).timestamp() * 1000), int((DAY + 22 * HOUR).timestamp() * 1000))
    # The latest event of the loaded hours, of a user seen there; and a play of those hours.
    latest = max((index for index, record in enumerate(records) if record["ts"] in loaded and record["userId"]),
                 key=lambda index: records[index]["ts"])
    user, level = records[latest]["userId"], records[latest]["level"]
    records[latest]["level"] = "free" if level == "paid" else "paid"
    play = next(index for index, record in enumerate(records)
                if record["page"] == "NextSong" and record["ts"] in loaded and index != latest)
    corrected = [json.dumps(record) for index, record in enumerate(records) if index != play]
    rewrite(day_file(bucket), corrected)
    hourly(bucket, warehouse_uri, 22, 22)
    assert_exact(warehouse_uri, reference(bucket, 20, 22))
    assert rows(warehouse_uri, "SELECT change, hours_start, hours_end FROM restatements") == [
        ("changed", datetime(2018, 11, 15, 20), datetime(2018, 11, 15, 22))]  # the hours loaded before
    if not any(record["userId"] == user for record in records if record["ts"] >= loaded.stop):
        assert rows(warehouse_uri, "SELECT level FROM users WHERE user_id = %s", user) == \
            [(records[latest]["level"],)]


def test_an_hours_second_part_landing_late_and_a_part_deleted(warehouse_uri, tmp_path):
    bucket = tmp_path / "bucket"
    generate(bucket, DAY, DAY + 6 * HOUR, events_per_day=600, songs=60, users=10, layout="hourly",
             files_per_hour=2, seed=21)
    hourly_layout = {"AIRFLOW_VAR_SPARKIFY_LOG_LAYOUT": "hourly", **EMPTY_HOURS}
    late = bucket / "log_data/2018/11/15/03/2018-11-15-03-events-1.json"
    held = tmp_path / "held.json"
    shutil.move(late, held)
    hourly(bucket, warehouse_uri, 0, 3, env=hourly_layout)
    shutil.move(held, late)
    hourly(bucket, warehouse_uri, 4, 4, env=hourly_layout)
    assert_exact(warehouse_uri, reference(bucket, 0, 4))
    (bucket / "log_data/2018/11/15/01/2018-11-15-01-events-0.json").unlink()
    hourly(bucket, warehouse_uri, 5, 5, env=hourly_layout)
    assert_exact(warehouse_uri, reference(bucket, 0, 5))
    assert rows(warehouse_uri, "SELECT change, hours_start FROM restatements ORDER BY recorded_at") == [
        ("late", datetime(2018, 11, 15, 3)), ("gone", datetime(2018, 11, 15, 1))]


def test_two_runs_meeting_the_same_late_object_at_once_stage_it_once(bucket, warehouse_uri, tmp_path):
    held = tmp_path / "held"
    shutil.move(day_file(bucket), held)
    hourly(bucket, warehouse_uri, 0, 3, env=EMPTY_HOURS)
    shutil.move(held, day_file(bucket))
    runners = [start_runner(bucket, warehouse_uri, (DAY + hour * HOUR).isoformat()) for hour in (4, 5)]
    for runner in runners:
        assert [result["state"] for result in finish_runner(runner)] == ["success"]
    assert_exact(warehouse_uri, reference(bucket, 0, 5))
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM staging_events") == [(len(events(day_file(bucket))),)]
    assert rows(warehouse_uri, "SELECT COUNT(*) FROM staged_objects WHERE table_name = 'staging_events'") == [(1,)]


def reschedules(run_id: str) -> int:
    """How often wait_for_events gave its worker slot back to wait (Airflow's task_reschedule records)."""
    with psycopg.connect(local_pg.database_uri("airflow")) as metadata:
        return metadata.execute(
            "SELECT COUNT(*) FROM task_reschedule AS r JOIN task_instance AS ti ON ti.id = r.ti_id "
            "WHERE ti.dag_id = 'sparkify_dwh' AND ti.task_id = 'wait_for_events' AND ti.run_id = %s", (run_id,),
        ).fetchone()[0]


@pytest.mark.parametrize(("policy", "state"), [("fail", "failed"), ("empty", "success")])
def test_a_run_near_real_time_waits_for_its_objects_then_follows_the_policy(bucket, warehouse_uri, policy, state):
    now = datetime.now(timezone.utc)
    last_hour = now.replace(minute=0, second=0, microsecond=0) - HOUR  # ended at the top of this hour
    # The wait ends 20 s from now: after the runner has started (a few seconds) and the sensor has looked once.
    wait = int((now - last_hour - HOUR).total_seconds()) + 20
    env = {"AIRFLOW_VAR_SPARKIFY_OBJECTS_WAIT_SECONDS": str(wait), "AIRFLOW_VAR_SPARKIFY_MISSING_OBJECTS": policy}
    (result,) = runner_results(start_runner(bucket, warehouse_uri, last_hour.isoformat(), env=env))
    assert result["state"] == state
    assert reschedules(result["run_id"]) >= 1, "the sensor waited holding its worker slot"
    if policy == "empty":
        assert rows(warehouse_uri, "SELECT source_objects FROM load_audit WHERE task_id = 'stage_events'")[0][
            0].startswith("no objects at ")


def test_a_backfill_of_an_old_hour_without_objects_does_not_wait(bucket, warehouse_uri):
    """The hour ended long ago: the policy applies at once (here: fail, naming the key looked for)."""
    day_file(bucket).unlink()
    command_env = {"AIRFLOW_VAR_SPARKIFY_OBJECTS_WAIT_SECONDS": "3600"}
    (result,) = runner_results(start_runner(bucket, warehouse_uri, (DAY + 3 * HOUR).isoformat(), env=command_env))
    assert result["state"] == "failed"
    assert reschedules(result["run_id"]) == 0
