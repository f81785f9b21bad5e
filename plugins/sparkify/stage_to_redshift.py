"""StageToRedshiftOperator: the run's JSON objects into a staging table."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from sparkify.lineage import staging_lineage
from sparkify.sources import ObjectSource, open_source
from sparkify.warehouse import (
    INCLUDE_DIR,
    execute_statements,
    quote_identifier,
    quote_literal,
    record_load,
    render_statements,
    run_parameters,
    temp_table_name,
    transaction,
    warehouse_hook,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

_JSONPATH = re.compile(r"""\$(?:\['([^']+)'\]|\.([A-Za-z_][A-Za-z0-9_]*))""")


def _snake_case(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()


def read_jsonpaths(path: str | Path) -> list[str]:
    """The source keys named by a Redshift JSONPaths file, in column order."""
    document = json.loads((INCLUDE_DIR / path).read_text())
    keys = []
    for expression in document["jsonpaths"]:
        match = _JSONPATH.fullmatch(expression)
        if not match:
            raise AirflowFailException(f"{path}: only top-level JSONPaths are supported, got {expression!r}")
        keys.append(match.group(1) or match.group(2))
    return keys


def _flag(value: bool | str, name: str) -> bool:
    """A boolean argument that may arrive rendered from a template ("True"/"False")."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise AirflowFailException(f"{name} must be true or false, got {value!r}")
    return text == "true"


def interval_keys(pattern: str, start: datetime, end: datetime) -> list[str]:
    """The keys a pattern names for an interval: its strftime codes filled in for each hour."""
    keys, hour = [], start
    while hour < end:
        key = hour.strftime(pattern)
        if key not in keys:
            keys.append(key)
        hour += timedelta(hours=1)
    return keys


class StageToRedshiftOperator(BaseOperator):
    """
    Stage the run's JSON objects into a staging table, as a batch owned by the run.

    Each JSON key named by the JSONPaths file lands in the column of the same
    name in snake_case (``firstName`` → ``first_name``), plus ``batch_id``: the
    run id. The batch is replaced as a whole in one transaction, so a retry
    never duplicates rows and runs of other hours never see it.

    On a ``postgres`` connection the operator lists and streams the objects
    itself (``file://`` or ``s3://``) into ``COPY … FROM STDIN``. On a
    ``redshift`` connection it issues ``COPY … FROM 's3://…' FORMAT AS JSON``
    with the JSONPaths file and an IAM role.

    With ``incremental`` the objects already staged into the table by any run
    (recorded in ``staged_objects``) are skipped: an hourly run reads only the
    song files that are new since the last one.

    :param table: staging table (templated)
    :param source: base URI of the bucket, ``s3://bucket/prefix`` or ``file:///folder`` (templated)
    :param s3_key: key of one object, or a prefix ending with ``/``; strftime codes
        (``%Y``, ``%m``, ``%d``, ``%H``) name the keys of every hour in the run's
        data interval, so one pattern serves hourly and daily runs (templated)
    :param jsonpaths: JSONPaths file under ``include/``, naming the keys to stage in column order
    :param incremental: skip objects staged before
    :param restage: with ``incremental``: forget what was staged before and stage every
        object again, replacing the whole staged table (templated: a bool, or "True"/"False")
    :param redshift_conn_id: warehouse connection, of type postgres or redshift (templated)
    :param aws_conn_id: AWS connection for S3 (templated)
    :param iam_role: Redshift only: ARN of the role COPY assumes to read S3 (templated)
    :param region: Redshift only: the bucket's region when it differs from the cluster's (templated)
    :param jsonpaths_uri: Redshift only: S3 URI of the same JSONPaths file (templated)
    :param manifest_prefix: Redshift only, with ``incremental``: S3 URI prefix where the
        COPY manifest of the new objects is written (templated)
    """

    template_fields: Sequence[str] = (
        "table",
        "source",
        "s3_key",
        "redshift_conn_id",
        "aws_conn_id",
        "iam_role",
        "region",
        "jsonpaths_uri",
        "manifest_prefix",
        "restage",
    )
    ui_color = "#358140"

    def __init__(
        self,
        *,
        table: str,
        source: str,
        s3_key: str,
        jsonpaths: str,
        incremental: bool = False,
        restage: bool | str = False,
        redshift_conn_id: str = "sparkify_warehouse",
        aws_conn_id: str | None = "aws_default",
        iam_role: str | None = None,
        region: str | None = None,
        jsonpaths_uri: str | None = None,
        manifest_prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.source = source
        self.s3_key = s3_key
        self.jsonpaths = jsonpaths
        self.incremental = incremental
        self.restage = restage
        self.redshift_conn_id = redshift_conn_id
        self.aws_conn_id = aws_conn_id
        self.iam_role = iam_role
        self.region = region
        self.jsonpaths_uri = jsonpaths_uri
        self.manifest_prefix = manifest_prefix

    def execute(self, context: Context) -> dict[str, Any]:
        hook, dialect = warehouse_hook(self.redshift_conn_id)
        fields = read_jsonpaths(self.jsonpaths)
        parameters = {**run_parameters(context), "table_name": self.table}
        restage = _flag(self.restage, "restage")
        if restage and not self.incremental:
            raise AirflowFailException("restage applies to incremental staging only")
        if restage:
            self.log.warning("Full re-stage: forgetting every staged object of %s", self.table)
        variables = {
            "dialect": dialect,
            "table": quote_identifier(self.table),
            "columns": ", ".join(quote_identifier(_snake_case(field)) for field in fields),
            "incremental": self.incremental,
            "restage": restage,
        }
        source = open_source(self.source, self.aws_conn_id)
        with transaction(hook, dialect) as cursor:
            execute_statements(cursor, render_statements("stage/begin_batch.sql", **variables), parameters)
            keys = interval_keys(self.s3_key, parameters["interval_start"], parameters["interval_end"])
            listed = {key: source.list_keys(key) for key in keys}
            objects = self._objects_to_stage(cursor, listed, source, parameters)
            self.staged_sources = [source.uri(key) for key, found in listed.items() if found] if objects else []
            if dialect == "redshift":
                rows = self._copy_from_s3(cursor, source, listed, objects, variables, parameters)
            else:
                rows = self._copy_from_stdin(cursor, source, objects, fields, variables, parameters)
            if objects:
                execute_statements(cursor, render_statements("stage/analyze.sql", **variables), parameters)
            audit = record_load(
                cursor, parameters, task_id=self.task_id, table=self.table, rows_read=rows, rows_written=rows,
                objects=objects, uri=source.uri,
            )
        self.log.info("Staged %s rows from %d objects into %s", rows, len(objects), self.table)
        return audit

    def _objects_to_stage(
        self, cursor: Any, listed: dict[str, list[str]], source: ObjectSource, parameters: dict[str, Any]
    ) -> list[str]:
        objects = sorted({key for keys in listed.values() for key in keys})
        if not objects:
            self.log.warning("No objects at %s: staging nothing", ", ".join(map(source.uri, listed)))
        # A full re-stage has just forgotten every staged object: nothing to look up.
        if self.incremental and objects and not _flag(self.restage, "restage"):
            execute_statements(cursor, render_statements("stage/staged_objects.sql"), parameters)
            staged = {row[0] for row in cursor.fetchall()}
            self.log.info("%d objects listed, %d staged before", len(objects), len(staged))
            objects = [key for key in objects if key not in staged]
        return objects

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the keys or prefixes that held the staged objects → the staging table."""
        return staging_lineage(self.redshift_conn_id, self.table, getattr(self, "staged_sources", []))

    def _copy_from_stdin(
        self,
        cursor: Any,
        source: ObjectSource,
        objects: list[str],
        fields: list[str],
        variables: dict[str, Any],
        parameters: dict[str, Any],
    ) -> int:
        if not hasattr(cursor, "copy"):
            raise AirflowFailException("staging into PostgreSQL needs psycopg 3 (see requirements.txt)")
        batch_id = parameters["batch_id"]
        rows = 0
        (copy_sql,) = render_statements("stage/copy_from_stdin.sql", **variables)
        with cursor.copy(copy_sql) as copy:
            for key, lines in source.read_objects(objects):
                for row in self._parse(source.uri(key), lines, fields):
                    copy.write_row((*row, batch_id))
                    rows += 1
        if self.incremental and objects:
            staged_at = datetime.now(timezone.utc).replace(tzinfo=None)
            (record_sql,) = render_statements("stage/record_objects_from_stdin.sql", **variables)
            with cursor.copy(record_sql) as copy:
                for key in objects:
                    copy.write_row((self.table, key, batch_id, staged_at))
        return rows

    @staticmethod
    def _parse(uri: str, lines: Iterable[bytes], fields: list[str]) -> Iterator[tuple[Any, ...]]:
        """One tuple per JSON line, in JSONPaths order; a bad line names its object and line."""
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise AirflowFailException(f"{uri} line {number}: not valid JSON ({error})") from None
            if not isinstance(record, dict):
                raise AirflowFailException(f"{uri} line {number}: expected a JSON object")
            yield tuple(record.get(name) for name in fields)

    def _copy_from_s3(
        self,
        cursor: Any,
        source: ObjectSource,
        listed: dict[str, list[str]],
        objects: list[str],
        variables: dict[str, Any],
        parameters: dict[str, Any],
    ) -> int | None:
        if not self.source.startswith("s3://"):
            raise AirflowFailException("Redshift stages from S3 only: set the source to an s3:// URI")
        if not self.iam_role or not self.jsonpaths_uri:
            raise AirflowFailException("Redshift staging needs iam_role and jsonpaths_uri")
        if not objects:
            return 0
        copy_variables = {
            **variables,
            "incoming": temp_table_name("incoming"),
            "iam_role": quote_literal(self.iam_role),
            "jsonpaths_uri": quote_literal(self.jsonpaths_uri),
            "region": quote_literal(self.region) if self.region else None,
            "manifest": self.incremental,
        }
        if self.incremental:
            manifest_uri, objects_csv_uri = self._write_manifest(source, objects, parameters)
            copy_variables["s3_uri"] = quote_literal(manifest_uri)
            execute_statements(cursor, render_statements("stage/copy_from_s3.sql", **copy_variables), parameters)
            record_variables = {**copy_variables, "s3_uri": quote_literal(objects_csv_uri)}
            execute_statements(
                cursor, render_statements("stage/record_objects_from_s3.sql", **record_variables), parameters
            )
        else:  # one COPY per key or prefix that holds objects, all in this transaction
            for key in (key for key, found in listed.items() if found):
                copy_variables["s3_uri"] = quote_literal(source.uri(key))
                statements = render_statements("stage/copy_from_s3.sql", **copy_variables)
                execute_statements(cursor, statements, parameters)
        return None  # Redshift reports loaded rows in STL_LOAD_COMMITS, not to the client.

    def _write_manifest(self, source: ObjectSource, objects: list[str], parameters: dict[str, Any]) -> tuple[str, str]:
        """Write the COPY manifest of the new objects and a CSV of their keys beside it."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        if not self.manifest_prefix or not self.manifest_prefix.startswith("s3://"):
            raise AirflowFailException("incremental Redshift staging needs manifest_prefix, an s3:// URI")
        batch = re.sub(r"[^A-Za-z0-9_.-]", "_", parameters["batch_id"])
        base = f"{self.manifest_prefix.rstrip('/')}/{self.table}/{batch}"
        manifest = {"entries": [{"url": source.uri(key), "mandatory": True} for key in objects]}
        staged_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        listing = io.StringIO()
        writer = csv.writer(listing)
        for key in objects:
            writer.writerow((self.table, key, parameters["batch_id"], staged_at))
        s3 = S3Hook(aws_conn_id=self.aws_conn_id)
        s3.load_string(json.dumps(manifest), key=f"{base}.manifest", replace=True)
        s3.load_string(listing.getvalue(), key=f"{base}.objects.csv", replace=True)
        return f"{base}.manifest", f"{base}.objects.csv"
