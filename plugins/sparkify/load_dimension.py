"""LoadDimensionOperator: a dimension table from a select, in one of three modes."""

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
    temp_table_name,
    transaction,
    warehouse_hook,
    with_restated_hours,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

#: Each mode's statement template in include/sql/modes.
MODES = {
    "truncate-insert": "modes/truncate_insert.sql",
    "append": "modes/append.sql",
    "upsert": "modes/upsert.sql",
    "replace-interval": "modes/replace_interval.sql",
}


class LoadDimensionOperator(BaseOperator):
    """
    Load a dimension table from a select, in one transaction under a table lock.

    Modes: ``truncate-insert`` rebuilds the table from the select (with DELETE, so
    the rebuild is atomic on Redshift too); ``append`` inserts the select's rows,
    which must leave out rows already there; ``upsert`` replaces stored rows whose
    ``key`` comes again and, with a ``version_column``, keeps whichever row is newer,
    so intervals can load in any order; ``replace-interval`` replaces the rows whose
    ``interval_column`` falls in the hours loaded (a dimension derived from the facts).

    With a ``version_column`` the hours loaded are re-derived: the select returns a
    row for every key whose stored version lies in them and that still has one, so a
    stored row versioned there is replaced even by an older one, and deleted when the
    select returns none (the events it came from were withdrawn).

    :param table: the dimension table (templated)
    :param sql: a SELECT returning the table's columns in order, or a ``.sql`` file
        holding one (templated); it may use the run parameters (see LoadFactOperator)
    :param mode: ``truncate-insert``, ``append`` or ``upsert``
    :param key: the key column, for ``upsert``
    :param version_column: for ``upsert``: the column that orders two versions of a row
    :param interval_column: for ``replace-interval``: the timestamp column that places a row in an hour
    :param parameters: extra bound parameters for the select (templated)
    :param restated_table: a staging table staged by time: the load also covers the hours this run's
        staging of it restated (objects late, changed or gone), read from ``restatements``
    :param redshift_conn_id: warehouse connection, of type postgres or redshift (templated)
    """

    template_fields: Sequence[str] = ("table", "sql", "parameters", "redshift_conn_id")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#80BD9E"

    def __init__(
        self,
        *,
        table: str,
        sql: str,
        mode: str = "truncate-insert",
        key: str | None = None,
        version_column: str | None = None,
        interval_column: str | None = None,
        parameters: dict[str, Any] | None = None,
        restated_table: str | None = None,
        redshift_conn_id: str = "sparkify_warehouse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.sql = sql
        self.mode = mode
        self.key = key
        self.version_column = version_column
        self.interval_column = interval_column
        self.restated_table = restated_table
        self.parameters = parameters or {}
        self.redshift_conn_id = redshift_conn_id

    def _statements(self, dialect: str, incoming: str) -> list[str]:
        if self.mode not in MODES:
            raise AirflowFailException(f"unknown mode {self.mode!r}; use one of {sorted(MODES)}")
        if self.mode == "upsert" and not self.key:
            raise AirflowFailException("mode 'upsert' needs a key column")
        if self.mode == "replace-interval" and not self.interval_column:
            raise AirflowFailException("mode 'replace-interval' needs an interval_column")
        return render_statements(
            MODES[self.mode],
            dialect=dialect,
            table=quote_identifier(self.table),
            select=self.sql.strip().rstrip(";"),
            key=quote_identifier(self.key) if self.key else None,
            version_column=quote_identifier(self.version_column) if self.version_column else None,
            interval_column=quote_identifier(self.interval_column) if self.interval_column else None,
            incoming=incoming,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        hook, dialect = warehouse_hook(self.redshift_conn_id)
        incoming = temp_table_name("incoming")
        statements = self._statements(dialect, incoming)
        parameters = {**run_parameters(context), **self.parameters}
        with transaction(hook, dialect) as cursor:
            if self.restated_table:
                parameters = with_restated_hours(cursor, parameters, self.restated_table)
            counts = execute_statements(cursor, statements, parameters)
            # Rows read: what the select returned (into the upsert's temporary table, if any);
            # written: the last INSERT into the table itself.
            inserted = {statement.split()[2]: count for statement, count in zip(statements, counts, strict=True)
                        if statement.startswith("INSERT INTO")}
            written = inserted[quote_identifier(self.table)]
            audit = record_load(
                cursor, parameters, task_id=self.task_id, table=self.table,
                rows_read=inserted.get(incoming, written), rows_written=written,
            )
        self.log.info("%s (%s): %s rows written", self.table, self.mode, written)
        record_asset_events(context, self.outlets, audit, parameters)
        return audit

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the tables the select reads → the dimension table."""
        return load_lineage(self.redshift_conn_id, self.table, self.sql)
