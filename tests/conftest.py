"""Shared fixtures: a real PostgreSQL (the embedded one), a fresh warehouse
database per test, and Airflow configured for a throwaway home.

Airflow reads its configuration when first imported, so the environment is
set here, before any test module imports it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SQL_DIR = REPO / "include" / "sql"
for folder in (REPO, REPO / "plugins"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sparkify-airflow-home-"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"

import psycopg  # noqa: E402

from tools import local_pg  # noqa: E402
from tools.airflow_env import connection_json  # noqa: E402
from tools.ddl import create_tables  # noqa: E402

WAREHOUSE_CONN = "AIRFLOW_CONN_SPARKIFY_WAREHOUSE"

# The recording Redshift connection and the fixed S3 listing, for every test module that asks.
from redshift_recording import redshift, s3  # noqa: E402, F401


@pytest.fixture(scope="session")
def pg_server() -> None:
    """The embedded PostgreSQL server, started once for the whole run."""
    local_pg.ensure_server()


@pytest.fixture
def warehouse_uri(pg_server: None) -> Iterator[str]:
    """A fresh, empty warehouse database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    local_pg.ensure_database(name)
    yield local_pg.database_uri(name)
    with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def warehouse(warehouse_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """The fresh warehouse with its tables created, set as the ``sparkify_warehouse``
    connection, and an autocommit connection to inspect it."""
    monkeypatch.setenv(WAREHOUSE_CONN, connection_json(warehouse_uri))
    create_tables(warehouse_uri)
    with psycopg.connect(warehouse_uri, autocommit=True) as connection:
        yield connection


def sql_file(name: str) -> str:
    """A pipeline SQL file as Airflow renders it for a task that needs no context (its macros imported)."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(SQL_DIR), undefined=jinja2.StrictUndefined)
    return environment.get_template(name).render()


def run_context(start: datetime, run_id: str = "manual__test", hours: int = 1) -> dict:
    """The parts of an Airflow task context the operators read."""
    start = start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start
    return {"run_id": run_id, "data_interval_start": start, "data_interval_end": start + timedelta(hours=hours)}


@pytest.fixture(scope="session")
def airflow_stack(pg_server: None, tmp_path_factory: pytest.TempPathFactory):
    """The real Airflow services (API server and UI, scheduler, DAG processor, triggerer) on a
    free port with their own home and databases, started once for the service and browser tests."""
    from airflow_stack import started

    yield from started(tmp_path_factory.mktemp("airflow-services"))


@pytest.fixture(scope="session")
def airflow_scenario(airflow_stack):
    """The runs a user makes through the API, made once: unpause, trigger, backfill, all finished."""
    from airflow_stack import run_scenario

    return run_scenario(airflow_stack.api)
