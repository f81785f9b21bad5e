"""The environment of every local Airflow process (backfill, tests, local
services): one place, so they all see the same DAG folder, metadata database,
warehouse connection and source Variable.

Connections and Variables come from the environment (``AIRFLOW_CONN_*``,
``AIRFLOW_VAR_*``), as they would in a container, never from a file in the repo.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from tools import local_pg

REPO = Path(__file__).resolve().parents[1]
DEFAULT_HOME = REPO / ".local" / "airflow"
DEFAULT_SOURCE = REPO / ".local" / "sample"


def file_uri(path: str | Path) -> str:
    """``file:///abs/path`` for a local folder."""
    return Path(path).resolve().as_uri()


def connection_json(uri: str) -> str:
    """The ``sparkify_warehouse`` connection, in Airflow's JSON form, for a libpq URI
    (``postgresql://user:pass@host:port/db`` or a socket URI ``postgresql://user@/db?host=/dir``)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(uri)
    connection = {
        "conn_type": "postgres",
        "host": info.get("host"),
        "port": int(info["port"]) if info.get("port") else None,
        "login": info.get("user"),
        "password": info.get("password") or None,
        "schema": info.get("dbname"),
    }
    return json.dumps({key: value for key, value in connection.items() if value is not None})


def metadata_uri() -> str:
    """SQLAlchemy URI of Airflow's metadata database on the embedded PostgreSQL."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(local_pg.ensure_database("airflow"))
    return f"postgresql+psycopg2://{info.get('user', 'postgres')}@/airflow?host={quote(info['host'], safe='/')}"


def masked(uri: str) -> str:
    """A URI fit to print: any password replaced by ***."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(uri)
    if not info.get("password"):
        return uri
    return make_conninfo(**{**info, "password": "***"})


def airflow_environ(warehouse_uri: str, source_uri: str, airflow_home: Path | None = None) -> dict[str, str]:
    """Environment variables for a local Airflow process against this warehouse and source."""
    home = Path(airflow_home or DEFAULT_HOME)
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_uri(),
        "AIRFLOW_CONN_SPARKIFY_WAREHOUSE": connection_json(warehouse_uri),
        "AIRFLOW_VAR_SPARKIFY_SOURCE": source_uri.rstrip("/"),
    }
