"""Staging into PostgreSQL: the operator reads the objects itself and streams them into one binary
``COPY … FROM STDIN`` (see :mod:`sparkify.staging.binary_copy`), each row tagged with its object where the
table is staged by time, and records each staged object version with the hours it covers."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from sparkify import cost
from sparkify.exceptions import ObjectsRefused, RecordTooLarge, TooManyBadRecords
from sparkify.staging.outcome import Copied
from sparkify.staging.records import Rejected
from sparkify.warehouse.sql import render_statements
from sparkify.warehouse.transactions import execute_statements

if TYPE_CHECKING:
    import psycopg

    from sparkify.sources.objects import ObjectSource
    from sparkify.staging.segments import StagedRows

log = logging.getLogger(__name__)

#: A row number in a COPY error's context ("COPY staging_events, line 12, column gender").
_COPY_LINE = re.compile(r"COPY \S+, line (\d+)")


def stage_objects(
    cursor: psycopg.Cursor[Any], source: ObjectSource, objects: dict[str, str], *, parameters: dict[str, Any],
    staged_at: datetime, **copy_arguments: Any,
) -> Copied:
    """Stage the objects (key → version), quarantine their bad records and record them."""
    if not objects:
        return Copied()
    keys = list(objects)
    staged = copy_objects(cursor, source, keys, parameters=parameters, **copy_arguments)
    quarantine(cursor, staged.rejected, parameters, staged_at)
    covered = {key: staged.coverage.get(key, [0, None, None]) for key in keys}
    record_objects(cursor, [
        (parameters["table_name"], key, objects[key], parameters["batch_id"], staged_at, staged_at, *covered[key], None)
        for key in keys
    ])
    return Copied(staged.rows, len(staged.rejected), dict(staged.unknown_keys),
                  {key: (first, last) for key, (_, first, last) in covered.items()})


def copy_objects(
    cursor: psycopg.Cursor[Any],
    source: ObjectSource,
    objects: list[str],
    *,
    fields: list[str],
    columns: list[str],
    variables: dict[str, Any],
    parameters: dict[str, Any],
    time_field: str | None,
    time_bounds: dict[str, tuple[int, int]] | None,
    max_record_bytes: int,
) -> StagedRows:
    """Stream the objects into one binary COPY; return the account of rows, rejects, ignored keys
    and what each object covers.

    A value the server refuses (a string longer than its column, a NUL character) stops the COPY
    at a row it names: the pass is undone to its savepoint and run again without that record, which
    then counts as rejected. More bad records than ``max_errors``, or a record over
    ``max_record_bytes``, raise :class:`ObjectsRefused`.
    """
    import psycopg

    # Imported here, not with the module: Arrow is heavy, and the DAG file imports the operator.
    from sparkify.staging.binary_copy import BinaryRows
    from sparkify.staging.segments import SEGMENT_BYTES, StagedRows

    if not hasattr(cursor, "copy"):
        raise AirflowFailException("staging into PostgreSQL needs psycopg 3 (see requirements.txt)")
    table = parameters["table_name"]
    execute_statements(cursor, render_statements("postgres/column_types.sql"), parameters)
    types = {name: type_name for name, type_name, _ in cursor.fetchall()}
    tagged = time_field is not None
    extra = ["object_key", "batch_id"] if tagged else ["batch_id"]
    if missing := [column for column in [*columns, *extra] if column not in types]:
        raise AirflowFailException(f"{table} has no column {', '.join(missing)}: see the JSONPaths file and "
                                   "include/sql/create/create_tables.sql")
    try:
        encoder = BinaryRows(
            fields, [types[column] for column in columns], [(parameters["batch_id"], types["batch_id"])],
            source.uri, key_type=types["object_key"] if tagged else None, time_field=time_field,
            time_bounds=time_bounds, max_errors=variables["max_errors"], max_record_bytes=max_record_bytes,
        )
    except ValueError as error:
        raise AirflowFailException(f"{table}: {error}") from None
    (copy_sql,) = render_statements("postgres/copy_from_stdin.sql", **variables)
    server_rejected: dict[str, dict[tuple[int, int], str]] = {}
    keys_by_uri = {source.uri(key): key for key in objects}
    while True:
        staged = StagedRows(variables["max_errors"])
        try:
            # A savepoint: a row the server refuses undoes this pass, not the deletes before it.
            cost.count_statement(copy_sql)
            with cursor.connection.transaction(), cursor.copy(copy_sql) as copy:
                copy.write(encoder.header())
                pieces = source.read_pieces(objects, SEGMENT_BYTES, max_record_bytes)
                for segment in encoder.encode_all(pieces, server_rejected):
                    staged.add(segment)
                    for data in segment.data:
                        copy.write(data)
                copy.write(encoder.trailer())
            return staged
        except TooManyBadRecords as error:
            raise ObjectsRefused([keys_by_uri[error.last.uri]], str(error)) from None
        except RecordTooLarge as error:
            assert error.key is not None, "binary_copy names the object of a record too large"
            raise ObjectsRefused([error.key], f"{source.uri(error.key)} line {error.line}: {error.reason} (Redshift's "
                                           "COPY fails on a JSON record over its limit, whatever MAXERROR)") from None
        except psycopg.errors.DataError as error:
            key, line, ordinal = _locate(error, staged)
            reason = f"{error.diag.message_primary} ({error.diag.context})"
            where = f"{source.uri(key)} line {line}" + (f" (record {ordinal + 1} on it)" if ordinal else "")
            if (line, ordinal) in server_rejected.get(key, {}):  # a pass must never stop twice on one record
                raise AirflowFailException(f"{where}: {reason}") from error
            server_rejected.setdefault(key, {})[line, ordinal] = reason
            refused = sum(map(len, server_rejected.values()))
            if refused > staged.max_errors:
                raise ObjectsRefused([key], f"{where}: {reason} ({refused} bad records, "
                                         f"more than max_errors={staged.max_errors})") from None
            log.warning("%s: %s; staging again without it", where, reason)


def _locate(error: Exception, staged: StagedRows) -> tuple[str, int, int]:
    """The object, line and place among the line's records of the COPY row a server error names."""
    context = getattr(getattr(error, "diag", None), "context", None) or ""
    match = _COPY_LINE.search(context)
    found = staged.locate(int(match.group(1)) - 1) if match else None
    if found is None:
        raise AirflowFailException(f"the warehouse refused the staged rows: {error}") from error
    return found


def quarantine(cursor: psycopg.Cursor[Any], rejected: list[Rejected], parameters: dict[str, Any],
               recorded_at: datetime) -> None:
    """Keep the rejected records, with their object and line."""
    if not rejected:
        return
    (statement,) = render_statements("postgres/quarantine.sql")
    for _ in rejected:
        cost.count_statement(statement)
    cursor.executemany(statement, [
        {**parameters, "object_uri": bad.uri, "line_number": bad.line, "error": bad.error[:1024],
         "raw_line": bad.raw or None, "recorded_at": recorded_at}
        for bad in rejected
    ])


def record_objects(cursor: psycopg.Cursor[Any], records: list[tuple[Any, ...]]) -> None:
    """Record object versions (staged_objects rows, in its column order) with one COPY."""
    if not records:
        return
    (statement,) = render_statements("postgres/record_objects_from_stdin.sql")
    cost.count_statement(statement)
    with cursor.copy(statement) as copy:
        for record in records:
            copy.write_row(record)
