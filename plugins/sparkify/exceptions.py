"""The exceptions the package's modules raise to each other. A task itself fails with Airflow's:
``AirflowFailException`` for what a retry cannot fix, ``AirflowException`` for the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkify.staging.records import Rejected


class ObjectsRefused(Exception):
    """Objects with more bad records than ``max_errors`` allows, or a record over the size limit: the task
    fails naming the first bad record (file and line), and these objects' versions are set aside."""

    def __init__(self, keys: Sequence[str], message: str) -> None:
        super().__init__(message)
        self.keys = list(keys)
        self.message = message


class TooManyBadRecords(Exception):
    """More bad records than ``max_errors`` allows; the first one is named, ``last`` is the one over the limit."""

    def __init__(self, rejected: list[Rejected], max_errors: int) -> None:
        super().__init__(f"{rejected[0]} ({len(rejected)} bad records, more than max_errors={max_errors})")
        self.last = rejected[-1]


class RecordTooLarge(Exception):
    """A record over the size limit, in the object ``key``: it fails the object whatever ``max_errors``,
    as Redshift's COPY fails on a JSON object or array over 4 MB."""

    def __init__(self, key: str | None, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.key, self.line, self.reason = key, line, reason


class BatchFailed(Exception):
    """A Data API batch (or statement) that ended FAILED or ABORTED: its id, status and Redshift's error (not the
    statements, which the provider hook's error quotes whole, a COPY's keys included when there is no role)."""

    def __init__(self, statement_id: str, status: str, error: str) -> None:
        super().__init__(f"Data API statement {statement_id} {status}: {error}")
        self.statement_id = statement_id
