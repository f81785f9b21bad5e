"""LoadFactOperator: the fact rows of the run's interval."""

from __future__ import annotations

from typing import Any

from sparkify.operators.base import TableLoadOperator, checked_identifier
from sparkify.warehouse.audit import add_count, record_load
from sparkify.warehouse.sql import quote_identifier
from sparkify.warehouse.transactions import Cursor, execute_named, keep_together


class LoadFactOperator(TableLoadOperator):
    """
    Replace a fact table's rows of the hours a run loads with the rows a select returns.

    Deleting the interval and inserting happen in one transaction under a table
    lock, so a retry, a re-run or two runs of the same hour at once leave
    exactly one copy of each fact, and readers never see the interval half-loaded.
    In ``update`` mode the SQL is an UPDATE of facts already loaded (late-arriving
    dimensions), run under the same lock.

    :param table: the fact table (templated)
    :param sql: the select, or the UPDATE in ``update`` mode (templated; see TableLoadOperator)
    :param mode: ``replace-interval`` (default) or ``update``
    :param interval_column: the timestamp column that places a row in an interval
    """

    modes = {"replace-interval": "modes/replace_interval.sql", "update": "modes/update_facts.sql"}
    ui_color = "#F98866"

    def __init__(self, *, mode: str = "replace-interval", interval_column: str = "start_time", **kwargs: Any) -> None:
        super().__init__(mode=mode, **kwargs)
        self.interval_column = checked_identifier(interval_column, "interval_column")

    def run_in_transaction(self, cursor: Cursor, dialect: str, parameters: dict[str, Any],
                           spans: list[dict[str, Any]]) -> dict[str, Any]:
        statements = self.mode_statements(dialect, interval_column=quote_identifier(self.interval_column))
        written: int | None = 0
        for span in spans:
            keep_together(cursor, len(statements))
            counts = execute_named(cursor, statements, span)
            if self.mode == "update":
                self.log.info("%s: updated %s rows", self.table, counts["update"])
            else:
                self.log.info("%s, %s to %s: replaced %s rows with %s", self.table, span["interval_start"],
                              span["interval_end"], counts["delete"], counts["insert"])
            written = add_count(written, counts["update" if self.mode == "update" else "insert"])
        return {**record_load(
            cursor, parameters, task_id=self.task_id, table=self.table, rows_read=written, rows_written=written,
        ), "mode": self.mode}
