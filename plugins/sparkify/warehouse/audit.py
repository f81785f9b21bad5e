"""The audit: what each task did, in ``load_audit``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from sparkify.warehouse.sql import render_statements
from sparkify.warehouse.transactions import Cursor, execute_statements, keep_together


def add_count(total: int | None, count: int | None) -> int | None:
    """A running total of row counts, None once any is unknown (the Data API counts after the batch)."""
    return None if total is None or count is None else total + count


#: How many source object URIs an audit record lists before it only counts them.
AUDIT_OBJECTS_LISTED = 100


def record_load(
    cursor: Cursor,
    parameters: dict[str, Any],
    *,
    task_id: str,
    table: str,
    rows_read: int | None,
    rows_written: int | None,
    rows_rejected: int | None = 0,
    objects: Sequence[str] = (),
    uri: Callable[[str], str] = str,
    note: str | None = None,
) -> dict[str, Any]:
    """Write the task's audit record in its transaction; the same figures, for the task's XCom.

    ``uri`` names an object in the record: only the first AUDIT_OBJECTS_LISTED are named,
    so a full catalog load does not format a million URIs. ``note`` follows them (a warning
    the record keeps, such as an interval without objects).
    """
    listed = "\n".join(map(uri, objects[:AUDIT_OBJECTS_LISTED]))
    if len(objects) > AUDIT_OBJECTS_LISTED:
        listed += f"\n… and {len(objects) - AUDIT_OBJECTS_LISTED} more"
    if note:
        listed = f"{listed}\n{note}".strip()
    record = {
        "batch_id": parameters["batch_id"],
        "task_id": task_id,
        "table_name": table,
        "rows_read": rows_read,
        "rows_written": rows_written,
        "rows_rejected": rows_rejected,
        "object_count": len(objects),
    }
    audit_parameters = {
        **parameters,
        **record,
        "source_objects": listed or None,
        "recorded_at": datetime.now(timezone.utc).replace(tzinfo=None),
    }
    statements = render_statements("audit/record_load.sql")
    keep_together(cursor, len(statements))
    execute_statements(cursor, statements, audit_parameters)
    return record
