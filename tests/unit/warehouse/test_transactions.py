"""Where a Data API load's batch may end: between spans, never inside a named batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify.warehouse.data_api import DATA_API_BATCH_LIMIT, DataApiCursor
from sparkify.warehouse.transactions import keep_together


class SentBatches:
    """A Data API warehouse that records the batches sent."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.hook = SimpleNamespace(conn=SimpleNamespace(describe_statement=lambda Id: {}))

    def run(self, sql: list[str], bound: dict[str, str], name: str | None = None) -> str:
        self.sent.append(sql)
        return f"batch-{len(self.sent)}"


def filled(cursor: DataApiCursor, statements: int) -> DataApiCursor:
    for number in range(statements):
        cursor.execute(f"DELETE FROM t WHERE n = {number}")
    return cursor


def test_statements_that_fit_stay_in_the_batch_and_those_that_do_not_start_the_next():
    warehouse = SentBatches()
    cursor = filled(DataApiCursor(warehouse), DATA_API_BATCH_LIMIT - 3)
    keep_together(cursor, 3)
    assert warehouse.sent == [] and len(cursor.statements) == DATA_API_BATCH_LIMIT - 3
    keep_together(cursor, 4)
    assert [len(batch) for batch in warehouse.sent] == [DATA_API_BATCH_LIMIT - 3] and cursor.statements == []


def test_a_named_batch_is_never_split():
    cursor = filled(DataApiCursor(SentBatches(), name="sparkify:staging_events:unit"), DATA_API_BATCH_LIMIT - 1)
    with pytest.raises(AirflowFailException, match="sparkify:staging_events:unit: 2 more statements"):
        keep_together(cursor, 2)
    assert cursor.warehouse.sent == []


def test_a_driver_cursor_is_left_alone():
    driver = SimpleNamespace(statements=["x"] * 100)
    keep_together(driver, 100)  # not a Data API transaction: one transaction whatever it holds
