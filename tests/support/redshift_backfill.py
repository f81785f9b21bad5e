"""`make backfill` against Redshift without a cluster, for the tests of the AWS path:
``tools/backfill.py`` as it is, in a process of its own, whose Redshift driver connection is a
``RecordingConnection`` (tests/support/redshift_recording.py) from the moment Airflow is configured.
Every statement the backfill sends (its SELECT 1 check, the tasks') is written as JSON to the file
``$SPARKIFY_RECORDING`` names when the process ends. S3 is whatever the AWS settings reach (the
tests: moto in server mode, through ``AWS_ENDPOINT_URL``).

    SPARKIFY_RECORDING=statements.json python -m tests.support.redshift_backfill --from … --to … \\
        --source s3://bucket/prefix --warehouse '{"conn_type": "redshift", …}'
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

from tests.support.redshift_recording import RecordingConnection


def record(path: Path) -> None:
    """Replace the Redshift driver's connection by one that records, and write what it recorded at exit."""
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    connection = RecordingConnection()
    RedshiftSQLHook.get_conn = lambda self: connection  # type: ignore[method-assign]
    atexit.register(lambda: path.write_text(json.dumps({
        "statements": connection.statements, "commits": connection.commits, "rollbacks": connection.rollbacks,
    })))


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
