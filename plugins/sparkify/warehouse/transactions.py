"""Running statements on the warehouse: its hook and dialect, transactions on both drivers
(and the Data API), and secrets kept out of logs and errors."""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk.exceptions import AirflowFailException

from sparkify import cost
from sparkify.warehouse.data_api import DATA_API_BATCH_LIMIT, DataApiCursor, DataApiWarehouse
from sparkify.warehouse.sql import render_statements

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

log = logging.getLogger(__name__)

DIALECTS = ("postgres", "redshift")


class Cursor(Protocol):
    """What the package asks of a cursor: psycopg's, redshift_connector's, or a Data API transaction's
    (:class:`DataApiCursor`). Only the PostgreSQL engine's COPY and a failed Redshift COPY's rollback reach
    past it, to the driver's own cursor."""

    @property
    def rowcount(self) -> int | None: ...

    def execute(self, statement: str, parameters: dict[str, Any] | None = None, /) -> object: ...

    def fetchall(self) -> Sequence[Any]: ...

    def fetchone(self) -> Any: ...


def warehouse_hook(conn_id: str, *, log_sql: bool = True) -> tuple[DbApiHook | DataApiWarehouse, str]:
    """The provider hook of the warehouse connection, and its dialect.

    A ``redshift`` connection whose extra says ``"use_data_api": true`` is reached
    through the Redshift Data API instead of a driver (see :class:`DataApiWarehouse`).
    """
    from airflow.sdk import Connection

    connection = Connection.get(conn_id)
    dialect = connection.conn_type
    if dialect not in DIALECTS:
        raise AirflowFailException(
            f"connection {conn_id!r} is of type {dialect!r}; the warehouse must be one of {DIALECTS}"
        )
    if dialect == "redshift" and connection.extra_dejson.get("use_data_api"):
        for figure in ("data_api_batches", "data_api_reads"):  # counted from 0 (not None) through the Data API
            cost.add(figure, 0)
        return DataApiWarehouse.from_connection(connection), dialect
    return connection.get_hook(hook_params={"log_sql": log_sql}), dialect


def redact(text: str, secrets: Sequence[str]) -> str:
    """Text with every secret replaced, for logs and errors."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


@contextmanager
def secrets_redacted(secrets: Sequence[str], failure: str) -> Generator[None]:
    """Any error inside the block fails the task with ``failure`` and its text, every secret masked."""
    try:
        yield
    except Exception as error:
        if not secrets:
            raise
        raise AirflowFailException(f"{failure}: {redact(str(error), secrets)}") from None


def execute_statements(
    cursor: Cursor, statements: list[str], parameters: dict[str, Any], *, secrets: Sequence[str] = ()
) -> list[int | None]:
    """Run statements on an open cursor (the caller owns the transaction); their row counts.

    Statements are logged (at debug level) with ``secrets`` masked, and counted in the task's cost
    (:mod:`sparkify.cost`).
    """
    counts = []
    for statement in statements:
        log.debug("Running: %s", redact(statement, secrets))
        cost.count_statement(statement)
        cursor.execute(statement, parameters)
        counts.append(cursor.rowcount)
    return counts


@contextmanager
def transaction(hook: DbApiHook | DataApiWarehouse, dialect: str, *, name: str | None = None) -> Generator[Cursor]:
    """A cursor whose statements commit together when the block ends, or not at all.

    Statements use ``%(name)s`` parameters on both drivers: psycopg's native
    style, and one redshift_connector accepts when told per cursor. The
    transaction starts with the dialect's load settings (``modes/session.sql``).
    On the Data API the block's statements become one batch (see :class:`DataApiCursor`),
    sent under ``name`` (its StatementName) when one is given.
    """
    if isinstance(hook, DataApiWarehouse):
        cursor = DataApiCursor(hook, name=name)
        execute_statements(cursor, render_statements("modes/session.sql", dialect=dialect), {})
        yield cursor
        if cursor.commit():
            cost.add("transactions")
        return
    cost.add("transactions")
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


def keep_together(cursor: Cursor, statements: int) -> None:
    """The next ``statements`` go in one Data API batch: send the batch collected so far first if they
    would take it over its limit. A load calls it before each span and before its audit record, so a
    task covering many spans commits them in several batches, each span whole in one (on a driver the
    task stays one transaction; nothing happens). Each span is then left as a successful attempt leaves
    it, and a retry rewrites it alike. The Data API path is Redshift's, whose transactions open with no
    setting (``modes/session.sql``), so a batch after the first needs none either."""
    if isinstance(cursor, DataApiCursor) and cursor.statements and \
            len(cursor.statements) + statements > DATA_API_BATCH_LIMIT:
        if cursor.name is not None:
            raise AirflowFailException(
                f"Data API batch {cursor.name}: {statements} more statements would take it over "
                f"{DATA_API_BATCH_LIMIT}, and a named batch is sent once, whole; nothing was sent"
            )
        cursor.commit()
        cost.add("transactions")


def execute_named(cursor: Cursor, statements: dict[str, str], parameters: dict[str, Any]) -> dict[str, int | None]:
    """Run named statements (:func:`sparkify.warehouse.sql.render_named`) in order; their row counts by name."""
    counts = execute_statements(cursor, list(statements.values()), parameters)
    return dict(zip(statements, counts, strict=True))
