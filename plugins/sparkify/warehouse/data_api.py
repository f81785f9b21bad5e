"""The Redshift Data API as a warehouse: HTTPS calls to AWS through the provider's
``RedshiftDataHook``, a transaction as one ``BatchExecuteStatement``."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from sparkify import cost
from sparkify.exceptions import BatchFailed

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook
    from airflow.sdk import Connection

log = logging.getLogger(__name__)

#: The most statements one BatchExecuteStatement takes: the Data API's limit.
DATA_API_BATCH_LIMIT = 40
#: The longest statement the Data API takes ("Cannot process query string larger than 100kB"), in bytes.
DATA_API_STATEMENT_BYTES = 100_000
#: A batch still in these states may finish: an attempt that finds one waits for it instead of sending again.
_RUNNING = ("SUBMITTED", "PICKED", "STARTED")
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

    def run(self, sql: str | list[str], bound: dict[str, str], name: str | None = None) -> str:
        """Run one statement, or a list as one transaction (named ``name``, its StatementName), and wait
        for the end; the statement id. One that fails raises :class:`BatchFailed` with Redshift's error."""
        parameters = [{"name": key, "value": value} for key, value in bound.items()] or None
        statement_id = self.hook.execute_query(
            sql=sql, parameters=parameters, wait_for_completion=False, statement_name=name,
            database=self.target["database"], workgroup_name=self.target.get("workgroup_name"),
            cluster_identifier=self.target.get("cluster_identifier"), db_user=self.target.get("db_user"),
            secret_arn=self.target.get("secret_arn"),
        ).statement_id
        cost.add("data_api_batches" if isinstance(sql, list) else "data_api_reads")
        self.wait(statement_id)
        return statement_id

    def wait(self, statement_id: str) -> None:
        """Wait until a statement finished (the hook polls DescribeStatement); :class:`BatchFailed` if it failed."""
        from airflow.providers.amazon.aws.hooks.redshift_data import (
            RedshiftDataQueryAbortedError,
            RedshiftDataQueryFailedError,
        )

        try:
            # The hook sleeps this many seconds between polls: a fraction is fine, whatever its annotation says.
            self.hook.wait_for_results(statement_id, poll_interval=self.poll_interval)  # type: ignore[arg-type]
        except (RedshiftDataQueryFailedError, RedshiftDataQueryAbortedError):
            described = self.hook.conn.describe_statement(Id=statement_id)
            failed = BatchFailed(statement_id, described["Status"], described.get("Error", "no error given"))
            raise failed from None

    def created_at(self, statement_id: str) -> datetime:
        """When the Data API received a statement (UTC, naive, as the warehouse stores times)."""
        created: datetime = self.hook.conn.describe_statement(Id=statement_id)["CreatedAt"]
        return created.astimezone(timezone.utc).replace(tzinfo=None) if created.tzinfo else created

    def attach(self, name: str) -> bool:
        """Whether a batch sent under ``name`` by an earlier attempt of the task (on a worker since gone)
        did the work: one still running is waited for (the provider hook polls it, as if this attempt had
        sent it), one that finished did it; none, or one that failed or was aborted, did not (send it again).
        Names are unique per batch (:func:`sparkify.staging.units.statement_name`)."""
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StatementName": name, "Status": "ALL", "MaxResults": 100,
                                   **self._scope()}
        while True:  # a name is a prefix to ListStatements: keep only the exact one
            page = self._list_statements(request)
            found += [entry for entry in page.get("Statements", []) if entry.get("StatementName") == name]
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
        if not found:
            return False
        latest = max(found, key=lambda entry: entry["CreatedAt"])
        if latest["Status"] in _RUNNING:
            log.warning("Data API batch %s (%s), sent by an earlier attempt, is still %s: waiting for it instead "
                        "of sending it again", latest["Id"], name, latest["Status"])
            try:
                self.wait(latest["Id"])
            except BatchFailed as failed:
                log.warning("That batch failed (%s): sending it again", failed)
                return False
            return True
        if latest["Status"] == "FINISHED":
            log.info("Data API batch %s (%s) finished in an earlier attempt: not sent again", latest["Id"], name)
            return True
        return False

    def _list_statements(self, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            listed: dict[str, Any] = self.hook.conn.list_statements(**request)
            return listed
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "AccessDeniedException":
                raise AirflowFailException(
                    "the Data API identity may not list statements: grant it redshift-data:ListStatements, with "
                    "which an attempt finds a staging unit's batch sent before a worker restart instead of sending "
                    f"it twice ({error})"
                ) from None
            raise

    def _scope(self) -> dict[str, str]:
        """ListStatements' filter for this warehouse: its workgroup or cluster, and database."""
        scope = {"Database": self.target["database"]}
        if "workgroup_name" in self.target:
            scope["WorkgroupName"] = self.target["workgroup_name"]
        else:
            scope["ClusterIdentifier"] = self.target["cluster_identifier"]
        return scope

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
    see them (docs/redshift.md says why that holds for the two reads the operators make). A write's
    row count is known only after the batch: ``rowcount`` is None, and the counts are logged.
    """

    rowcount = None

    def __init__(self, warehouse: DataApiWarehouse, name: str | None = None) -> None:
        self.warehouse = warehouse
        self.name = name
        self.statements: list[tuple[str, dict[str, Any] | None]] = []
        self._fetchable = False

    def execute(self, statement: str, parameters: dict[str, Any] | None = None) -> None:
        if len(self.statements) == DATA_API_BATCH_LIMIT:
            raise AirflowFailException(
                f"a Data API transaction takes at most {DATA_API_BATCH_LIMIT} statements "
                f"(the one over the limit: {statement[:80]!r}…); nothing was sent"
            )
        if len(statement.encode()) > DATA_API_STATEMENT_BYTES:
            raise AirflowFailException(
                f"a Data API statement takes at most {DATA_API_STATEMENT_BYTES:,} bytes; this one has "
                f"{len(statement.encode()):,} ({statement[:80]!r}…); nothing was sent"
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

    def commit(self) -> bool:
        """Send the statements collected as one batch and wait for it; whether there was one to send."""
        self._fetchable = False
        if not self.statements:
            return False
        bound: dict[str, str] = {}
        batch = [data_api_sql(statement, parameters, bound) for statement, parameters in self.statements]
        self.statements = []
        statement_id = self.warehouse.run(batch, bound, self.name)
        description = self.warehouse.hook.conn.describe_statement(Id=statement_id)
        log.info(
            "Committed %d statements in Data API batch %s; rows per statement: %s",
            len(batch), statement_id, [sub.get("ResultRows") for sub in description.get("SubStatements", [])],
        )
        return True
