"""``make backfill``'s metadata check: Airflow's own check runs once per installation and schema, then
one query stands in for it; anything that changed sends it back to Airflow's."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tools import backfill


@pytest.fixture
def airflow_check(tmp_path, monkeypatch) -> SimpleNamespace:
    """Airflow's check (its calls counted; it passes), the database's heads and the installation."""
    from airflow.utils import db

    check = SimpleNamespace(calls=0, heads={"a1"}, installation={"airflow": "3.3.2", "packages_changed_ns": 1})

    def check_migrations(timeout: int) -> None:
        check.calls += 1

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setattr(db, "check_migrations", check_migrations)
    monkeypatch.setattr(backfill, "_database_heads", lambda: set(check.heads))
    monkeypatch.setattr(backfill, "_installation", lambda: dict(check.installation))
    return check


def test_airflows_check_runs_once_then_the_record_stands_in_for_it(airflow_check, tmp_path):
    assert backfill.migrate_if_needed() == "up to date" and airflow_check.calls == 1
    record = json.loads((tmp_path / backfill.SCHEMA_RECORD).read_text())
    assert record == {"installation": {"airflow": "3.3.2", "packages_changed_ns": 1}, "heads": ["a1"]}
    assert backfill.migrate_if_needed() == "up to date" and airflow_check.calls == 1


@pytest.mark.parametrize("change", ["heads", "installation", "record"])
def test_a_database_an_installation_or_a_record_that_changed_takes_airflows_check(airflow_check, tmp_path, change):
    backfill.migrate_if_needed()
    if change == "heads":
        airflow_check.heads = {"b2"}
    elif change == "installation":
        airflow_check.installation["packages_changed_ns"] = 2
    else:
        (tmp_path / backfill.SCHEMA_RECORD).write_text("not json")
    backfill.migrate_if_needed()
    assert airflow_check.calls == 2


def test_the_tasks_a_scheduler_never_runs_are_begin_and_end():
    from airflow.dag_processing.dagbag import DagBag

    from tests.support.paths import REPO

    dags = DagBag(dag_folder=str(REPO / "dags")).dags
    assert {dag_id: backfill.never_scheduled(dag) for dag_id, dag in dags.items()} == {
        "sparkify_dwh": "begin|end", "sparkify_dwh_daily": "begin|end"}
