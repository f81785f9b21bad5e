"""LoadDimensionOperator: a dimension table from a select, in one of four modes."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from sparkify.operators.base import TableLoadOperator, checked_identifier
from sparkify.warehouse.audit import add_count, record_load
from sparkify.warehouse.sql import quote_identifier, temp_table_name
from sparkify.warehouse.transactions import Cursor, execute_named, keep_together


class LoadDimensionOperator(TableLoadOperator):
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
    :param sql: the select (templated; see TableLoadOperator)
    :param mode: ``truncate-insert`` (default), ``append``, ``upsert`` or ``replace-interval``
    :param key: the key column, for ``upsert``
    :param version_column: for ``upsert``: the column that orders two versions of a row
    :param interval_column: for ``replace-interval``: the timestamp column that places a row in an hour
    """

    modes = {
        "truncate-insert": "modes/truncate_insert.sql",
        "append": "modes/append.sql",
        "upsert": "modes/upsert.sql",
        "replace-interval": "modes/replace_interval.sql",
    }
    ui_color = "#80BD9E"

    def __init__(
        self,
        *,
        mode: str = "truncate-insert",
        key: str | None = None,
        version_column: str | None = None,
        interval_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        if mode == "upsert" and not key:
            raise AirflowFailException("mode 'upsert' needs a key column")
        if mode == "replace-interval" and not interval_column:
            raise AirflowFailException("mode 'replace-interval' needs an interval_column")
        self.key = checked_identifier(key, "key")
        self.version_column = checked_identifier(version_column, "version_column")
        self.interval_column = checked_identifier(interval_column, "interval_column")

    def run_in_transaction(self, cursor: Cursor, dialect: str, parameters: dict[str, Any],
                           spans: list[dict[str, Any]]) -> dict[str, Any]:
        statements = self.mode_statements(
            dialect,
            key=quote_identifier(self.key) if self.key else None,
            version_column=quote_identifier(self.version_column) if self.version_column else None,
            interval_column=quote_identifier(self.interval_column) if self.interval_column else None,
            incoming=temp_table_name("incoming"),
        )
        read: int | None = 0
        written: int | None = 0
        for span in spans:
            keep_together(cursor, len(statements))
            counts = execute_named(cursor, statements, span)
            # Read: what the select returned (into the upsert's temporary table, if any); written: the
            # INSERT into the table itself.
            read = add_count(read, counts.get("fill_incoming", counts["insert"]))
            written = add_count(written, counts["insert"])
        self.log.info("%s (%s): %s rows written", self.table, self.mode, written)
        return {**record_load(
            cursor, parameters, task_id=self.task_id, table=self.table, rows_read=read, rows_written=written,
        ), "mode": self.mode}
