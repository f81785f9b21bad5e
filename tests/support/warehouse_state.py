"""A Redshift warehouse's bookkeeping as the stand-ins answer it: what ``staged_objects`` holds and which hours
runs have loaded, given by the test (or the benchmark) instead of a queue of results in the order the reads
come. The recording driver (``AnsweringConnection``) and the Data API (``AnsweringDataApi``) answer each read
of the staging operator from it; the Data API also lists the statements sent by name (``ListStatements``),
may hold statements an earlier attempt sent, and fails the batches a test chooses.

The state is what the test says: the statements sent are recorded, never applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tests.support.data_api_service import DataApiService
from tests.support.redshift_recording import RecordingConnection, RecordingCursor

_UNIT = re.compile(r"LEFT\(object_key, \d+\) = '((?:[^']|'')*)'")


@dataclass
class WarehouseState:
    """staged_objects records (key → (version, first_ts, last_ts, rejected_at, batch_id, row_count,
    rejected_reason)) and loaded intervals, of the staging table the operator reads them for."""

    staged: dict[str, tuple] = field(default_factory=dict)
    loaded: list[tuple[datetime, datetime]] = field(default_factory=list)
    #: What the load errors of a failed COPY say: (file URI, line, column, message) rows.
    load_errors: list[tuple[str, int, str, str]] = field(default_factory=list)
    #: The records the retention finds unused for long: (key, first_ts, last_ts) rows.
    expired: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    #: The hours the run restated (``restatements``, over its attempts), which its loads read back.
    restated: list[tuple[datetime, datetime]] = field(default_factory=list)
    #: What a unit's records say its rows cover once the run staged it (unit key → first and last ts): the
    #: statements sent are not applied, so a test says what the COPY loaded.
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)

    def record(self, key: str, version: str, first_ts: int | None = None, last_ts: int | None = None,
               rejected_at: datetime | None = None, batch_id: str = "earlier", reason: str | None = None) -> None:
        self.staged[key] = (version, first_ts, last_ts, rejected_at, batch_id, None, reason)

    def answer(self, sql: str, parameters: dict[str, Any]) -> list[tuple]:
        """The rows a read returns, as the warehouse in this state would."""
        text = " ".join(sql.split())
        if text.startswith("SELECT object_key, version") and "FROM staged_objects" in text:
            unit = _UNIT.search(text)
            prefix = unit.group(1).replace("''", "'") if unit else ""
            return [(key, *record[:3], record[3], record[4], record[5], record[6])
                    for key, record in sorted(self.staged.items()) if key.startswith(prefix)]
        if text.startswith("SELECT MIN(first_ts), MAX(last_ts) FROM staged_objects"):
            prefix = _UNIT.search(text).group(1)
            if prefix in self.coverage:
                return [self.coverage[prefix]]
            found = [record for key, record in self.staged.items() if key.startswith(prefix)]
            return [(min((r[1] for r in found if r[1] is not None), default=None),
                     max((r[2] for r in found if r[2] is not None), default=None))]
        if text.startswith("SELECT interval_start, interval_end FROM loaded_intervals"):
            start, end = (_timestamp(parameters[name]) for name in ("hours_start", "hours_end"))
            return [(first, last) for first, last in self.loaded if first < end and last > start]
        if text.startswith("SELECT TRIM(file_name), line_number"):
            return list(self.load_errors)
        if text.startswith("SELECT object_key, first_ts, last_ts FROM staged_objects"):
            return list(self.expired)
        if text.startswith("SELECT hours_start, hours_end FROM restatements"):
            return list(self.restated)
        if text.startswith("SELECT COUNT(*)"):
            return [(0,)]
        # A quality check's labelled figures (SELECT 'label', COUNT(*) … UNION ALL …), all 0 as on a sound
        # warehouse; any other read (a catalog's listings…) finds nothing.
        return [(label, 0) for label in re.findall(r"SELECT\s+'([^']*)'\s*,", text)]


def _timestamp(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class AnsweringCursor(RecordingCursor):
    def fetchall(self) -> list:
        if self.connection.results:
            return self.connection.results.pop(0)
        return self.connection.state.answer(self.connection.statements[-1], self.connection.parameters[-1] or {})


class AnsweringConnection(RecordingConnection):
    """The recording driver connection, its reads answered from a :class:`WarehouseState` (a test's queued
    ``results`` first)."""

    def __init__(self, state: WarehouseState) -> None:
        super().__init__()
        self.state = state

    def cursor(self) -> AnsweringCursor:
        return AnsweringCursor(self)


def data_api_value(value: Any) -> dict[str, Any]:
    """A Python value as a Data API result field."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, datetime):
        return {"stringValue": value.isoformat(sep=" ")}
    return {"stringValue": str(value)}


class AnsweringDataApi(DataApiService):
    """The Data API over a :class:`WarehouseState`: reads answered from it (a test's queued ``results``
    first), batches recorded with their StatementName and listed by it (ListStatements; botocore hands the
    caller what this returns as it is, so times are datetimes, as botocore would make them), and the
    batches ``failing`` picks (a predicate on their statements) ending FAILED with Redshift's COPY error.
    :meth:`earlier` adds a batch an earlier attempt sent (still running for some polls, finished or failed)."""

    COPY_FAILED = ("ERROR: Load into table 'incoming_0123456789ab' failed. Check 'sys_load_error_detail' "
                   "system table for details.")

    def __init__(self, state: WarehouseState) -> None:
        super().__init__()
        self.state = state
        self.failing: Callable[[list[str]], bool] = lambda sqls: False
        #: Redshift's error for a failing batch.
        self.error = self.COPY_FAILED
        self.names: dict[str, str | None] = {}

    def earlier(self, name: str, status: str, polls: int = 0) -> str:
        """A batch sent under ``name`` by an earlier attempt: FINISHED, FAILED, or STARTED for ``polls``
        DescribeStatement calls and FINISHED then; its id."""
        started = self._start(["-- an earlier attempt's batch"], records=None)
        self.names[started["Id"]] = name
        self.statements[started["Id"]].update(failed=status == "FAILED", polls=polls if status == "STARTED" else 0)
        return started["Id"]

    def ExecuteStatement(self, request: dict) -> dict:  # noqa: N802  (the operation names)
        if self.results:
            records = self.results.pop(0)
        else:
            parameters = {entry["name"]: entry["value"] for entry in request.get("Parameters", [])}
            rows = self.state.answer(request["Sql"], parameters)
            records = [[data_api_value(value) for value in row] for row in rows]
        return self._start([request["Sql"]], records=records)

    def BatchExecuteStatement(self, request: dict) -> dict:  # noqa: N802
        started = self._start(request["Sqls"], records=None)
        self.names[started["Id"]] = request.get("StatementName")
        self.statements[started["Id"]]["failed"] = self.failing(request["Sqls"])
        return started

    def _start(self, sqls: list[str], records: list[list[dict]] | None) -> dict:
        started = super()._start(sqls, records)
        self.statements[started["Id"]]["created"] = datetime.now(timezone.utc)
        return started

    def _status(self, statement: dict) -> str:
        if statement["polls"]:
            return "STARTED"
        return "FAILED" if statement.get("failed") else "FINISHED"

    def DescribeStatement(self, request: dict) -> dict:  # noqa: N802
        statement = self.statements[request["Id"]]
        if statement["polls"]:
            statement["polls"] -= 1
            return {"Id": request["Id"], "Status": "STARTED", "CreatedAt": statement["created"]}
        if statement.get("failed"):
            return {"Id": request["Id"], "Status": "FAILED", "Error": self.error, "CreatedAt": statement["created"],
                    "QueryString": "; ".join(statement["sqls"])}
        return {**super().DescribeStatement(request), "CreatedAt": statement["created"]}

    def ListStatements(self, request: dict) -> dict:  # noqa: N802
        prefix = request.get("StatementName", "")
        listed = [{"Id": statement_id, "StatementName": name, "Status": self._status(self.statements[statement_id]),
                   "CreatedAt": self.statements[statement_id]["created"], "IsBatchStatement": True}
                  for statement_id, name in self.names.items() if name and name.startswith(prefix)]
        return {"Statements": listed}

    def batches(self) -> list[dict]:
        return self.named("BatchExecuteStatement")


def serve_data_api(monkeypatch: Any, service: DataApiService) -> DataApiService:
    """Make the warehouse connection a Serverless workgroup behind the Data API, answered by ``service``
    (registered on every redshift-data client the provider hook creates; botocore still validates each
    request), with ``aws_default`` holding fake keys."""
    import json

    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook

    from tests.support.tasks import WAREHOUSE_CONN

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "AKIAFAKEFAKEFAKEFAKE", "password": "fake-secret-access-key",
        "extra": {"region_name": "us-west-2"},
    }))
    monkeypatch.setenv(WAREHOUSE_CONN, json.dumps({
        "conn_type": "redshift", "schema": "dev",
        "extra": {"use_data_api": True, "workgroup_name": "sparkify", "poll_interval": 0},
    }))
    real_client = RedshiftDataHook.get_client_type

    def client(self: Any, *args: Any, **kwargs: Any) -> Any:
        created = real_client(self, *args, **kwargs)
        created.meta.events.register("before-call.redshift-data", service)
        return created

    monkeypatch.setattr(RedshiftDataHook, "get_client_type", client)
    return service
