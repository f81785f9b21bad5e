"""The warehouse DDL as the create_tables task renders it, for code that sets up a
warehouse outside a DAG run (tests, benchmarks). Imports nothing of Airflow until it renders:
tests/conftest.py imports it before it sets Airflow's environment."""

from __future__ import annotations


def render_sql(template: str, dialect: str) -> str:
    """A pipeline SQL file for a dialect, rendered as the tasks render it (the one renderer,
    :func:`sparkify.warehouse.sql.render_text`)."""
    from sparkify.warehouse.sql import render_text

    return render_text(template, dialect=dialect)


def create_tables(uri: str) -> None:
    """Create the warehouse tables in a PostgreSQL database."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as connection:
        connection.execute(render_sql("create/create_tables.sql", "postgres"))
