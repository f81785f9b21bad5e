"""The least-privilege roles of include/sql/grants, for real on PostgreSQL: the loader can run
the whole pipeline and nothing beyond it; the reader sees the star schema and nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.operator_runs import (
    SHIPPED_CHECKS,
    load_dimension,
    load_songplays,
    quality,
    stage_events,
    stage_songs,
)
from tests.support.tasks import WAREHOUSE_CONN
from tools import local_pg
from tools.airflow_env import connection_json
from tools.ddl import create_tables
from tools.grants import render_grants


@pytest.fixture
def roles(warehouse_uri: str) -> Iterator[dict[str, str]]:
    """Two fresh login roles, and the warehouse URI for each; dropped after the test."""
    suffix = uuid.uuid4().hex[:8]
    names = {"loader": f"loader_{suffix}", "reader": f"reader_{suffix}"}
    with psycopg.connect(warehouse_uri, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'CREATE ROLE "{name}" LOGIN')
    yield {role: warehouse_uri.replace("postgres:@", f"{name}:@", 1) for role, name in names.items()} | {
        f"{role}_name": name for role, name in names.items()}
    # The roles own the database's tables: the database goes first (warehouse_uri's own drop is then a no-op).
    database = psycopg.conninfo.conninfo_to_dict(warehouse_uri)["dbname"]
    with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for name in names.values():
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def denied(uri: str, statement: str) -> bool:
    with psycopg.connect(uri, autocommit=True) as connection:
        try:
            connection.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_the_loader_runs_the_pipeline_and_the_reader_sees_only_the_star(warehouse_uri, roles, bucket, monkeypatch):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # without its grants the loader can do nothing
        create_tables(roles["loader"])
    with psycopg.connect(warehouse_uri, autocommit=True) as admin:
        admin.execute(render_grants("loader", loader=roles["loader_name"], schema="public", database="unused"))
    create_tables(roles["loader"])
    monkeypatch.setenv(WAREHOUSE_CONN, connection_json(roles["loader"]))
    stage_events(bucket)
    stage_songs(bucket)
    load_songplays()
    for table in ("users", "songs", "artists"):
        load_dimension(table, "upsert", key={"users": "user_id", "songs": "song_id", "artists": "artist_id"}[table],
                       **({"version_column": "last_seen_at"} if table == "users" else {}))
    load_dimension("time", "append")
    quality(SHIPPED_CHECKS)

    assert denied(roles["loader"], "CREATE SCHEMA elsewhere")
    assert denied(roles["loader"], f'CREATE ROLE "other_{uuid.uuid4().hex[:6]}"')
    assert denied(roles["loader"], "SELECT * FROM pg_authid")

    with psycopg.connect(roles["loader"], autocommit=True) as loader:
        loader.execute(render_grants("reader", reader=roles["reader_name"], schema="public"))
    with psycopg.connect(roles["reader"], autocommit=True) as reader:
        assert reader.execute("SELECT count(*) FROM songplays").fetchone()[0] > 0
        assert reader.execute('SELECT count(*) FROM users JOIN "time" ON true').fetchone() is not None
    for statement in ("SELECT * FROM staging_events", "SELECT * FROM quarantine", "SELECT * FROM load_audit",
                      "DELETE FROM songplays", "INSERT INTO artists (artist_id) VALUES ('x')"):
        assert denied(roles["reader"], statement), statement


@pytest.mark.parametrize("name", ['x"; DROP TABLE songplays; --', "Loader", "a b"])
def test_role_and_schema_names_are_checked(name):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="not a valid SQL identifier"):
        render_grants("loader", loader=name, schema="public", database="dev")
    with pytest.raises(AirflowFailException, match="not a valid SQL identifier"):
        render_grants("reader", reader="reader", schema=name)
