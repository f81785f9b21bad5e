"""What the four operators share: the warehouse hook, its dialect, safe identifiers,
the run's parameters and the operator-side SQL templates.

SQL reaches the warehouse in two ways. Files an operator takes as parameters
(``load/songplays.sql``…) are rendered by Airflow with the task context and
carry values as bound parameters (``%(batch_id)s``). The statement templates
that wrap them (``modes/upsert.sql``, ``stage/copy_from_s3.sql``…) are
rendered here, with identifiers that passed :func:`quote_identifier` and the
dialect macros of ``include/sql/macros/dialect.sql``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    import jinja2
    from airflow.providers.common.sql.hooks.sql import DbApiHook

#: ``include/`` beside ``plugins/``: the SQL, JSONPaths and other non-code files.
INCLUDE_DIR = Path(__file__).resolve().parents[2] / "include"
SQL_DIR = INCLUDE_DIR / "sql"

log = logging.getLogger(__name__)

DIALECTS = ("postgres", "redshift")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def quote_identifier(name: str) -> str:
    """Quote a table or column name after checking it is a plain lower-case identifier.

    Names come from operator arguments, never from run input, and the check
    makes sure nothing else can slip into SQL text.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise AirflowFailException(f"not a valid SQL identifier: {name!r}")
    return f'"{name}"'


def quote_literal(value: str) -> str:
    """Quote a string constant for statements that take no bound parameters (Redshift COPY)."""
    if "\x00" in value:
        raise AirflowFailException("a SQL string constant cannot contain a NUL character")
    return "'" + value.replace("'", "''") + "'"


def temp_table_name(purpose: str) -> str:
    """A fresh temporary table name, so concurrent sessions never collide."""
    return quote_identifier(f"{purpose}_{uuid.uuid4().hex[:12]}")


def warehouse_hook(conn_id: str, *, log_sql: bool = True) -> tuple[DbApiHook, str]:
    """The provider hook of the warehouse connection, and its dialect."""
    from airflow.sdk import Connection

    connection = Connection.get(conn_id)
    dialect = connection.conn_type
    if dialect not in DIALECTS:
        raise AirflowFailException(
            f"connection {conn_id!r} is of type {dialect!r}; the warehouse must be one of {DIALECTS}"
        )
    return connection.get_hook(hook_params={"log_sql": log_sql}), dialect


@cache
def _template_environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(SQL_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_statements(template: str, **variables: Any) -> list[str]:
    """Render an operator-side template from ``include/sql`` and split it into statements."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    text = _template_environment().get_template(template).render(**variables)
    return [statement for statement in DbApiHook.split_sql_string(text, strip_semicolon=True) if statement]


def _utc_naive(moment: datetime) -> datetime:
    """Warehouse timestamps are UTC without a zone; compare like with like."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def run_parameters(context: Any) -> dict[str, Any]:
    """The bound parameters every SQL file may use: the run's batch and its interval."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        raise AirflowFailException("this run has no data interval; trigger it with a logical date")
    return {
        "batch_id": context["run_id"],
        "interval_start": _utc_naive(start),
        "interval_end": _utc_naive(end),
        "start_ms": int(start.timestamp() * 1000),
        "end_ms": int(end.timestamp() * 1000),
    }


def redact(text: str, secrets: Sequence[str]) -> str:
    """Text with every secret replaced, for logs and errors."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def execute_statements(
    cursor: Any, statements: list[str], parameters: dict[str, Any], *, secrets: Sequence[str] = ()
) -> list[int]:
    """Run statements on an open cursor (the caller owns the transaction); their row counts.

    Statements are logged (at debug level) with ``secrets`` masked.
    """
    counts = []
    for statement in statements:
        log.debug("Running: %s", redact(statement, secrets))
        cursor.execute(statement, parameters)
        counts.append(cursor.rowcount)
    return counts


@contextmanager
def transaction(hook: DbApiHook, dialect: str) -> Generator[Any]:
    """A cursor whose statements commit together when the block ends, or not at all.

    Statements use ``%(name)s`` parameters on both drivers: psycopg's native
    style, and one redshift_connector accepts when told per cursor. The
    transaction starts with the dialect's load settings (``modes/session.sql``).
    """
    connection = hook.get_conn()
    try:
        cursor = connection.cursor()
        if dialect == "redshift":
            cursor.paramstyle = "pyformat"
        execute_statements(cursor, render_statements("modes/session.sql", dialect=dialect), {})
        yield cursor
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()


#: How many source object URIs an audit record lists before it only counts them.
AUDIT_OBJECTS_LISTED = 100


def record_load(
    cursor: Any,
    parameters: dict[str, Any],
    *,
    task_id: str,
    table: str,
    rows_read: int | None,
    rows_written: int | None,
    rows_rejected: int = 0,
    objects: Sequence[str] = (),
    uri: Callable[[str], str] = str,
) -> dict[str, Any]:
    """Write the task's audit record in its transaction; the same figures, for the task's XCom.

    ``uri`` names an object in the record: only the first AUDIT_OBJECTS_LISTED are named,
    so a full catalog load does not format a million URIs.
    """
    listed = "\n".join(map(uri, objects[:AUDIT_OBJECTS_LISTED]))
    if len(objects) > AUDIT_OBJECTS_LISTED:
        listed += f"\n… and {len(objects) - AUDIT_OBJECTS_LISTED} more"
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
    execute_statements(cursor, render_statements("audit/record_load.sql"), audit_parameters)
    return record
