"""The environment of every local Airflow process (backfill, tests, local
services): one place, so they all see the same DAG folder, metadata database,
warehouse connection and source Variable.

Airflow reads its configuration once, when first imported: put this
environment in ``os.environ`` (or a child's ``env``) before that.
Connections and Variables come from the environment (``AIRFLOW_CONN_*``,
``AIRFLOW_VAR_*``), as they would in a container, never from a file in the
repo; ``aws_default`` is left to the usual AWS sources.

``$SPARKIFY_DAGS_FOLDER`` swaps in another DAG folder (a prototype or
benchmark DAG), leaving everything else as is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from tools import local_pg

REPO = Path(__file__).resolve().parents[1]
DEFAULT_HOME = REPO / ".local" / "airflow"
DEFAULT_SOURCE = REPO / ".local" / "sample"
#: Seconds to wait for a warehouse to answer a connection (libpq's connect_timeout, unless the URI gives
#: one): a server that accepts connections and never answers fails a task attempt in seconds, not minutes.
CONNECT_TIMEOUT = 10
#: libpq keywords that have a field of their own in an Airflow connection; the rest go to ``extra``.
_CONNECTION_FIELDS = {"host": "host", "port": "port", "user": "login", "password": "password", "dbname": "schema"}


def file_uri(path: str | Path) -> str:
    """``file:///abs/path`` for a local folder."""
    return Path(path).resolve().as_uri()


def connection_json(uri: str) -> str:
    """The ``sparkify_warehouse`` connection in Airflow's JSON form, from a libpq URI:
    ``postgresql://user:pass@host:port/db?sslmode=require`` or a Unix socket's
    ``postgresql://user:@/db?host=/socket/dir``. Other libpq parameters land in ``extra``,
    where the postgres hook passes them on; ``connect_timeout`` defaults to CONNECT_TIMEOUT."""
    from psycopg.conninfo import conninfo_to_dict

    connection: dict = {"conn_type": "postgres"}
    extra = {"connect_timeout": str(CONNECT_TIMEOUT)}
    for key, value in conninfo_to_dict(uri).items():
        if key in _CONNECTION_FIELDS:
            connection[_CONNECTION_FIELDS[key]] = int(value) if key == "port" else value
        else:
            extra[key] = value
    connection["extra"] = extra
    return json.dumps({key: value for key, value in connection.items() if value not in (None, "")})


def masked(uri: str) -> str:
    """A URI fit to print: any password replaced by ``***``."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(uri)
    return make_conninfo(**{**info, "password": "***"}) if info.get("password") else uri


def metadata_uri(database: str = "airflow") -> str:
    """SQLAlchemy URI of Airflow's metadata database on the embedded PostgreSQL (started and
    created if needed), over its Unix socket."""
    from psycopg.conninfo import conninfo_to_dict

    socket_dir = conninfo_to_dict(local_pg.ensure_database(database))["host"]
    return f"postgresql+psycopg2://postgres@/{database}?host={quote(socket_dir, safe='/')}"


def airflow_environ(
    warehouse_uri: str, source_uri: str, airflow_home: Path | None = None, metadata_database: str = "airflow"
) -> dict[str, str]:
    """Environment variables for a local Airflow process against this warehouse and source.

    :param warehouse_uri: libpq URI of the warehouse, the ``sparkify_warehouse`` connection
    :param source_uri: base URI of the bucket (``file:///…`` or ``s3://bucket/prefix``),
        the ``sparkify_source`` Variable
    :param airflow_home: Airflow's home (logs, generated config); default ``.local/airflow``
    :param metadata_database: the embedded PostgreSQL's database for Airflow's metadata
        (tests and benchmarks use their own, beside a developer's ``make airflow``)
    """
    home = Path(airflow_home or DEFAULT_HOME)
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": os.environ.get("SPARKIFY_DAGS_FOLDER") or str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Real metadata database and task runs, not the test mode that fakes parts of them.
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # The metadata database is PostgreSQL, so local services can run tasks in parallel.
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_uri(metadata_database),
        # Local output goes to files and CI logs: no colour codes in them.
        "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
        "AIRFLOW_CONN_SPARKIFY_WAREHOUSE": connection_json(warehouse_uri),
        "AIRFLOW_VAR_SPARKIFY_SOURCE": source_uri.rstrip("/"),
    }
