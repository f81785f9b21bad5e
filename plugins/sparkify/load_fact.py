"""LoadFactOperator: the fact rows of the run's interval."""

from __future__ import annotations

from collections.abc import Sequence
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
    with_restated_hours,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context


#: Each mode's statement template in include/sql/modes.
MODES = {"replace-interval": "modes/replace_interval.sql", "update": "modes/update_facts.sql"}


class LoadFactOperator(BaseOperator):
    """
    Replace a fact table's rows of the hours a run loads with the rows a select returns.

    Deleting the interval and inserting happen in one transaction under a table
    lock, so a retry, a re-run or two runs of the same hour at once leave
    exactly one copy of each fact, and readers never see the interval half-loaded.
    In ``update`` mode the SQL is an UPDATE of facts already loaded (late-arriving
    dimensions), run under the same lock.

    :param table: the fact table (templated)
    :param sql: a SELECT returning the table's columns in order (or, in ``update``
        mode, an UPDATE), or a ``.sql`` file holding one (templated); it may use the
        run parameters ``%(batch_id)s``, ``%(interval_start)s``, ``%(interval_end)s``,
        ``%(start_ms)s``, ``%(end_ms)s`` and any given in ``parameters``
    :param mode: ``replace-interval`` (default) or ``update``
    :param interval_column: the timestamp column that places a row in an interval
    :param parameters: extra bound parameters for the select (templated)
    :param restated_table: a staging table staged by time: the load also covers the hours this run's
        staging of it restated (objects late, changed or gone), read from ``restatements``
    :param redshift_conn_id: warehouse connection, of type postgres or redshift (templated)
    """

    template_fields: Sequence[str] = ("table", "sql", "parameters", "redshift_conn_id")
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
        restated_table: str | None = None,
        redshift_conn_id: str = "sparkify_warehouse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.sql = sql
        self.mode = mode
        self.interval_column = interval_column
        self.parameters = parameters or {}
        self.restated_table = restated_table
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
            if self.restated_table:
                parameters = with_restated_hours(cursor, parameters, self.restated_table)
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
        record_asset_events(context, self.outlets, audit, parameters)
        return audit

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the tables the SQL reads → the fact table."""
        return load_lineage(self.redshift_conn_id, self.table, self.sql)
