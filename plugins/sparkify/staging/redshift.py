"""Staging into Redshift: ``COPY … FROM 's3://…' FORMAT AS JSON`` with the JSONPaths file and an
IAM role (or, failing that, the AWS connection's keys, masked everywhere).

COPY cannot tag a row with the object it came from, so what one COPY reads differs by table: a table
staged by time (events) is staged by *unit* (:mod:`sparkify.staging.units`: an hour prefix, a day file),
one manifest COPY of all the unit's objects through a temporary table whose rows are then tagged with the
unit's key, in a transaction of the unit's own (:mod:`sparkify.staging.unit_staging`); a catalog gets one COPY of
every new or changed object through a manifest, its rows replacing by key the ones staged before. Beside
each manifest, a CSV of the objects' ``staged_objects`` records, which a second COPY reads. A COPY that
fails on bad records names no object: its load errors do, and those objects are set aside, as on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from sparkify import cost
from sparkify.exceptions import ObjectsRefused
from sparkify.sources.compression import compression, copy_compression
from sparkify.staging.outcome import Copied
from sparkify.warehouse.data_api import DataApiCursor
from sparkify.warehouse.sql import quote_literal, render_statements, temp_table_name
from sparkify.warehouse.transactions import Cursor, execute_statements, secrets_redacted

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from sparkify.sources.objects import ObjectSource
    from sparkify.staging.units import Unit


@dataclass
class CopySettings:
    """How this task's COPYs read S3: the checked arguments, the authorization's SQL variables (the role,
    or the AWS connection's keys) and the secrets among them, and the S3 hook that writes the manifests."""

    source: ObjectSource
    variables: dict[str, Any]
    secrets: list[str]
    manifest_base: str
    s3: S3Hook

    @classmethod
    def prepare(cls, source: ObjectSource, parameters: dict[str, Any], *, iam_role: str | None,
                aws_conn_id: str | None, region: str | None, jsonpaths_uri: str | None,
                manifest_prefix: str | None) -> CopySettings:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        if not source.base_uri.startswith("s3://"):
            raise AirflowFailException("Redshift stages from S3 only: set the source to an s3:// URI")
        if not jsonpaths_uri:
            raise AirflowFailException("Redshift staging needs jsonpaths_uri")
        if not manifest_prefix or not manifest_prefix.startswith("s3://"):
            raise AirflowFailException("staging on Redshift needs manifest_prefix (Variable sparkify_manifest_prefix), "
                                       "an s3:// URI the AWS connection can write: COPY reads its manifests there")
        authorization, secrets = _copy_authorization(iam_role, aws_conn_id)
        batch = re.sub(r"[^A-Za-z0-9_.-]", "_", parameters["batch_id"])
        s3 = S3Hook(aws_conn_id=aws_conn_id)
        cost.watch_s3(s3.get_conn())
        variables = {**authorization, "jsonpaths_uri": quote_literal(jsonpaths_uri),
                     "region": quote_literal(region) if region else None}
        return cls(source, variables, secrets, f"{manifest_prefix.rstrip('/')}/{parameters['table_name']}/{batch}", s3)


def stage_objects(
    cursor: Cursor, copy: CopySettings, objects: dict[str, str], *, variables: dict[str, Any],
    parameters: dict[str, Any], staged_at: datetime,
) -> Copied:
    """Stage a catalog's new or changed objects (key → version) through one manifest COPY and record them.
    COPY tells neither the rows nor the keys it ignored; a catalog's rows cover no hours. A COPY that fails on
    more bad records than ``max_errors`` raises :class:`ObjectsRefused` naming the objects its load errors name
    (the transaction is rolled back first)."""
    if not objects:
        return Copied(rows=None)
    source = copy.source
    kind = copy_compression(objects, f"the new objects of {parameters['table_name']}")
    [(manifest_uri, _)] = _write_manifest(copy, "", {kind: list(objects)}, objects, parameters, staged_at)
    copy_variables = {**variables, **copy.variables}
    statements = render_statements(
        "redshift/copy_from_s3.sql", **copy_variables, incoming=temp_table_name("incoming"),
        s3_uri=quote_literal(manifest_uri), manifest=True, compression=kind,
    )
    statements += render_statements(
        "redshift/record_objects_from_s3.sql", **copy_variables, s3_uri=quote_literal(_records_uri(copy, ""))
    )
    with secrets_redacted(copy.secrets, "Redshift COPY failed"):
        refused = _copy(cursor, statements, {**parameters, "staged_at": staged_at}, copy.secrets,
                        {source.uri(key): key for key in objects}, variables["max_errors"])
    if refused:
        raise refused
    cost.count_read(len(objects), [source.sizes.get(key) for key in objects])
    return Copied(rows=None)


def unit_statements(copy: CopySettings, unit: Unit, *, variables: dict[str, Any], parameters: dict[str, Any],
                    staged_at: datetime, time_bounds: tuple[int, int], name: str) -> list[str]:
    """A staging unit's statements (its members written to manifests and a CSV first, under a name of the
    batch's own, :func:`sparkify.staging.units.statement_name`): forget what it left, then, if any member
    is left, one manifest COPY per compression of its members (one COPY reads one, and a Firehose prefix
    keeps one), its rows tagged with the unit's key, its members recorded."""
    unit_variables = _unit_variables(copy, unit.key, variables)
    statements = render_statements("redshift/forget_unit.sql", **unit_variables) if unit.records else []
    if not unit.members:
        return statements
    digest = name.rsplit(":", 1)[-1][:12]
    groups: dict[str | None, list[str]] = {}
    for key in unit.members:
        groups.setdefault(compression(key), []).append(key)
    manifests = _write_manifest(copy, _unit_file(unit.key, digest), groups, unit.members, parameters, staged_at)
    incoming = temp_table_name("incoming")
    statements += render_statements("redshift/unit_incoming.sql", **unit_variables, incoming=incoming)
    for manifest_uri, kind in manifests:
        statements += render_statements("redshift/copy_manifest.sql", **unit_variables, incoming=incoming,
                                        manifest_uri=quote_literal(manifest_uri), compression=kind)
    low, high = time_bounds
    statements += render_statements(
        "redshift/unit_rows.sql", **unit_variables, incoming=incoming, time_low=int(low), time_high=int(high),
        records_uri=quote_literal(_records_uri(copy, _unit_file(unit.key, digest))),
    )
    return statements


def forget_unit_statements(copy: CopySettings, unit_key: str, variables: dict[str, Any]) -> list[str]:
    """The statements that forget a unit (its rows, rejected records and members' records): they bind
    ``first_ts`` and ``last_ts``, the times its rows span."""
    return render_statements("redshift/forget_unit.sql", **_unit_variables(copy, unit_key, variables))


def _unit_variables(copy: CopySettings, unit_key: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The template variables of a unit: its key and URI as SQL literals, with their lengths (a key belongs
    to the unit it starts with)."""
    unit_uri = copy.source.uri(unit_key)
    return {**variables, **copy.variables, "unit_key": quote_literal(unit_key), "unit_length": len(unit_key),
            "unit_uri": quote_literal(unit_uri), "unit_uri_length": len(unit_uri)}


def _unit_file(unit_key: str, digest: str) -> str:
    from sparkify.staging.units import safe_name

    return f"/{safe_name(unit_key)}-{digest}"


def run_unit(cursor: Cursor, copy: CopySettings, unit: Unit, statements: list[str], parameters: dict[str, Any],
             max_errors: int) -> None:
    """Run a unit's statements in the open transaction; a COPY failing on its data raises :class:`ObjectsRefused`
    (on a driver: the transaction rolled back, its load errors read)."""
    with secrets_redacted(copy.secrets, "Redshift COPY failed"):
        refused = _copy(cursor, statements, parameters, copy.secrets,
                        {copy.source.uri(key): key for key in unit.members}, max_errors)
    if refused:
        raise refused


def unit_load_errors(warehouse: Any, cursor: Cursor, copy: CopySettings, unit: Unit, statement_id: str,
                     max_errors: int) -> ObjectsRefused | None:
    """After a unit's Data API batch failed: the objects its COPY's load errors name (those recorded for the
    unit's objects since the batch was received), or None when there are none (it failed for another reason)."""
    unit_uri = copy.source.uri(unit.key)
    statements = render_statements("redshift/unit_load_errors.sql", unit_uri=quote_literal(unit_uri),
                                   unit_uri_length=len(unit_uri))
    execute_statements(cursor, statements, {"batch_received_at": warehouse.created_at(statement_id)})
    keys_by_uri = {copy.source.uri(key): key for key in unit.members}
    return _refusal([row for row in cursor.fetchall() if row[0] in keys_by_uri], keys_by_uri, max_errors)


def count_rejected(cursor: Cursor, parameters: dict[str, Any], max_errors: int) -> int | None:
    """The records this run's COPYs rejected or found outside their hours (the quarantine holds them), held to
    ``max_errors`` over all its units and attempts; None on the Data API, whose reads run ahead of the batch."""
    if isinstance(cursor, DataApiCursor):
        return None
    execute_statements(cursor, render_statements("redshift/count_rejected.sql"), parameters)
    rejected = int(cursor.fetchone()[0])
    if rejected > max_errors:
        raise AirflowFailException(
            f"{parameters['table_name']}: {rejected} records rejected by COPY or outside their unit's hours, "
            f"more than max_errors={max_errors} (the quarantine and SYS_LOAD_ERROR_DETAIL name them); "
            "this unit was not staged"
        )
    return rejected


def _copy(cursor: Cursor, statements: list[str], parameters: dict[str, Any], secrets: list[str],
          keys_by_uri: dict[str, str], max_errors: int) -> ObjectsRefused | None:
    """Run a COPY's statements. If the COPY fails on its data (more bad records than MAXERROR), roll
    the transaction back (Redshift takes no statement in it after an error) and return the objects the
    load errors name; any other failure is raised as it is. On the Data API nothing runs before the
    batch: a failing COPY fails the batch."""
    from redshift_connector.error import DatabaseError

    try:
        execute_statements(cursor, statements, parameters, secrets=secrets)
    except DatabaseError:  # raised by the driver only: the Data API fails the whole batch instead
        driver_cursor: Any = cursor
        driver_cursor.connection.rollback()
        execute_statements(cursor, render_statements("redshift/load_errors.sql"), {})
        refusal = _refusal([row for row in cursor.fetchall() if row[0] in keys_by_uri], keys_by_uri, max_errors)
        if refusal is None:
            raise
        return refusal
    return None


def _refusal(errors: list[tuple[Any, ...]], keys_by_uri: dict[str, str], max_errors: int) -> ObjectsRefused | None:
    """The objects load errors name (rows of file, line, column, message), the first error as the message."""
    if not errors:
        return None
    uri, line, column, message = errors[0]
    keys = sorted({keys_by_uri[row[0]] for row in errors})
    return ObjectsRefused(keys, (
        f"{uri} line {line}: {column}: {message} (the COPY failed on more bad records than "
        f"max_errors={max_errors}; set aside until they change: {len(keys)} of its {len(keys_by_uri)} "
        "objects, those its load errors name)"
    ))


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


def _write_manifest(copy: CopySettings, name: str, groups: dict[str | None, list[str]], versions: dict[str, str],
                    parameters: dict[str, Any], staged_at: datetime) -> list[tuple[str, str | None]]:
    """Write a COPY manifest per group of objects (by compression) and, beside them, the CSV of the objects'
    staged_objects records (:func:`_records_uri`); the manifests' URIs with their compression option."""
    stamp = staged_at.strftime("%Y-%m-%d %H:%M:%S")
    listing = io.StringIO()
    writer = csv.writer(listing)
    for key, version in versions.items():
        writer.writerow((parameters["table_name"], key, version, parameters["batch_id"], stamp, stamp))
    written: list[tuple[str, str | None]] = []
    for kind, keys in groups.items():
        uri = f"{copy.manifest_base}{name}{'.' + kind.lower() if kind and len(groups) > 1 else ''}.manifest"
        manifest = {"entries": [{"url": copy.source.uri(key), "mandatory": True} for key in keys]}
        copy.s3.load_string(json.dumps(manifest), key=uri, replace=True)
        written.append((uri, kind))
    copy.s3.load_string(listing.getvalue(), key=_records_uri(copy, name), replace=True)
    return written


def _records_uri(copy: CopySettings, name: str) -> str:
    return f"{copy.manifest_base}{name}.objects.csv"
