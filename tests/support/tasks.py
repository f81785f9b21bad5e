"""What Airflow gives an operator that a test runs directly: the parts of the task context the
operators read, SQL files rendered as a task renders them, and the variable that holds the
``sparkify_warehouse`` connection."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

WAREHOUSE_CONN = "AIRFLOW_CONN_SPARKIFY_WAREHOUSE"


def sql_file(name: str) -> str:
    """A pipeline SQL file as a task that needs no context renders it (its macros imported)."""
    from sparkify.warehouse.sql import render_text

    return render_text(name)


def run_context(start: datetime, run_id: str = "manual__test", hours: int = 1) -> dict:
    """The parts of an Airflow task context the operators read."""
    start = start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start
    return {"run_id": run_id, "data_interval_start": start, "data_interval_end": start + timedelta(hours=hours)}
