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
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from tools import local_pg

REPO = Path(__file__).resolve().parents[1]
DEFAULT_HOME = REPO / ".local" / "airflow"
DEFAULT_SOURCE = REPO / ".local" / "sample"
#: Seconds to wait for a warehouse to answer a connection (libpq's connect_timeout, unless the URI gives
#: one): a server that accepts connections and never answers fails a task attempt in seconds, not minutes.
CONNECT_TIMEOUT = 10
#: libpq keywords that have a field of their own in an Airflow connection; the rest go to ``extra``.
_CONNECTION_FIELDS = {"host": "host", "port": "port", "user": "login", "password": "password", "dbname": "schema"}
#: The warehouses the DAG writes to (plugins/sparkify/warehouse/transactions.py): connection types.
WAREHOUSE_TYPES = ("postgres", "redshift")
#: Redshift's port when a redshift:// URI names none.
REDSHIFT_PORT = 5439


class WarehouseError(ValueError):
    """A warehouse given in a form the DAG cannot use."""


def file_uri(path: str | Path) -> str:
    """``file:///abs/path`` for a local folder."""
    return Path(path).resolve().as_uri()


def warehouse_connection(warehouse: str) -> dict:
    """The ``sparkify_warehouse`` connection, as the dict of Airflow's JSON form, from what a user gives
    ``make backfill`` or ``make airflow`` as WAREHOUSE:

    - a libpq URI (``postgresql://`` or ``postgres://``, a Unix socket's ``?host=/dir`` too, or libpq's
      ``host=… dbname=…`` form): type
      ``postgres``, libpq parameters in ``extra``, ``connect_timeout`` CONNECT_TIMEOUT unless given;
    - a ``redshift://user:password@host[:5439]/database[?key=value…]`` URI: type ``redshift`` over the
      driver (redshift_connector), the query's keys in ``extra`` (``true``/``false`` as booleans:
      ``iam=true&cluster_identifier=…``, ``iam=true&is_serverless=true&serverless_work_group=…``);
    - connection JSON (``{"conn_type": "redshift", …}``), e.g. the Data API's
      ``{"conn_type": "redshift", "schema": "dev", "extra": {"use_data_api": true, "workgroup_name": …}}``:
      taken as it is (a ``postgres`` one gains the connect timeout).
    """
    text = warehouse.strip()
    if text.startswith("{"):
        try:
            connection = json.loads(text)
        except json.JSONDecodeError as error:
            raise WarehouseError(f"the warehouse is not valid connection JSON: {error}") from None
        if not isinstance(connection, dict) or connection.get("conn_type") not in WAREHOUSE_TYPES:
            raise WarehouseError(f"the warehouse connection's conn_type must be one of {WAREHOUSE_TYPES}")
        if connection["conn_type"] == "postgres":
            extra = connection.get("extra") or {}
            extra = json.loads(extra) if isinstance(extra, str) else extra
            connection = {**connection, "extra": {"connect_timeout": str(CONNECT_TIMEOUT), **extra}}
        return connection
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme == "redshift":
        return _redshift_uri_connection(text)
    if scheme not in ("postgresql", "postgres", ""):  # "": libpq's keyword=value form
        raise WarehouseError("the warehouse must be a postgresql:// or redshift:// URI, or connection JSON "
                             f"(conn_type postgres or redshift), not {scheme or 'that'}")
    try:
        return _libpq_connection(text)
    except Exception as error:  # psycopg's ProgrammingError: not a conninfo
        raise WarehouseError(f"the warehouse is not a libpq URI or conninfo: {error}") from None


def _libpq_connection(uri: str) -> dict:
    from psycopg.conninfo import conninfo_to_dict

    connection: dict = {"conn_type": "postgres"}
    extra = {"connect_timeout": str(CONNECT_TIMEOUT)}
    for key, value in conninfo_to_dict(uri).items():
        if key in _CONNECTION_FIELDS:
            connection[_CONNECTION_FIELDS[key]] = int(value) if key == "port" else value
        else:
            extra[key] = value
    connection["extra"] = extra
    return {key: value for key, value in connection.items() if value not in (None, "")}


def _redshift_uri_connection(uri: str) -> dict:
    parts = urlsplit(uri)
    extra: dict = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        extra[key] = {"true": True, "false": False}.get(value.lower(), value)
    connection = {
        "conn_type": "redshift",
        "host": parts.hostname,
        "port": parts.port or REDSHIFT_PORT,
        "login": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "schema": unquote(parts.path.lstrip("/")) or None,
        "extra": extra,
    }
    if not connection["host"] and not extra.get("use_data_api"):
        raise WarehouseError("a redshift:// warehouse names its endpoint: redshift://user:password@host:5439/dev")
    return {key: value for key, value in connection.items() if value not in (None, "", {})}


def connection_json(uri: str) -> str:
    """The ``sparkify_warehouse`` connection in Airflow's JSON form (``AIRFLOW_CONN_…``), from any form
    ``warehouse_connection`` takes, e.g. ``postgresql://user:pass@host:port/db?sslmode=require`` or a
    Unix socket's ``postgresql://user:@/db?host=/socket/dir``."""
    return json.dumps(warehouse_connection(uri))


def postgres_conninfo(connection: dict) -> str:
    """A libpq URI of a ``postgres`` warehouse connection (its extra as libpq parameters)."""
    from psycopg.conninfo import make_conninfo

    fields = {libpq: connection.get(field) for libpq, field in _CONNECTION_FIELDS.items()}
    return make_conninfo("", **{key: value for key, value in {**fields, **connection.get("extra", {})}.items()
                                if value not in (None, "")})


def masked(uri: str) -> str:
    """A warehouse fit to print (any of ``warehouse_connection``'s forms): any password replaced by ``***``."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    text = uri.strip()
    if text.startswith("{") or text.lower().startswith("redshift://"):
        try:
            connection = warehouse_connection(text)
        except WarehouseError:
            return "(the warehouse given)"
        if connection.get("password"):
            connection["password"] = "***"
        if text.startswith("{"):
            return json.dumps(connection)
        login = f"{connection.get('login', '')}{':***' if connection.get('password') else ''}@"
        return f"redshift://{login if login != '@' else ''}{connection.get('host', '')}:{connection.get('port')}/" \
               f"{connection.get('schema', '')}"
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

    :param warehouse_uri: the warehouse, the ``sparkify_warehouse`` connection: a libpq or ``redshift://``
        URI, or connection JSON (``warehouse_connection``)
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
