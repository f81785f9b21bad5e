"""The warehouse DDL as the create_tables task renders it, for code that sets up a
warehouse outside a DAG run (tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"


def render_sql(template: str, dialect: str) -> str:
    """Render an Airflow-side SQL file for a dialect, with the template context it reads."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(SQL_DIR), undefined=jinja2.StrictUndefined)
    return environment.get_template(template).render(
        conn=SimpleNamespace(get=lambda conn_id: SimpleNamespace(conn_type=dialect)),
        task=SimpleNamespace(conn_id="sparkify_warehouse"),
    )


def create_tables(uri: str) -> None:
    """Create the warehouse tables in a PostgreSQL database."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as connection:
        connection.execute(render_sql("create/create_tables.sql", "postgres"))
