"""Assets: the load tasks update the Assets of the star tables, and a DAG scheduled on them parses."""

from __future__ import annotations

import textwrap

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Asset
from airflow.serialization.serialized_objects import DagSerialization

from sparkify.lineage import STAR_SCHEMA_CHECKED, star_asset
from tests.support.paths import REPO

OUTLETS = {
    "load_songplays": [star_asset("songplays")],
    "match_late_songs": [star_asset("songplays")],
    "load_users": [star_asset("users")],
    "load_songs": [star_asset("songs")],
    "load_artists": [star_asset("artists")],
    "load_time": [star_asset("time")],
    "run_quality_checks": [STAR_SCHEMA_CHECKED],
}

DOWNSTREAM = '''
    """A report that runs once the warehouse has new songplays, and once it has a checked hour."""
    from datetime import datetime

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, Asset

    with DAG(
        dag_id="plays_report",
        schedule=Asset(name="sparkify.songplays", uri="x-sparkify://warehouse/songplays", group="sparkify"),
        start_date=datetime(2018, 11, 1),
    ):
        EmptyOperator(task_id="report")

    with DAG(
        dag_id="checked_report",
        schedule=[Asset.ref(name="sparkify.star_schema_checked")],
        start_date=datetime(2018, 11, 1),
    ):
        EmptyOperator(task_id="report")
'''


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(REPO / "dags"))


@pytest.mark.parametrize("dag_id", ["sparkify_dwh", "sparkify_dwh_daily"])
def test_each_task_that_writes_a_star_table_updates_its_asset(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    outlets = {task.task_id: task.outlets for task in dag.tasks if task.outlets}
    assert outlets == OUTLETS


def test_the_assets_survive_serialization(dagbag):
    """What the scheduler stores: the asset names and URIs downstream DAGs are matched on."""
    serialized = DagSerialization.to_dict(dagbag.dags["sparkify_dwh"])
    dumped = str(serialized)
    for table in ("songplays", "users", "songs", "artists", "time"):
        assert f"'name': 'sparkify.{table}', 'uri': 'x-sparkify://warehouse/{table}'" in dumped
    assert "'name': 'sparkify.star_schema_checked'" in dumped


def test_a_dag_scheduled_on_the_assets_parses(tmp_path):
    (tmp_path / "plays_report.py").write_text(textwrap.dedent(DOWNSTREAM))
    downstream = DagBag(dag_folder=str(tmp_path))
    assert downstream.import_errors == {}
    songplays_schedule = downstream.dags["plays_report"].timetable.asset_condition
    assert songplays_schedule == star_asset("songplays")
    assert isinstance(songplays_schedule, Asset)
    (checked,) = downstream.dags["checked_report"].timetable.asset_condition.objects
    assert checked.name == STAR_SCHEMA_CHECKED.name
