"""LoadFactOperator: the fact rows of the run's interval."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from sparkify.lineage import load_lineage, record_asset_events
from sparkify.warehouse import (
    execute_statements,
    quote_identifier,
    record_load,
    render_statements,
    run_parameters,
    transaction,
    warehouse_hook,
    whole_number,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context


#: Each mode's statement template in include/sql/modes.
MODES = {"replace-interval": "modes/replace_interval.sql", "update": "modes/update_facts.sql"}


class LoadFactOperator(BaseOperator):
    """
    Replace a fact table's rows of the run's data interval with the rows a select returns.

    Deleting the interval and inserting happen in one transaction under a table
    lock, so a retry, a re-run or two runs of the same hour at once leave
    exactly one copy of each fact, and readers never see the interval half-loaded.
    In ``update`` mode the SQL is an UPDATE of facts already loaded (late-arriving
    dimensions), run under the same lock.

    With ``staged_table`` the load first checks, in its transaction, that the run's
    batch of that staging table is there to read: a batch purged by retention, or
    never staged, would otherwise replace the interval's facts with nothing.

    :param table: the fact table (templated)
    :param sql: a SELECT returning the table's columns in order (or, in ``update``
        mode, an UPDATE), or a ``.sql`` file holding one (templated); it may use the
        run parameters ``%(batch_id)s``, ``%(interval_start)s``, ``%(interval_end)s``,
        ``%(start_ms)s``, ``%(end_ms)s`` and any given in ``parameters``
    :param mode: ``replace-interval`` (default) or ``update``
    :param interval_column: the timestamp column that places a row in an interval
    :param parameters: extra bound parameters for the select (templated)
    :param staged_table: the staging table whose batch of this run the SQL reads; the load
        fails, changing nothing, if its staging task never staged the batch or the batch
        was purged since. None: no check (for SQL that reads no batch of its own)
    :param staged_retention_hours: the retention that purges ``staged_table`` (0: none). Where
        the staged row count is unknown (Redshift), a batch without rows is taken for an empty
        one while younger than this, for a purged one once older; None: always purged (templated)
    :param redshift_conn_id: warehouse connection, of type postgres or redshift (templated)
    """

    template_fields: Sequence[str] = ("table", "sql", "parameters", "staged_retention_hours", "redshift_conn_id")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#F98866"

    def __init__(
        self,
        *,
        table: str,
        sql: str,
        mode: str = "replace-interval",
        interval_column: str = "start_time",
        parameters: dict[str, Any] | None = None,
        staged_table: str | None = None,
        staged_retention_hours: int | str | None = None,
        redshift_conn_id: str = "sparkify_warehouse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.sql = sql
        self.mode = mode
        self.interval_column = interval_column
        self.parameters = parameters or {}
        self.staged_table = staged_table
        self.staged_retention_hours = staged_retention_hours
        self.redshift_conn_id = redshift_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        if self.mode not in MODES:
            raise AirflowFailException(f"unknown mode {self.mode!r}; use one of {sorted(MODES)}")
        hook, dialect = warehouse_hook(self.redshift_conn_id)
        statements = render_statements(
            MODES[self.mode],
            dialect=dialect,
            table=quote_identifier(self.table),
            interval_column=quote_identifier(self.interval_column),
            select=self.sql.strip().rstrip(";"),
        )
        parameters = {**run_parameters(context), **self.parameters}
        with transaction(hook, dialect) as cursor:
            if self.staged_table:
                self._require_staged_batch(cursor, dialect, parameters)
            counts = execute_statements(cursor, statements, parameters)
            # update: [lock, update]; replace-interval: [lock, delete, insert, analyze…]
            written = counts[1] if self.mode == "update" else counts[2]
            audit = record_load(
                cursor, parameters, task_id=self.task_id, table=self.table, rows_read=written, rows_written=written,
            )
        if self.mode == "update":
            self.log.info("%s: updated %s rows", self.table, written)
        else:
            self.log.info(
                "%s, %s to %s: replaced %s rows with %s",
                self.table, parameters["interval_start"], parameters["interval_end"], counts[1], written,
            )
        record_asset_events(context, self.outlets, audit)
        return audit

    def _require_staged_batch(self, cursor: Any, dialect: str, parameters: dict[str, Any]) -> None:
        """Fail, before anything is written, unless the run's batch of ``staged_table`` can be read.

        A batch its audit record says was staged empty (an hour without events) passes: zero
        facts is then the right answer. On Redshift COPY's row count is unknown (NULL): a batch
        staged from objects but holding no row was staged from empty objects while it is younger
        than the retention, and was purged once it is older.
        """
        retention = (None if self.staged_retention_hours in (None, "")
                     else whole_number(self.staged_retention_hours, "staged_retention_hours"))
        batch = parameters["batch_id"]
        statements = render_statements(
            "audit/staged_batch.sql", dialect=dialect, table=quote_identifier(self.staged_table)
        )
        execute_statements(cursor, statements, {**parameters, "table_name": self.staged_table})
        records = cursor.fetchall()
        if not records:
            raise AirflowFailException(
                f"{self.staged_table} holds no batch {batch!r}: no staging task has staged it for this run "
                "(no load_audit record). Clear the whole run, so that its staging runs before this load"
            )
        task_id, rows_written, object_count, staged_at, rows_left = records[0]
        if int(rows_left) or not int(object_count) or (rows_written is not None and not int(rows_written)):
            return
        if isinstance(staged_at, str):  # the Data API returns timestamps as text
            staged_at = datetime.fromisoformat(staged_at)
        hours = (datetime.now(timezone.utc).replace(tzinfo=None) - staged_at).total_seconds() / 3600
        if rows_written is None and retention is not None and (retention == 0 or hours < retention):
            return  # empty objects: no purge has reached this batch yet
        raise AirflowFailException(
            f"batch {batch!r} was purged from {self.staged_table} ({task_id} staged it {hours:.0f} hours ago, at "
            f"{staged_at:%Y-%m-%d %H:%M} UTC, and none of its rows remain): clear the whole run so "
            f"{task_id} stages it again"
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the tables the SQL reads → the fact table."""
        return load_lineage(self.redshift_conn_id, self.table, self.sql)
