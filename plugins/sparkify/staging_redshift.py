"""Staging into Redshift: ``COPY … FROM 's3://…' FORMAT AS JSON`` with the JSONPaths file and an
IAM role (or, failing that, the AWS connection's keys, masked everywhere).

COPY cannot tag a row with the object it came from, so the unit differs by table: a table staged
by time (events) gets one COPY per object version through a temporary table, whose rows are then
tagged with the object's key; a catalog gets one COPY of every new or changed object through a
manifest, its rows replacing by key the ones staged before. A COPY that fails on bad records names
no object: its load errors do, and those objects are set aside, as on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from sparkify.compression import copy_compression
from sparkify.data_api import DataApiCursor
from sparkify.sql import quote_literal, render_statements, temp_table_name
from sparkify.transactions import execute_statements, secrets_redacted

if TYPE_CHECKING:
    from sparkify.sources import ObjectSource


class RefusedObjects(Exception):
    """A COPY failed on more bad records than MAXERROR: the objects its load errors name, and the first error."""

    def __init__(self, keys: list[str], message: str) -> None:
        super().__init__(message)
        self.keys = keys


def stage_objects(
    cursor: Any, source: ObjectSource, objects: dict[str, str], *, variables: dict[str, Any],
    parameters: dict[str, Any], **copy_arguments: Any,
) -> tuple[int | None, int | None, dict[str, int], dict[str, tuple[int | None, int | None]]]:
    """Stage the objects (key → version): (rows, rejected, ignored keys, key → (first, last) time of its
    rows). COPY tells neither the rows nor the keys it ignored."""
    time_column = variables["time_column"]
    rejected = copy_objects(cursor, source, objects, variables=variables, parameters=parameters,
                            time_field=time_column, **copy_arguments)
    coverage = object_coverage(cursor, parameters) if time_column and objects else {}
    return None, rejected, {}, coverage


def copy_objects(
    cursor: Any,
    source: ObjectSource,
    objects: dict[str, str],
    *,
    variables: dict[str, Any],
    parameters: dict[str, Any],
    staged_at: datetime,
    time_field: str | None,
    time_bounds: dict[str, tuple[int, int]] | None,
    iam_role: str | None,
    aws_conn_id: str | None,
    region: str | None,
    jsonpaths_uri: str | None,
    manifest_prefix: str | None,
) -> int | None:
    """COPY the objects (key → version) and record them; the records rejected (None: not told).

    Records of a table staged by time outside ``time_bounds`` (or without a time) go to the
    quarantine, without their line number, which Redshift does not keep past the COPY. A COPY that
    fails on more bad records than ``max_errors`` raises :class:`RefusedObjects` naming the objects its
    load errors name (the transaction is rolled back first, to read them)."""
    if not source.base_uri.startswith("s3://"):
        raise AirflowFailException("Redshift stages from S3 only: set the source to an s3:// URI")
    if not jsonpaths_uri:
        raise AirflowFailException("Redshift staging needs jsonpaths_uri")
    if not objects:
        return 0
    authorization, secrets = _copy_authorization(iam_role, aws_conn_id)
    # A driver error may quote the statement it failed on, keys and all.
    with secrets_redacted(secrets, "Redshift COPY failed"):
        copy_variables = {
            **variables,
            **authorization,
            "jsonpaths_uri": quote_literal(jsonpaths_uri),
            "region": quote_literal(region) if region else None,
        }
        copy_parameters = {**parameters, "staged_at": staged_at}
        refused = None
        if time_field:  # one COPY per object version, its rows tagged with its key
            for key, version in objects.items():
                statements = render_statements(
                    "redshift/copy_from_s3.sql", **copy_variables, incoming=temp_table_name("incoming"),
                    s3_uri=quote_literal(source.uri(key)), manifest=False, object_key=quote_literal(key),
                    version=quote_literal(version), **_plausible_times((time_bounds or {}).get(key)),
                    compression=copy_compression([key], source.uri(key)),
                )
                refused = _copy(cursor, statements, copy_parameters, secrets, {source.uri(key): key},
                                variables["max_errors"])
                if refused:
                    break
        else:  # the catalog: every new or changed object in one COPY, through a manifest
            manifest_uri, objects_csv_uri = _write_manifest(
                source, objects, parameters, staged_at, aws_conn_id, manifest_prefix
            )
            statements = render_statements(
                "redshift/copy_from_s3.sql", **copy_variables, incoming=temp_table_name("incoming"),
                s3_uri=quote_literal(manifest_uri), manifest=True, object_key=None, **_plausible_times(None),
                compression=copy_compression(objects, f"the new objects of {parameters['table_name']}"),
            )
            statements += render_statements(
                "redshift/record_objects_from_s3.sql", **copy_variables, s3_uri=quote_literal(objects_csv_uri)
            )
            refused = _copy(cursor, statements, copy_parameters, secrets, {source.uri(key): key for key in objects},
                            variables["max_errors"])
    if refused:
        raise refused
    max_errors = variables["max_errors"]
    if not max_errors and not time_field:
        return 0  # any bad record has failed its COPY
    if isinstance(cursor, DataApiCursor):
        # Its reads run ahead of the batch: each COPY holds MAXERROR, the quarantine has the rest.
        return None
    # MAXERROR holds per COPY; the run's limit holds over all of them, records out of their hours included.
    execute_statements(cursor, render_statements("redshift/count_rejected.sql"), parameters)
    (rejected,) = cursor.fetchone()
    if rejected > max_errors:
        raise AirflowFailException(
            f"{parameters['table_name']}: {rejected} records rejected by COPY or outside their object's hours, "
            f"more than max_errors={max_errors} (the quarantine and SYS_LOAD_ERROR_DETAIL name them); nothing "
            "of this run was staged"
        )
    return rejected


def _copy(cursor: Any, statements: list[str], parameters: dict[str, Any], secrets: list[str],
          keys_by_uri: dict[str, str], max_errors: int) -> RefusedObjects | None:
    """Run a COPY's statements. If the COPY fails on its data (more bad records than MAXERROR), roll
    the transaction back (Redshift takes no statement in it after an error) and return the objects the
    load errors name; any other failure is raised as it is. On the Data API nothing runs before the
    batch: a failing COPY fails the batch."""
    import redshift_connector

    try:
        execute_statements(cursor, statements, parameters, secrets=secrets)
    except redshift_connector.DatabaseError:
        cursor.connection.rollback()
        execute_statements(cursor, render_statements("redshift/load_errors.sql"), {})
        errors = [row for row in cursor.fetchall() if row[0] in keys_by_uri]
        if not errors:
            raise
        uri, line, column, message = errors[0]
        keys = sorted({keys_by_uri[row[0]] for row in errors})
        return RefusedObjects(keys, (
            f"{uri} line {line}: {column}: {message} (the COPY failed on more bad records than "
            f"max_errors={max_errors}; set aside until they change: {len(keys)} of its {len(keys_by_uri)} "
            "objects, those its load errors name)"
        ))
    return None


def _plausible_times(bounds: tuple[int, int] | None) -> dict[str, int | None]:
    """The template's ``time_low``/``time_high``: the times an object's records may have (whole numbers)."""
    low, high = bounds or (None, None)
    return {"time_low": None if low is None else int(low), "time_high": None if high is None else int(high)}


def object_coverage(cursor: Any, parameters: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    """The hours (first and last ts) of the objects this run staged, as recorded from their rows.
    Empty on the Data API, whose reads run ahead of the batch that stages them."""
    if isinstance(cursor, DataApiCursor):
        return {}
    execute_statements(cursor, render_statements("redshift/object_coverage.sql"), parameters)
    return {key: (first, last) for key, first, last in cursor.fetchall()}


def _copy_authorization(iam_role: str | None, aws_conn_id: str | None) -> tuple[dict[str, str | None], list[str]]:
    """COPY's authorization: the IAM role, else the AWS connection's keys (and which strings are secret)."""
    if iam_role:
        role = quote_literal(iam_role)
        return {"iam_role": role, "access_key_id": None, "secret_access_key": None, "session_token": None}, []
    import logging

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    # get_credentials registers the secret key and token with Airflow's log masker.
    credentials = S3Hook(aws_conn_id=aws_conn_id).get_credentials()
    if not credentials.access_key or not credentials.secret_key:
        raise AirflowFailException("Redshift staging needs iam_role (preferred) or access keys on the AWS connection")
    logging.getLogger(__name__).warning(
        "No iam_role: COPY authenticates with the AWS connection's keys; an IAM role is safer"
    )
    authorization = {
        "iam_role": None,
        "access_key_id": quote_literal(credentials.access_key),
        "secret_access_key": quote_literal(credentials.secret_key),
        "session_token": quote_literal(credentials.token) if credentials.token else None,
    }
    return authorization, [value for value in (credentials.secret_key, credentials.token) if value]


def _write_manifest(
    source: ObjectSource,
    objects: dict[str, str],
    parameters: dict[str, Any],
    staged_at: datetime,
    aws_conn_id: str | None,
    manifest_prefix: str | None,
) -> tuple[str, str]:
    """Write the COPY manifest of the objects and, beside it, the CSV of their staged_objects records."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    if not manifest_prefix or not manifest_prefix.startswith("s3://"):
        raise AirflowFailException("catalog staging on Redshift needs manifest_prefix, an s3:// URI")
    batch = re.sub(r"[^A-Za-z0-9_.-]", "_", parameters["batch_id"])
    base = f"{manifest_prefix.rstrip('/')}/{parameters['table_name']}/{batch}"
    manifest = {"entries": [{"url": source.uri(key), "mandatory": True} for key in objects]}
    stamp = staged_at.strftime("%Y-%m-%d %H:%M:%S")
    listing = io.StringIO()
    writer = csv.writer(listing)
    for key, version in objects.items():
        writer.writerow((parameters["table_name"], key, version, parameters["batch_id"], stamp, stamp))
    s3 = S3Hook(aws_conn_id=aws_conn_id)
    s3.load_string(json.dumps(manifest), key=f"{base}.manifest", replace=True)
    s3.load_string(listing.getvalue(), key=f"{base}.objects.csv", replace=True)
    return f"{base}.manifest", f"{base}.objects.csv"
