"""The run's parameters: its batch, its interval, and the checks of numbers given to operators."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, TypedDict

from airflow.sdk.exceptions import AirflowFailException


def whole_number(value: int | str, name: str) -> int:
    """A non-negative integer argument that may arrive rendered from a template."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if number < 0:
        raise AirflowFailException(f"{name} must be a whole number >= 0, got {value!r}")
    return number


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


class RunParameters(TypedDict):
    """The bound parameters every SQL file may use (``%(batch_id)s``, ``%(interval_start)s``…): the run's
    batch and its interval, as naive UTC timestamps and as epoch milliseconds (the unit of ``ts``). A load
    covering several spans gets one set per span, each with that span's bounds
    (:func:`sparkify.staging.restatement.load_spans`)."""

    batch_id: str
    interval_start: datetime
    interval_end: datetime
    start_ms: int
    end_ms: int


def run_parameters(context: Any) -> RunParameters:
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


#: The epoch, naive UTC like every warehouse timestamp.
EPOCH = datetime(1970, 1, 1)


def epoch_ms(moment: datetime) -> int:
    """A naive UTC time as epoch milliseconds, the unit of ``ts``."""
    return int((moment - EPOCH).total_seconds() * 1000)


def flag(value: bool | str, name: str) -> bool:
    """A boolean argument that may arrive rendered from a template ("True"/"False")."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise AirflowFailException(f"{name} must be true or false, got {value!r}")
    return text == "true"
