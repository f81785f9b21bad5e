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
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    import jinja2
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Connection

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


def whole_number(value: int | str, name: str) -> int:
    """A non-negative integer argument that may arrive rendered from a template."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if number < 0:
        raise AirflowFailException(f"{name} must be a whole number >= 0, got {value!r}")
    return number


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
        return DataApiWarehouse.from_connection(connection), dialect
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


#: The width of every ``batch_id`` column (include/sql/create/create_tables.sql).
BATCH_ID_LENGTH = 256


def batch_id(context: Any) -> str:
    """The run's staging batch: ``<dag id>/<run id>``, as run ids repeat across DAGs (the hourly and
    the daily DAG both have ``scheduled__2018-11-01T00:00:00+00:00``); the bare run id when an
    operator runs outside a DAG run (tests, benchmarks)."""
    dag_run = context.get("dag_run")
    batch = f"{dag_run.dag_id}/{context['run_id']}" if dag_run is not None else context["run_id"]
    if len(batch) > BATCH_ID_LENGTH:
        raise AirflowFailException(f"batch id {batch!r} is over {BATCH_ID_LENGTH} characters: shorten the DAG id")
    return batch


def run_parameters(context: Any) -> dict[str, Any]:
    """The bound parameters every SQL file may use: the run's batch and its interval."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        raise AirflowFailException("this run has no data interval; trigger it with a logical date")
    return {
        "batch_id": batch_id(context),
        "interval_start": _utc_naive(start),
        "interval_end": _utc_naive(end),
        "start_ms": int(start.timestamp() * 1000),
        "end_ms": int(end.timestamp() * 1000),
    }


def with_restated_hours(cursor: Any, parameters: dict[str, Any], staging_table: str) -> dict[str, Any]:
    """The parameters with the interval widened to the hours this run's staging of ``staging_table``
    restated (recorded in ``restatements``, over all its attempts): what the run's loads and checks cover.

    Read from the warehouse, in the caller's transaction, so a load cleared and run alone still covers them.
    """
    execute_statements(cursor, render_statements("audit/restated_hours.sql"),
                       {**parameters, "table_name": staging_table})
    row: tuple[Any, Any] = cursor.fetchone() or (None, None)
    first, last = row
    if first is None:
        return parameters
    if isinstance(first, str):  # the Data API returns timestamps as text
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    start, end = min(parameters["interval_start"], first), max(parameters["interval_end"], last)
    return {**parameters, "interval_start": start, "interval_end": end,
            "start_ms": epoch_ms(start), "end_ms": epoch_ms(end)}


#: The epoch, naive UTC like every warehouse timestamp.
EPOCH = datetime(1970, 1, 1)


def epoch_ms(moment: datetime) -> int:
    """A naive UTC time as epoch milliseconds, the unit of ``ts``."""
    return int((moment - EPOCH).total_seconds() * 1000)


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
def transaction(hook: DbApiHook | DataApiWarehouse, dialect: str) -> Generator[Any]:
    """A cursor whose statements commit together when the block ends, or not at all.

    Statements use ``%(name)s`` parameters on both drivers: psycopg's native
    style, and one redshift_connector accepts when told per cursor. The
    transaction starts with the dialect's load settings (``modes/session.sql``).
    On the Data API the block's statements become one batch (see :class:`DataApiCursor`).
    """
    if isinstance(hook, DataApiWarehouse):
        cursor = DataApiCursor(hook)
        execute_statements(cursor, render_statements("modes/session.sql", dialect=dialect), {})
        yield cursor
        cursor.commit()
        return
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


#: The most statements one BatchExecuteStatement takes: the Data API's limit.
DATA_API_BATCH_LIMIT = 40
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@dataclass
class DataApiWarehouse:
    """A Redshift warehouse reached through the Data API: HTTPS calls to AWS, no driver and no
    network path to the cluster; a Serverless workgroup or a provisioned cluster.

    Configured on the warehouse connection (type ``redshift``), in its extra: ``use_data_api``
    true; ``workgroup_name`` or ``cluster_identifier``; ``database`` (default: the connection's
    schema); for a cluster ``db_user`` (temporary credentials) or ``secret_arn``; optionally
    ``aws_conn_id`` (default ``aws_default``), ``region_name`` and ``poll_interval`` (seconds).
    """

    hook: RedshiftDataHook
    target: dict[str, str]
    poll_interval: float = 5.0

    @classmethod
    def from_connection(cls, connection: Connection) -> DataApiWarehouse:
        from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook

        extra = connection.extra_dejson
        given: dict[str, str | None] = {
            "database": extra.get("database") or connection.schema,
            "workgroup_name": extra.get("workgroup_name"),
            "cluster_identifier": extra.get("cluster_identifier"),
            "db_user": extra.get("db_user"),
            "secret_arn": extra.get("secret_arn"),
        }
        target = {key: value for key, value in given.items() if value}
        if "database" not in target:
            raise AirflowFailException(f"connection {connection.conn_id!r}: the Data API needs a database")
        if ("workgroup_name" in target) == ("cluster_identifier" in target):
            raise AirflowFailException(
                f"connection {connection.conn_id!r}: the Data API needs exactly one of workgroup_name "
                "(Serverless) and cluster_identifier (provisioned)"
            )
        hook = RedshiftDataHook(
            aws_conn_id=extra.get("aws_conn_id", "aws_default"), region_name=extra.get("region_name")
        )
        return cls(hook, target, float(extra.get("poll_interval", 5)))

    def run(self, sql: str | list[str], bound: dict[str, str]) -> str:
        """Run one statement, or a list as one transaction, and wait for the end; the statement id."""
        parameters = [{"name": name, "value": value} for name, value in bound.items()] or None
        return self.hook.execute_query(
            sql=sql, parameters=parameters, wait_for_completion=True,
            # The hook sleeps this many seconds between polls: a fraction is fine, whatever its annotation says.
            poll_interval=self.poll_interval,  # type: ignore[arg-type]
            database=self.target["database"], workgroup_name=self.target.get("workgroup_name"),
            cluster_identifier=self.target.get("cluster_identifier"), db_user=self.target.get("db_user"),
            secret_arn=self.target.get("secret_arn"),
        ).statement_id

    def rows(self, statement_id: str) -> list[tuple[Any, ...]]:
        """Every row a finished query returned, page after page."""
        rows: list[tuple[Any, ...]] = []
        page = self.hook.conn.get_statement_result(Id=statement_id)
        while True:
            rows += [tuple(_field_value(field) for field in record) for record in page["Records"]]
            if not page.get("NextToken"):
                return rows
            page = self.hook.conn.get_statement_result(Id=statement_id, NextToken=page["NextToken"])


def _field_value(field: dict[str, Any]) -> Any:
    """A Data API result field as a Python value (DECIMAL arrives as its string)."""
    if field.get("isNull"):
        return None
    (value,) = field.values()
    return value


def _parameter_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def data_api_sql(statement: str, parameters: dict[str, Any] | None, bound: dict[str, str]) -> str:
    """A statement in the Data API's parameter style: ``%(name)s`` becomes ``:name``, its value
    (as text) added to ``bound``, shared by a batch; a name already bound to another value gets a
    suffix. NULL and the empty string go inline: the Data API takes neither as a value."""
    if parameters is None:
        return statement

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        value = parameters[name]
        if value is None:
            return "NULL"
        text = _parameter_text(value)
        if not text:
            return "''"
        key, suffix = name, 1
        while bound.setdefault(key, text) != text:
            suffix += 1
            key = f"{name}_{suffix}"
        return f":{key}"

    return _PLACEHOLDER.sub(placeholder, statement)


class DataApiCursor:
    """The cursor of a Data API transaction, for :func:`execute_statements` and the operators.

    ``execute`` only collects; ``commit`` sends what was collected as one BatchExecuteStatement,
    which Redshift runs as one transaction, and waits for it: the same statements, committed
    together or not at all, as on a driver. ``fetchall`` runs the statement just given on its
    own and returns its rows: a read runs *before* the writes collected ahead of it and does not
    see them (the README says why that holds for the two reads the operators make). A write's
    row count is known only after the batch: ``rowcount`` is None, and the counts are logged.
    """

    rowcount = None

    def __init__(self, warehouse: DataApiWarehouse) -> None:
        self.warehouse = warehouse
        self.statements: list[tuple[str, dict[str, Any] | None]] = []
        self._fetchable = False

    def execute(self, statement: str, parameters: dict[str, Any] | None = None) -> None:
        if len(self.statements) == DATA_API_BATCH_LIMIT:
            raise AirflowFailException(
                f"a Data API transaction takes at most {DATA_API_BATCH_LIMIT} statements; "
                "stage fewer keys per run (for example the daily log layout, or a shorter interval)"
            )
        self.statements.append((statement, parameters))
        self._fetchable = True

    def fetchall(self) -> list[tuple[Any, ...]]:
        if not self._fetchable:
            raise AirflowFailException("fetchall() needs a statement given just before")
        self._fetchable = False
        statement, parameters = self.statements.pop()
        bound: dict[str, str] = {}
        sql = data_api_sql(statement, parameters, bound)
        if self.statements:
            log.info("Reading ahead of the %d statements this transaction will commit", len(self.statements))
        return self.warehouse.rows(self.warehouse.run(sql, bound))

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def commit(self) -> None:
        self._fetchable = False
        if not self.statements:
            return
        bound: dict[str, str] = {}
        batch = [data_api_sql(statement, parameters, bound) for statement, parameters in self.statements]
        self.statements = []
        statement_id = self.warehouse.run(batch, bound)
        description = self.warehouse.hook.conn.describe_statement(Id=statement_id)
        log.info(
            "Committed %d statements in Data API batch %s; rows per statement: %s",
            len(batch), statement_id, [sub.get("ResultRows") for sub in description.get("SubStatements", [])],
        )


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
    execute_statements(cursor, render_statements("audit/record_load.sql"), audit_parameters)
    return record
