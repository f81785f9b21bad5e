"""`make backfill` against Redshift without a cluster, for the tests of the AWS path:
``tools/backfill.py`` as it is, in a process of its own, whose Redshift driver connection is a
``RecordingConnection`` (tests/support/redshift_recording.py) and whose Data API client answers
through ``DataApiService`` (tests/support/data_api_service.py), from the moment Airflow is
configured. Both answer as an empty warehouse does (a count is 0). Every statement the backfill
sends (its SELECT 1 check, the tasks') is written as JSON to the file ``$SPARKIFY_RECORDING`` names
when the process ends: ``statements``, ``commits`` and ``rollbacks`` of the driver; ``queries`` and
``batches``, the Data API's requests (``Sql`` or ``Sqls``, and the target), in order.
S3 is whatever the AWS settings reach (the tests: moto in server mode, through ``AWS_ENDPOINT_URL``).

    SPARKIFY_RECORDING=statements.json python -m tests.support.redshift_backfill --from … --to … \\
        --source s3://bucket/prefix --warehouse '{"conn_type": "redshift", …}'
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
from pathlib import Path

from tests.support.data_api_service import DataApiService
from tests.support.redshift_recording import RecordingConnection


class EmptyWarehouseDataApi(DataApiService):
    """The Data API of an empty warehouse: a query's counts are 0, as the recording connection's."""

    def ExecuteStatement(self, request: dict) -> dict:  # noqa: N802  (the operation's name)
        sql = " ".join(request["Sql"].split())
        if sql.upper() == "SELECT 1":
            records = [[{"longValue": 1}]]
        elif sql.upper().startswith("SELECT COUNT(*)"):
            records = [[{"longValue": 0}]]
        else:  # a quality check's labelled figures, 0; any other read finds nothing
            records = [[{"stringValue": label}, {"longValue": 0}] for label in re.findall(r"SELECT '([^']*)' ?,", sql)]
        return self._start([request["Sql"]], records=records)

    def ListStatements(self, request: dict) -> dict:  # noqa: N802
        """An empty warehouse ran no batch before: a staging unit's batch is sent."""
        return {"Statements": []}


def record(path: Path) -> None:
    """Replace the Redshift driver's connection and the Data API by ones that record, and write what
    they recorded at exit."""
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    connection = RecordingConnection()
    RedshiftSQLHook.get_conn = lambda self: connection  # type: ignore[method-assign]
    service = EmptyWarehouseDataApi()
    real_client = RedshiftDataHook.get_client_type

    def client(self, *args, **kwargs):
        created = real_client(self, *args, **kwargs)
        created.meta.events.register("before-call.redshift-data", service)
        return created

    RedshiftDataHook.get_client_type = client  # type: ignore[method-assign]

    def write() -> None:
        path.write_text(json.dumps({
            "statements": connection.statements, "commits": connection.commits, "rollbacks": connection.rollbacks,
            "batches": [request for name, request in service.calls if name == "BatchExecuteStatement"],
            "queries": [request for name, request in service.calls if name == "ExecuteStatement"],
        }))

    atexit.register(write)


def main(argv: list[str] | None = None) -> int:
    from tools import backfill

    configured = backfill.migrate_if_needed

    def migrate_then_record() -> str:
        # Airflow is configured (its environment set) by now: the hook may be imported.
        done = configured()
        record(Path(os.environ["SPARKIFY_RECORDING"]))
        return done

    backfill.migrate_if_needed = migrate_then_record
    return backfill.main(argv)


if __name__ == "__main__":
    sys.exit(main())
