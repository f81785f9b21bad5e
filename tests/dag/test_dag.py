"""DAG integrity: the folder parses, and sparkify_dwh has the tasks, edges and settings it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import jinja2
import pendulum
import pytest
from airflow import plugins_manager
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

from sparkify.timetables import LogicalDateIntervalTimetable
from tests.support.paths import REPO

EDGES = {
    "begin": {"create_tables"},
    "create_tables": {"wait_for_events", "stage_songs"},
    "wait_for_events": {"stage_events"},
    "stage_events": {"load_songplays"},
    "stage_songs": {"load_songplays"},
    "load_songplays": {"load_users", "load_songs", "load_artists", "load_time", "match_late_songs"},
    "match_late_songs": {"run_quality_checks"},
    "load_users": {"run_quality_checks"},
    "load_songs": {"run_quality_checks"},
    "load_artists": {"run_quality_checks"},
    "load_time": {"run_quality_checks"},
    "run_quality_checks": {"end"},
    "end": set(),
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(REPO / "dags"))


@pytest.fixture(scope="module", params=["sparkify_dwh", "sparkify_dwh_daily"])
def dag(dagbag, request):
    return dagbag.dags[request.param]


def test_dag_folder_imports_cleanly(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"sparkify_dwh", "sparkify_dwh_daily"}


@pytest.mark.parametrize("task_id", sorted(EDGES))
def test_task_edges(dag, task_id):
    assert dag.get_task(task_id).downstream_task_ids == EDGES[task_id]


@pytest.mark.parametrize(("dag_id", "length", "max_active_runs"), [
    ("sparkify_dwh", timedelta(hours=1), 4),
    ("sparkify_dwh_daily", timedelta(days=1), 2),
])
def test_schedule_is_a_utc_data_interval(dagbag, dag_id, length, max_active_runs):
    dag = dagbag.dags[dag_id]
    assert isinstance(dag.timetable, LogicalDateIntervalTimetable)
    midnight = pendulum.datetime(2018, 11, 2, tz="UTC")
    interval = dag.timetable.infer_manual_data_interval(run_after=midnight)
    assert (interval.start, interval.end) == (midnight, midnight + length)
    assert dag.start_date == datetime(2018, 11, 1, tzinfo=timezone.utc)
    assert dag.catchup is False
    assert dag.max_active_runs == max_active_runs


def test_the_serialized_dag_keeps_its_timetable_through_the_plugin(dag):
    """What the DAG processor stores and the scheduler and API server load back: the custom
    timetable only deserializes because ``plugins/sparkify_plugin.py`` registers it."""
    assert plugins_manager.get_timetables_plugins() == {
        "sparkify.timetables.LogicalDateIntervalTimetable": LogicalDateIntervalTimetable,
    }
    assert plugins_manager.get_import_errors() == {}
    data = DagSerialization.to_dict(dag)
    assert data["dag"]["timetable"]["__type"] == "sparkify.timetables.LogicalDateIntervalTimetable"
    loaded = DagSerialization.from_dict(data)
    assert type(loaded.timetable) is LogicalDateIntervalTimetable
    assert (loaded.timetable.summary, loaded.timetable.description) == (dag.timetable.summary,
                                                                        dag.timetable.description)
    half_past = pendulum.datetime(2018, 11, 1, 15, 30, tz="UTC")
    assert loaded.timetable.infer_manual_data_interval(run_after=half_past) == (
        dag.timetable.infer_manual_data_interval(run_after=half_past)
    )
    interval = loaded.timetable.infer_manual_data_interval(run_after=half_past)
    assert interval.start <= half_past < interval.end


def test_the_daily_variant_is_for_backfills_and_starts_paused(dagbag):
    assert dagbag.dags["sparkify_dwh_daily"].is_paused_upon_creation is True
    assert not dagbag.dags["sparkify_dwh"].is_paused_upon_creation


@pytest.mark.parametrize("task_id", sorted(set(EDGES) - {"wait_for_events"}))
def test_default_args_reach_every_task(dag, task_id):
    task = dag.get_task(task_id)
    assert (task.retries, task.retry_delay, task.execution_timeout, task.depends_on_past, task.email_on_retry) == (
        3, timedelta(minutes=5), timedelta(hours=1), False, False,
    )
    assert task.owner == "sparkify"


def test_the_wait_for_events_frees_its_worker_slot_between_looks_and_never_retries(dag):
    """Its wait is its own (sparkify_objects_wait_seconds); a retry would only wait again."""
    sensor = dag.get_task("wait_for_events")
    assert (sensor.mode, sensor.retries, sensor.poke_interval) == ("reschedule", 0, 300)
    assert sensor.policy == "{{ var.value.get('sparkify_missing_objects', 'fail') }}"


def test_the_trigger_form_offers_a_full_restage_that_scheduled_runs_leave_off(dag):
    param = dag.params.get_param("full_restage_songs")
    assert param.value is False and param.schema["type"] == "boolean"
    assert dag.get_task("stage_songs").restage == "{{ params.full_restage_songs }}"


def test_documented_and_tagged(dag):
    assert "data interval" in dag.doc_md
    assert {"sparkify", "warehouse"} <= set(dag.tags)


def test_every_sql_file_a_task_names_was_found(dag):
    """Parsing replaces a top-level ``.sql`` name by the file's text (a name left as it
    is was not found); check files nested in a list are read when the task renders."""
    loaded = [dag.get_task("create_tables").sql]
    loaded += [dag.get_task(task_id).sql for task_id in EDGES if task_id.startswith(("load_", "match_"))]
    assert len(loaded) == 7
    for text in loaded:
        assert text.startswith("-- "), text
    checks = dag.get_task("run_quality_checks").checks
    assert len(checks) == 4
    for check in checks:
        assert (REPO / "include" / "sql" / check["sql"]).is_file(), check


@pytest.mark.parametrize("dag_id", ["sparkify_dwh", "sparkify_dwh_daily"])
def test_a_name_a_template_does_not_know_fails_instead_of_rendering_as_nothing(dagbag, dag_id):
    environment = dagbag.dags[dag_id].get_template_env()
    assert environment.from_string("{{ var.value.get('sparkify_source', '') }}").render(
        var={"value": {"get": lambda name, default: default}}) == ""
    with pytest.raises(jinja2.UndefinedError, match="'data_intervl_start' is undefined"):
        environment.from_string("{{ data_intervl_start }}").render()


def test_parsing_the_dag_file_imports_nothing_heavy():
    """The DAG processor parses the file again and again: the staging machinery (Arrow, pgpq, numpy),
    the drivers and the AWS SDK load when a task runs, not when the file is parsed."""
    heavy = ["pyarrow", "pgpq", "numpy", "psycopg", "boto3", "redshift_connector", "sparkify.staging.binary_copy"]
    # The child's path as the DAG processor has it: plugins/ first, as Airflow puts it there.
    script = (
        "import runpy, sys; sys.path.insert(0, sys.argv[1]); runpy.run_path(sys.argv[2]);"
        f"print(','.join(name for name in {heavy!r} if name in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "plugins"), str(REPO / "dags" / "sparkify_dwh.py")],
        capture_output=True, text=True, check=True, env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
    ).stdout.strip().splitlines()[-1:]
    assert loaded in ([], [""])
