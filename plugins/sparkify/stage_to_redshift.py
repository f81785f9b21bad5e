"""StageToRedshiftOperator: the run's JSON objects into a staging table."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from sparkify.lineage import staging_lineage
from sparkify.records import MAX_RECORD_BYTES, Rejected, TooManyBadRecords
from sparkify.sources import ObjectSource, copy_compression, open_source
from sparkify.warehouse import (
    INCLUDE_DIR,
    DataApiCursor,
    execute_statements,
    quote_identifier,
    quote_literal,
    record_load,
    render_statements,
    run_parameters,
    secrets_redacted,
    temp_table_name,
    transaction,
    warehouse_hook,
    whole_number,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from sparkify.binary_copy import StagedRows

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


#: A row number in a COPY error's context ("COPY staging_events, line 12, column gender").
_COPY_LINE = re.compile(r"COPY \S+, line (\d+)")


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

    Bad records follow Redshift's MAXERROR rule: up to ``max_errors`` of them go
    to the ``quarantine`` table (object, line, reason, raw text) and the task
    succeeds with a warning; one more fails it, naming the first, and nothing of
    the run is committed (see :mod:`sparkify.records`).

    With ``incremental`` the objects already staged into the table by any run
    (recorded in ``staged_objects``) are skipped: an hourly run reads only the
    song files that are new since the last one.

    With ``retention_hours`` the batches of other runs staged longer ago than that
    (by their ``load_audit`` record) are deleted in the same transaction, once this
    run's batch is in, so an append-only staging table stays bounded.

    :param table: staging table (templated)
    :param source: base URI of the bucket, ``s3://bucket/prefix`` or ``file:///folder`` (templated)
    :param s3_key: key of one object, or a prefix ending with ``/``; strftime codes
        (``%Y``, ``%m``, ``%d``, ``%H``) name the keys of every hour in the run's
        data interval, so one pattern serves hourly and daily runs (templated)
    :param spill_hours: also read the objects named for this many hours before and after
        the interval, so events filed in a neighbouring object (a day file cut a little
        late) still reach the run that owns their hour (templated)
    :param jsonpaths: JSONPaths file under ``include/``, naming the keys to stage in column order
    :param incremental: skip objects staged before
    :param restage: with ``incremental``: forget what was staged before and stage every
        object again, replacing the whole staged table (templated: a bool, or "True"/"False")
    :param max_errors: how many bad records a run may quarantine before it fails (templated)
    :param retention_hours: delete the batches of other runs staged more than this many
        hours ago; 0 or None keeps every batch. Not for incremental tables, whose rows are
        the cumulative catalog (templated)
    :param max_record_bytes: PostgreSQL only: the largest JSON record accepted (Redshift's is 4 MB)
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
        "max_errors",
        "spill_hours",
        "retention_hours",
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
        max_errors: int | str = 0,
        spill_hours: int | str = 0,
        retention_hours: int | str | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
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
        self.max_errors = max_errors
        self.spill_hours = spill_hours
        self.retention_hours = retention_hours
        self.max_record_bytes = max_record_bytes
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
        max_errors = whole_number(self.max_errors, "max_errors")
        if restage and not self.incremental:
            raise AirflowFailException("restage applies to incremental staging only")
        retention = whole_number(self.retention_hours or 0, "retention_hours")
        if retention and self.incremental:
            raise AirflowFailException("retention_hours applies to append-only staging: an incremental table is "
                                       "the cumulative catalog every run joins")
        if restage:
            self.log.warning("Full re-stage: forgetting every staged object of %s", self.table)
        variables = {
            "dialect": dialect,
            "table": quote_identifier(self.table),
            "columns": ", ".join(quote_identifier(_snake_case(field)) for field in fields),
            "incremental": self.incremental,
            "restage": restage,
            "max_errors": max_errors,
        }
        source = open_source(self.source, self.aws_conn_id)
        with transaction(hook, dialect) as cursor:
            execute_statements(cursor, render_statements("stage/begin_batch.sql", **variables), parameters)
            spill = timedelta(hours=whole_number(self.spill_hours, "spill_hours"))
            keys = interval_keys(self.s3_key, parameters["interval_start"] - spill, parameters["interval_end"] + spill)
            listed = {key: source.list_keys(key) for key in keys}
            objects = self._objects_to_stage(cursor, listed, source, parameters)
            self.staged_sources = [source.uri(key) for key, found in listed.items() if found] if objects else []
            if dialect == "redshift":
                rows, rejected = self._copy_from_s3(cursor, source, listed, objects, variables, parameters)
                ignored = {}
            else:
                staged = self._copy_from_stdin(cursor, source, objects, fields, variables, parameters)
                rows, rejected, ignored = staged.rows, len(staged.rejected), dict(staged.unknown_keys)
                self._quarantine(cursor, staged.rejected, parameters)
            purged = self._purge(cursor, variables, parameters, retention) if retention else (0, 0)
            if objects or purged[0]:
                execute_statements(cursor, render_statements("stage/analyze.sql", **variables), parameters)
            audit = record_load(
                cursor, parameters, task_id=self.task_id, table=self.table, rows_read=rows, rows_written=rows,
                rows_rejected=rejected, objects=objects, uri=source.uri,
            )
        self.log.info("Staged %s rows from %d objects into %s", rows, len(objects), self.table)
        if rejected:
            self.log.warning(
                "%d bad records (max_errors=%d) are in the quarantine table of batch %s",
                rejected, max_errors, parameters["batch_id"],
            )
        if ignored:
            self.log.warning("Keys not in %s were ignored: %s", self.jsonpaths, ignored)
        return {**audit, "ignored_keys": ignored, "purged_batches": purged[0], "purged_rows": purged[1]}

    def _purge(
        self, cursor: Any, variables: dict[str, Any], parameters: dict[str, Any], retention: int
    ) -> tuple[int, int | None]:
        """Delete the other batches staged more than ``retention`` hours ago; (batches, rows) deleted.

        Rows are None where the warehouse does not say (the Data API).
        """
        purge_before = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=retention)
        *lock, listing, delete = render_statements("stage/purge_batches.sql", **variables)
        purge_parameters = {**parameters, "purge_before": purge_before}
        if lock:
            execute_statements(cursor, lock, purge_parameters)
            if not cursor.fetchone()[0]:
                self.log.info("Another purge or a load reading %s holds its purge lock: the next run purges",
                              self.table)
                return 0, 0
        execute_statements(cursor, [listing], purge_parameters)
        batches = cursor.fetchall()
        if not batches:
            self.log.info("No batch of %s staged before %s (retention %d hours) to purge",
                          self.table, purge_before, retention)
            return 0, 0
        (rows,) = execute_statements(cursor, [delete], purge_parameters)
        self.log.info(
            "Purged %d batches (%s rows) of %s staged before %s (retention %d hours); the oldest, %s, staged at %s",
            len(batches), "?" if rows is None else rows, self.table, purge_before, retention,
            batches[0][0], batches[0][1],
        )
        return len(batches), rows

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
    ) -> StagedRows:
        """Stream the objects into one binary COPY; return the account of rows, rejects and ignored keys.

        A value the server refuses (a string longer than its column, a NUL character)
        stops the COPY at a row it names: the pass is undone to its savepoint and run
        again without that line, which then counts as rejected.
        """
        import psycopg

        # Imported here, not with the module: Arrow is heavy, and the DAG file imports this operator.
        from sparkify.binary_copy import SEGMENT_BYTES, BinaryRows, StagedRows

        if not hasattr(cursor, "copy"):
            raise AirflowFailException("staging into PostgreSQL needs psycopg 3 (see requirements.txt)")
        execute_statements(cursor, render_statements("stage/column_types.sql"), parameters)
        types = {name: type_name for name, type_name, _ in cursor.fetchall()}
        columns = [_snake_case(field) for field in fields]
        if missing := [column for column in [*columns, "batch_id"] if column not in types]:
            raise AirflowFailException(f"{self.table} has no column {', '.join(missing)}: see {self.jsonpaths}")
        try:
            encoder = BinaryRows(
                fields, [types[column] for column in columns], [(parameters["batch_id"], types["batch_id"])],
                source.uri, max_errors=variables["max_errors"], max_record_bytes=self.max_record_bytes,
            )
        except ValueError as error:
            raise AirflowFailException(f"{self.table}: {error}") from None
        (copy_sql,) = render_statements("stage/copy_from_stdin.sql", **variables)
        server_rejected: dict[str, dict[int, str]] = {}
        while True:
            staged = StagedRows(variables["max_errors"])
            try:
                # A savepoint: a row the server refuses undoes this pass, not the batch's deletes before it.
                with cursor.connection.transaction(), cursor.copy(copy_sql) as copy:
                    copy.write(encoder.header())
                    pieces = source.read_pieces(objects, SEGMENT_BYTES)
                    for segment in encoder.encode_all(pieces, server_rejected):
                        staged.add(segment)
                        for data in segment.data:
                            copy.write(data)
                    copy.write(encoder.trailer())
                break
            except TooManyBadRecords as error:
                raise AirflowFailException(f"{self.table}: {error}; nothing of this run was staged") from None
            except psycopg.errors.DataError as error:
                key, line = self._locate(error, staged)
                reason = f"{error.diag.message_primary} ({error.diag.context})"
                if line in server_rejected.get(key, {}):  # a pass must never stop twice on one line
                    raise AirflowFailException(f"{source.uri(key)} line {line}: {reason}") from error
                server_rejected.setdefault(key, {})[line] = reason
                refused = sum(map(len, server_rejected.values()))
                if refused > staged.max_errors:
                    raise AirflowFailException(
                        f"{self.table}: {source.uri(key)} line {line}: {reason} ({refused} bad records, "
                        f"more than max_errors={staged.max_errors}); nothing of this run was staged"
                    ) from None
                self.log.warning("%s line %d: %s; staging again without it", source.uri(key), line, reason)
        if self.incremental and objects:
            staged_at = datetime.now(timezone.utc).replace(tzinfo=None)
            (record_sql,) = render_statements("stage/record_objects_from_stdin.sql", **variables)
            with cursor.copy(record_sql) as copy:
                for key in objects:
                    copy.write_row((self.table, key, parameters["batch_id"], staged_at))
        return staged

    @staticmethod
    def _locate(error: Exception, staged: StagedRows) -> tuple[str, int]:
        """The object and line of the COPY row a server error names."""
        context = getattr(getattr(error, "diag", None), "context", None) or ""
        match = _COPY_LINE.search(context)
        found = staged.locate(int(match.group(1)) - 1) if match else None
        if found is None:
            raise AirflowFailException(f"the warehouse refused the staged rows: {error}") from error
        return found

    def _quarantine(self, cursor: Any, rejected: list[Rejected], parameters: dict[str, Any]) -> None:
        if not rejected:
            return
        (statement,) = render_statements("stage/quarantine.sql")
        recorded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        cursor.executemany(statement, [
            {**parameters, "object_uri": bad.uri, "line_number": bad.line, "error": bad.error[:1024],
             "raw_line": bad.raw or None, "recorded_at": recorded_at}
            for bad in rejected
        ])

    def _copy_from_s3(
        self,
        cursor: Any,
        source: ObjectSource,
        listed: dict[str, list[str]],
        objects: list[str],
        variables: dict[str, Any],
        parameters: dict[str, Any],
    ) -> tuple[int | None, int | None]:
        """COPY the objects; return rows staged and rejected (None: not told to the client)."""
        if not self.source.startswith("s3://"):
            raise AirflowFailException("Redshift stages from S3 only: set the source to an s3:// URI")
        if not self.jsonpaths_uri:
            raise AirflowFailException("Redshift staging needs jsonpaths_uri")
        if not objects:
            return 0, 0
        authorization, secrets = self._copy_authorization()
        # A driver error may quote the statement it failed on, keys and all.
        with secrets_redacted(secrets, "Redshift COPY failed"):
            copy_variables = {
                **variables,
                **authorization,
                "incoming": temp_table_name("incoming"),
                "jsonpaths_uri": quote_literal(self.jsonpaths_uri),
                "region": quote_literal(self.region) if self.region else None,
                "manifest": self.incremental,
            }
            if self.incremental:
                copy_variables["compression"] = copy_compression(objects, f"the new objects of {self.table}")
                manifest_uri, objects_csv_uri = self._write_manifest(source, objects, parameters)
                copy_variables["s3_uri"] = quote_literal(manifest_uri)
                statements = render_statements("stage/copy_from_s3.sql", **copy_variables)
                execute_statements(cursor, statements, parameters, secrets=secrets)
                record_variables = {**copy_variables, "s3_uri": quote_literal(objects_csv_uri)}
                statements = render_statements("stage/record_objects_from_s3.sql", **record_variables)
                execute_statements(cursor, statements, parameters, secrets=secrets)
            else:  # one COPY per key or prefix that holds objects, all in this transaction
                for key in (key for key, found in listed.items() if found):
                    copy_variables["s3_uri"] = quote_literal(source.uri(key))
                    copy_variables["compression"] = copy_compression(listed[key], source.uri(key))
                    statements = render_statements("stage/copy_from_s3.sql", **copy_variables)
                    execute_statements(cursor, statements, parameters, secrets=secrets)
            max_errors = variables["max_errors"]
            if not max_errors:
                return None, 0  # any bad record has failed its COPY
            if isinstance(cursor, DataApiCursor):
                # Its reads run ahead of the batch: each COPY holds MAXERROR, the quarantine has the rest.
                return None, None
            # MAXERROR holds per COPY; the run's limit holds over all of them.
            execute_statements(cursor, render_statements("stage/count_rejected.sql"), parameters)
            (rejected,) = cursor.fetchone()
            if rejected > max_errors:
                raise AirflowFailException(
                    f"{self.table}: {rejected} records rejected by COPY, more than max_errors={max_errors} "
                    "(SYS_LOAD_ERROR_DETAIL names them); nothing of this run was staged"
                )
            return None, rejected

    def _copy_authorization(self) -> tuple[dict[str, str | None], list[str]]:
        """COPY's authorization: the IAM role, else the AWS connection's keys (and which strings are secret)."""
        if self.iam_role:
            role = quote_literal(self.iam_role)
            return {"iam_role": role, "access_key_id": None, "secret_access_key": None, "session_token": None}, []
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        # get_credentials registers the secret key and token with Airflow's log masker.
        credentials = S3Hook(aws_conn_id=self.aws_conn_id).get_credentials()
        if not credentials.access_key or not credentials.secret_key:
            raise AirflowFailException(
                "Redshift staging needs iam_role (preferred) or access keys on the AWS connection"
            )
        self.log.warning("No iam_role: COPY authenticates with the AWS connection's keys; an IAM role is safer")
        authorization = {
            "iam_role": None,
            "access_key_id": quote_literal(credentials.access_key),
            "secret_access_key": quote_literal(credentials.secret_key),
            "session_token": quote_literal(credentials.token) if credentials.token else None,
        }
        return authorization, [value for value in (credentials.secret_key, credentials.token) if value]

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
