"""Lineage: the OpenLineage datasets the operators report (bucket objects → staging tables → star
tables), and the Airflow Assets of the star tables.

Names follow the OpenLineage naming spec. Objects: namespace ``s3://bucket`` and the key as
name (a prefix stands for the objects under it), or ``file`` and the path for a local folder.
Tables: namespace ``postgres://host:port`` or ``redshift://cluster.region:5439`` (a Serverless
workgroup in place of the cluster), name ``database.schema.table``. Nothing here imports
OpenLineage at module level, so parsing a DAG never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow.sdk import Asset

from sparkify.staging.restatement import Span, span_text

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

#: The schema the tables live in: the DDL and the SQL name them unqualified.
SCHEMA = "public"
_PLACEHOLDER = re.compile(r"%\(\w+\)s")
STAR_TABLES = ("songplays", "users", "songs", "artists", "time")


def star_asset(table: str) -> Asset:
    """The Airflow Asset of a star table, for the tasks that write it and the DAGs scheduled on it.

    Name and URI say which table, not where the warehouse is: the same DAG loads a local
    PostgreSQL and Redshift, and a DAG file reads no connection when it is parsed. The ``x-``
    scheme is Airflow's mark of a custom one: no provider normalizes it, so defining the
    Asset loads no provider code at parse time.
    """
    if table not in STAR_TABLES:
        raise ValueError(f"not a star table: {table!r}")
    return Asset(name=f"sparkify.{table}", uri=f"x-sparkify://warehouse/{table}", group="sparkify")


#: Updated when a run's quality checks passed: the star schema of the run's interval is complete.
STAR_SCHEMA_CHECKED = Asset(name="sparkify.star_schema_checked", uri="x-sparkify://warehouse/checked", group="sparkify")


def record_asset_events(context: Any, outlets: Iterable[Asset], figures: dict[str, Any],
                        spans: Sequence[dict[str, Any]] = (), restated: Sequence[Span] = ()) -> None:
    """Put a task's figures (its audit record), the run's interval and the hours it loaded (the bound
    parameters of its ``spans``: the interval and the ``restated`` hours) on the asset events of its
    outlets: each event then says what it changed, in the UI and to the DAGs scheduled on it."""
    events = context.get("outlet_events")
    if events is None:  # executed outside a DAG run: no asset events
        return
    extra = {**figures, "interval_start": context["data_interval_start"].isoformat(),
             "interval_end": context["data_interval_end"].isoformat()}
    if spans:
        extra["hours_loaded"] = [span_text((span["interval_start"], span["interval_end"])) for span in spans]
        extra["hours_restated"] = [span_text(span) for span in restated]
    for outlet in outlets:
        events[outlet].extra.update(extra)


def warehouse_namespace(conn_id: str) -> tuple[str, str]:
    """The warehouse connection's OpenLineage namespace, and its database: the provider hook's
    (``get_openlineage_database_info``), but for a Unix socket and the Data API, which it does not know."""
    from airflow.sdk import Connection

    connection = Connection.get(conn_id)
    extra = connection.extra_dejson
    if connection.conn_type == "postgres" and (connection.host or "").startswith("/"):
        # A Unix socket directory is a path, not a host: the server is on this host.
        return f"postgres://localhost:{connection.port or 5432}", connection.schema
    if extra.get("use_data_api"):
        identifier = extra.get("workgroup_name") or extra.get("cluster_identifier")
        region = extra.get("region_name") or _aws_region(extra.get("aws_conn_id", "aws_default"))
        return f"redshift://{identifier}.{region}:{connection.port or 5439}", extra.get("database") or connection.schema
    info = connection.get_hook().get_openlineage_database_info(connection)
    return f"{info.scheme}://{info.authority}", info.database


def _aws_region(aws_conn_id: str) -> str | None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=aws_conn_id, client_type="redshift-data").region_name


def table_datasets(conn_id: str, tables: Iterable[str]) -> list[Dataset]:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    namespace, database = warehouse_namespace(conn_id)
    return [Dataset(namespace=namespace, name=f"{database}.{SCHEMA}.{table}") for table in tables]


def object_dataset(uri: str) -> Dataset:
    """The dataset of an object or prefix URI (``s3://…`` or ``file://…``)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(uri)
    path = parts.path.rstrip("/")  # a prefix is named like its folder
    if parts.scheme == "s3":
        return Dataset(namespace=f"s3://{parts.netloc}", name=path.lstrip("/") or "/")
    return Dataset(namespace="file", name=unquote(path) or "/")


def tables_read(sql: str) -> list[str]:
    """The tables a statement reads, in name order, from the OpenLineage SQL parser."""
    from openlineage_sql import parse

    # Bound parameters are values: a NULL in their place parses the same.
    metadata = parse([_PLACEHOLDER.sub("NULL", sql)], dialect="postgres")
    return sorted({table.name for table in metadata.in_tables})


def staging_lineage(conn_id: str, table: str, sources: Sequence[str]) -> OperatorLineage[Any, Any]:
    """The objects (keys or prefixes) staged → the staging table."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[object_dataset(uri) for uri in sources], outputs=table_datasets(conn_id, [table])
    )


def load_lineage(conn_id: str, table: str, sql: str) -> OperatorLineage[Any, Any]:
    """The tables a load's SQL reads → the table it loads (a table is not its own input)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    inputs = [name for name in tables_read(sql) if name != table]
    return OperatorLineage(inputs=table_datasets(conn_id, inputs), outputs=table_datasets(conn_id, [table]))


def checks_lineage(conn_id: str, sqls: Iterable[str]) -> OperatorLineage[Any, Any]:
    """The tables the checks read; checks write nothing."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    tables = sorted({name for sql in sqls for name in tables_read(sql)})
    return OperatorLineage(inputs=table_datasets(conn_id, tables), outputs=[])
