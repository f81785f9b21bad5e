"""Fixtures of the service and browser tests: the real Airflow services and the runs a user makes
through their API, both started once per session and shared by test_services.py and test_browser.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.airflow_stack import AirflowStack, Scenario, run_scenario, started


@pytest.fixture(scope="session")
def airflow_stack(pg_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """The real Airflow services (API server and UI, scheduler, DAG processor, triggerer) on a
    free port with their own home and databases, started once for the service and browser tests."""
    yield from started(tmp_path_factory.mktemp("airflow-services"))


@pytest.fixture(scope="session")
def airflow_scenario(airflow_stack: AirflowStack) -> Scenario:
    """The runs a user makes through the API, made once: unpause, trigger, backfill, all finished."""
    return run_scenario(airflow_stack.api)
