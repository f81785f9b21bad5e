"""StageToRedshiftOperator: the bucket's JSON objects into a staging table, each object version once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from sparkify.cost import count_read, counting
from sparkify.lineage import staging_lineage
from sparkify.notifications.alerts import set_aside_alert
from sparkify.sources.json_records import MAX_RECORD_BYTES
from sparkify.sources.objects import ObjectSource, open_source
from sparkify.staging import restatement
from sparkify.staging.bookkeeping import Bookkeeping, Plan, StagedObject, interval_keys, plan_listing, set_aside
from sparkify.staging.catalog import Discovery, discover
from sparkify.staging.jsonpaths import read_jsonpaths, snake_case
from sparkify.staging.restatement import Span, overlaps, span_text
from sparkify.warehouse.audit import record_load
from sparkify.warehouse.run_parameters import epoch_ms, flag, run_parameters, whole_number
from sparkify.warehouse.sql import quote_identifier, render_statements
from sparkify.warehouse.transactions import execute_statements, transaction, warehouse_hook

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context


#: How far around a listing window its keys' hours are looked for: a key names at most a month.
KEY_SPAN = timedelta(days=32)


class StageToRedshiftOperator(BaseOperator):
    """
    Stage the bucket's JSON objects into a staging table, each object version once.

    Each JSON key named by the JSONPaths file lands in the column of the same name in
    snake_case (``firstName`` → ``first_name``), plus ``batch_id``, the run that staged
    it. ``staged_objects`` records every staged object with its version (the ETag on
    S3; size and modification time in a folder): a listed object is staged only when
    it is new or its version changed, and its new rows replace its old ones in the
    same transaction. Two runs that meet the same new object stage it once.

    A table staged by time (``time_field``: events) tags each row with its object's
    key. Each run lists the objects of its interval, of ``spill_hours`` either side and
    of the ``lookback_hours`` before; an object new, rewritten or gone since it was
    staged outside the run's own interval *restates* the hours its old and new rows
    cover, up to the end of the run's interval: they are recorded in ``restatements``,
    logged, and covered by the loads and checks of the run (``restated_table``). A
    gone object's rows are removed. With ``retention_hours`` the objects no run has
    listed for that long are dropped; a run that lists one again stages it again.

    A catalog (``catalog_key``: songs) finds its new or changed objects by a full listing,
    or, with ``catalog_queue``, from the bucket's event notifications, listing the whole
    catalog only every ``reconcile_hours`` (:mod:`sparkify.staging.catalog`); rows of a
    new or changed object replace the staged rows with the same key, and an object that
    disappears leaves its rows (the catalog only grows).

    On a ``postgres`` connection the operator reads the objects itself (``file://`` or
    ``s3://``) into ``COPY … FROM STDIN`` (:mod:`sparkify.staging.postgres`), in one transaction,
    tagging each event row with its object's key; on a ``redshift`` one it issues ``COPY … FROM 's3://…'``
    through manifests (:mod:`sparkify.staging.redshift`). There events are staged by *unit*, the key the
    pattern names for an hour (an hour prefix, a day file): one COPY of all its objects, its rows tagged with
    the unit, each unit in a transaction (a Data API batch) of its own and the run's bookkeeping in one more
    (:mod:`sparkify.staging.units`, :mod:`sparkify.staging.unit_staging`). The XCom's ``cost`` says what the task
    cost: objects and bytes read, COPYs, statements, transactions or Data API batches, S3 requests
    (:mod:`sparkify.cost`).

    Bad records follow Redshift's MAXERROR rule: up to ``max_errors`` of them go to the
    ``quarantine`` table (object, line, reason, raw text) and the task succeeds with a
    warning. One more fails the task, naming the first, with nothing staged (events on Redshift:
    nothing of that object's unit; the run's other units are staged, each in its own transaction);
    that object version is then set aside (``staged_objects.rejected_at``; on Redshift, every object
    the failed COPY's load errors name): the run's retries try it again (and keep failing
    on it), while later runs stage every other object and warn until it changes, so one
    bad object never blocks the pipeline.

    :param table: staging table (templated)
    :param source: base URI of the bucket, ``s3://bucket/prefix`` or ``file:///folder`` (templated)
    :param s3_key: key of one object, or a prefix ending with ``/``; strftime codes
        (``%Y``, ``%m``, ``%d``, ``%H``) name the keys of every hour listed (templated)
    :param jsonpaths: JSONPaths file under ``include/``, naming the keys to stage in column order
    :param time_field: the JSON key holding each record's epoch-millisecond time: stage by time
    :param catalog_key: the JSON key identifying a catalog row (without ``time_field``)
    :param spill_hours: also list the objects named for this many hours either side of the interval,
        so events filed in a neighbouring object (a day file cut late) reach their hour (templated)
    :param lookback_hours: also list the objects of this many hours before the interval, and restate
        the hours of those new, changed or gone (templated)
    :param plausible_hours: for a table staged by time: a record whose time lies more than this many
        hours from the hours its object's key names (or that has none) is a bad record, since no run of
        those hours would load it (templated)
    :param restage: for a catalog: forget what was staged and stage every object again (templated:
        a bool, or "True"/"False")
    :param max_errors: how many bad records a run may quarantine before it fails (templated)
    :param retention_hours: drop the staged objects no run has listed for this many hours; 0 or
        None keeps them all (templated)
    :param max_record_bytes: PostgreSQL only: the largest JSON record accepted (Redshift's is 4 MB)
    :param redshift_conn_id: warehouse connection, of type postgres or redshift (templated)
    :param aws_conn_id: AWS connection for S3 (templated)
    :param iam_role: Redshift only: ARN of the role COPY assumes to read S3 (templated)
    :param region: Redshift only: the bucket's region when it differs from the cluster's (templated)
    :param jsonpaths_uri: Redshift only: S3 URI of the same JSONPaths file (templated)
    :param manifest_prefix: Redshift only: S3 URI prefix where the COPY manifests of the new objects (a
        catalog's, a staging unit's) and the CSVs of their records are written (templated)
    :param catalog_queue: for a catalog: URL of the SQS queue of the bucket's notifications for ``s3_key``;
        empty or None lists the catalog every run (templated)
    :param reconcile_hours: for a catalog with a queue: list the whole catalog again once the last full
        listing is this many hours old (templated)
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
        "catalog_queue",
        "reconcile_hours",
        "restage",
        "max_errors",
        "spill_hours",
        "lookback_hours",
        "plausible_hours",
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
        time_field: str | None = None,
        catalog_key: str | None = None,
        spill_hours: int | str = 0,
        lookback_hours: int | str = 0,
        plausible_hours: int | str = 24,
        restage: bool | str = False,
        max_errors: int | str = 0,
        retention_hours: int | str | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
        redshift_conn_id: str = "sparkify_warehouse",
        aws_conn_id: str | None = "aws_default",
        iam_role: str | None = None,
        region: str | None = None,
        jsonpaths_uri: str | None = None,
        manifest_prefix: str | None = None,
        catalog_queue: str | None = None,
        reconcile_hours: int | str = 24,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.source = source
        self.s3_key = s3_key
        self.jsonpaths = jsonpaths
        self.time_field = time_field
        self.catalog_key = catalog_key
        self.spill_hours = spill_hours
        self.lookback_hours = lookback_hours
        self.plausible_hours = plausible_hours
        self.restage = restage
        self.max_errors = max_errors
        self.retention_hours = retention_hours
        self.max_record_bytes = max_record_bytes
        self.redshift_conn_id = redshift_conn_id
        self.aws_conn_id = aws_conn_id
        self.iam_role = iam_role
        self.region = region
        self.jsonpaths_uri = jsonpaths_uri
        self.manifest_prefix = manifest_prefix
        self.catalog_queue = catalog_queue
        self.reconcile_hours = reconcile_hours

    def _check_arguments(self, fields: list[str]) -> tuple[bool, int, int, int, int]:
        """The rendered arguments, checked: (restage, max_errors, spill, look-back and retention hours)."""
        if (self.time_field is None) == (self.catalog_key is None):
            raise AirflowFailException("give exactly one of time_field (events) and catalog_key (a catalog)")
        for name in (self.time_field, self.catalog_key):
            if name is not None and name not in fields:
                raise AirflowFailException(f"{name!r} is not a key of {self.jsonpaths}")
        restage = flag(self.restage, "restage")
        if restage and self.time_field:
            raise AirflowFailException("restage applies to a catalog only: events restate by their objects' versions")
        retention = whole_number(self.retention_hours or 0, "retention_hours")
        if retention and not self.time_field:
            raise AirflowFailException("retention_hours applies to tables staged by time: a catalog is the "
                                       "cumulative set every run joins")
        return (restage, whole_number(self.max_errors, "max_errors"), whole_number(self.spill_hours, "spill_hours"),
                whole_number(self.lookback_hours, "lookback_hours"), retention)

    def execute(self, context: Context) -> dict[str, Any]:
        """Stage; then delete the catalog notifications the run handled, once its transaction committed
        (after a failure they are visible again at once)."""
        self.discovery: Discovery | None = None
        with counting() as spent:
            try:
                result = self._stage(context)
            except BaseException:
                if self.discovery:
                    self.discovery.release()
                raise
        if self.discovery:
            self.discovery.acknowledge()
            result["messages_deleted"] = self.discovery.deleted
        # What the run paid for this table: objects and bytes read, COPYs, statements, S3 requests.
        result["cost"] = spent.figures()
        self.log.info("Cost: %s", result["cost"])
        return result

    def _stage(self, context: Context) -> dict[str, Any]:
        hook, dialect = warehouse_hook(self.redshift_conn_id)
        fields = read_jsonpaths(self.jsonpaths)
        restage, max_errors, spill, lookback, retention = self._check_arguments(fields)
        parameters = {**run_parameters(context), "table_name": self.table}
        start, end = parameters["interval_start"], parameters["interval_end"]
        columns = [snake_case(name) for name in fields]
        time_column = snake_case(self.time_field) if self.time_field else None
        variables = {
            "dialect": dialect,
            "table": quote_identifier(self.table),
            "columns": ", ".join(map(quote_identifier, columns)),
            "time_column": quote_identifier(time_column) if time_column else None,
            "catalog_key": quote_identifier(snake_case(self.catalog_key)) if self.catalog_key else None,
            "restage": restage,
            "max_errors": max_errors,
        }
        if restage:
            self.log.warning("Full re-stage: forgetting every staged object of %s", self.table)
        # A catalog read by notifications asks S3 nothing in an hour with nothing new.
        source = open_source(self.source, self.aws_conn_id, check=not (self.catalog_key and self.catalog_queue))
        if self.time_field:
            window = (start - timedelta(hours=lookback + spill), end + timedelta(hours=spill))
            listed_keys = interval_keys(self.s3_key, *window)
        else:
            window, listed_keys = None, {self.s3_key: (start, end)}
            self.discovery = discover(
                hook, dialect, parameters, source, catalog_prefix=self.s3_key, queue_url=self.catalog_queue,
                reconcile_hours=self.reconcile_hours, restage=restage, aws_conn_id=self.aws_conn_id,
                now=datetime.now(timezone.utc).replace(tzinfo=None), log=self.log,
            )
            if self.discovery.by_notifications:
                listed_keys = {}  # no listing: the notifications name the files
        listed = {key: source.list_objects(key) for key in listed_keys}
        own_keys = interval_keys(self.s3_key, start, end) if self.time_field else listed_keys
        note = None
        if own_keys and not any(listed.get(key) for key in own_keys):
            note = f"no objects at {', '.join(map(source.uri, own_keys))}: nothing of the run's own to stage"
            self.log.warning("%s", note)
        objects = {key: version for found in listed.values() for key, version in found.items()}
        # The hours each key names, whole (a day file's day), even where the listing window cuts them.
        named = interval_keys(self.s3_key, window[0] - KEY_SPAN, window[1] + KEY_SPAN) if window else listed_keys
        nominal = {key: named[prefix] for prefix, found in listed.items() for key in found}
        plausible = timedelta(hours=whole_number(self.plausible_hours, "plausible_hours"))
        time_bounds = {key: (epoch_ms(first - plausible), epoch_ms(last + plausible))
                       for key, (first, last) in nominal.items()} if self.time_field else None

        def covers(key: str) -> Span:
            """The hours an event object covers: those its key names, widened by the spill (the runs
            that read it for their own hours)."""
            first, last = nominal[key]
            return first - timedelta(hours=spill), last + timedelta(hours=spill)

        now = datetime.now(timezone.utc).replace(tzinfo=None)
        if self.time_field and dialect == "redshift":
            assert window is not None  # a table staged by time has a listing window
            return self._stage_units(
                hook, dialect, source, listed, named, window, variables, parameters, spill=spill, plausible=plausible,
                retention=retention, note=note, now=now, nominal=nominal,
            )
        staged: dict[str, StagedObject] = {}
        restated_before: list[Span] = []
        # A catalog's files set aside as bad, named in every run until they change (an event object set
        # aside fails the runs of its hours instead).
        set_aside_objects: list[dict[str, Any]] = []
        try:
            with transaction(hook, dialect) as cursor:
                execute_statements(cursor, render_statements("stage/begin.sql", **variables), parameters)
                books = Bookkeeping(cursor, variables, parameters, source, self.log)
                if self.discovery and self.discovery.by_notifications:
                    staged, objects = self.discovery.resolve(cursor, parameters, source)
                else:
                    staged = books.staged(restage)
                plan = plan_listing(
                    listed, objects, staged, parameters["batch_id"], by_time=bool(self.time_field),
                    covers_run=(lambda key: overlaps(covers(key), [(start, end)])) if self.time_field
                    else lambda key: False,
                )
                self.log.info("%d objects listed: %d to stage, %d gone, %d set aside as bad", len(objects),
                              len(plan.to_stage), len(plan.gone), len(plan.skipped_rejected))
                # A new object has nothing to forget: only those with a record (rewritten, gone, set aside).
                for key in [key for key in [*plan.to_stage, *plan.gone] if key in staged]:
                    books.forget(key, staged[key])
                rows, rejected, ignored, coverage = self._copy(
                    cursor, dialect, source, plan.to_stage, fields, columns, variables, parameters, now, time_bounds
                )
                if self.catalog_key and plan.to_stage:
                    execute_statements(cursor, render_statements("stage/replace_catalog_rows.sql", **variables),
                                       parameters)
                if self.discovery:
                    self.discovery.record(cursor, parameters, now, objects, plan.to_stage)
                    set_aside_objects = self._catalog_set_aside(books, staged, objects, plan)
                restated: list[dict[str, Any]] = []
                purged = 0
                if self.time_field:
                    assert window is not None  # a table staged by time has a listing window
                    restated = books.restate(plan, staged, coverage, covers, now)
                    restatement.record_loaded(cursor, parameters, now)
                    books.touch(window, now)
                    if retention:
                        purged = books.purge(objects, now, retention)
                    # Over every attempt of the run (on the Data API the read runs ahead of this attempt's batch).
                    restated_before = restatement.merge([
                        *restatement.restated_spans(cursor, parameters, self.table),
                        *[(entry["hours_start"], entry["hours_end"]) for entry in restated]])
                if plan.to_stage or plan.gone or purged:
                    execute_statements(cursor, render_statements("stage/analyze.sql", **variables), parameters)
                audit = record_load(
                    cursor, parameters, task_id=self.task_id, table=self.table, rows_read=rows, rows_written=rows,
                    rows_rejected=rejected, objects=list(plan.to_stage), uri=source.uri, note=note,
                )
        except _Refused as refused:
            set_aside(hook, dialect, variables, parameters, refused.versions, staged, now, refused.message, self.log)
            raise AirflowFailException(_refused_message(refused.message, bool(self.time_field))) from None
        self.staged_sources = [source.uri(key) for key, found in listed.items() if found.keys() & plan.to_stage.keys()]
        if self.discovery and self.discovery.by_notifications and plan.to_stage:
            self.staged_sources = [source.uri(self.s3_key)]
        self._report(source, plan, rows, rejected, max_errors, ignored, restated, purged)
        for key in self.discovery.removed if self.discovery else []:
            self.log.warning("%s was removed from the bucket: its songs stay in the catalog (it only grows)",
                             source.uri(key))
        if self.time_field:
            # Its own hours' objects set aside were tried again above; those of the hours it restates fail it.
            self._block_restated_hours(source, {key: staged[key].rejected_reason for key in plan.skipped_rejected},
                                       restated_before, nominal, spill)
        elif set_aside_objects:
            set_aside_alert(context, self.task_id, set_aside_objects)
        return self._result(audit, ignored, len(objects), plan, set_aside_objects, purged, restated,
                            restated_before, parameters)

    def _stage_units(
        self, hook: Any, dialect: str, source: ObjectSource, listed: dict[str, dict[str, str]],
        named: dict[str, tuple[datetime, datetime]], window: Span, variables: dict[str, Any],
        parameters: dict[str, Any], *, spill: int, plausible: timedelta, retention: int, note: str | None,
        now: datetime, nominal: dict[str, tuple[datetime, datetime]],
    ) -> dict[str, Any]:
        """Events on Redshift: by staging unit (the keys ``s3_key`` names: an hour prefix, a day file), each
        unit one manifest COPY in a transaction of its own, then the run's bookkeeping
        (:mod:`sparkify.staging.unit_staging`)."""
        from sparkify.staging.redshift import CopySettings
        from sparkify.staging.unit_staging import UnitStaging

        def covers(unit: str) -> Span:
            first, last = named[unit]
            return first - timedelta(hours=spill), last + timedelta(hours=spill)

        def time_bounds(unit: str) -> tuple[int, int]:
            first, last = named[unit]
            return epoch_ms(first - plausible), epoch_ms(last + plausible)

        copy = CopySettings.prepare(
            source, parameters, iam_role=self.iam_role or None, aws_conn_id=self.aws_conn_id,
            region=self.region or None, jsonpaths_uri=self.jsonpaths_uri, manifest_prefix=self.manifest_prefix,
        )
        outcome = UnitStaging(hook, dialect, copy, variables, parameters, covers, time_bounds, now, self.log).stage(
            listed, window=window, pattern=self.s3_key, retention=retention, task_id=self.task_id, note=note)
        if outcome.refusals:
            others = "".join(f"\nAnd: {refusal.splitlines()[0]}" for refusal in outcome.refusals[1:])
            raise AirflowFailException(_refused_message(outcome.refusals[0], by_time=True) + others)
        plan = Plan(dict(outcome.staged), list(outcome.gone), list(outcome.skipped_rejected))
        self.staged_sources = [source.uri(unit) for unit in outcome.units_staged]
        self._report(source, plan, None, outcome.rejected, variables["max_errors"], {}, outcome.restated,
                     outcome.purged)
        for unit in outcome.units_attached:
            self.log.warning("%s was staged by an earlier attempt's Data API batch, found by its name: not sent again",
                             source.uri(unit))
        self._block_restated_hours(source, outcome.skipped_rejected, outcome.restated_before, nominal, spill)
        objects = {key for found in listed.values() for key in found}
        return self._result(outcome.audit, {}, len(objects), plan, [], outcome.purged, outcome.restated,
                            outcome.restated_before, parameters) | {
            "units_listed": len(listed), "units_staged": len(outcome.units_staged),
            "units_attached": len(outcome.units_attached),
        }

    def _block_restated_hours(self, source: ObjectSource, skipped: dict[str, str | None], restated: list[Span],
                              nominal: dict[str, tuple[datetime, datetime]], spill: int) -> None:
        """Fail a run (after its staging committed) whose restated hours event objects set aside as bad
        cover: its own hours' objects set aside were tried again, and failed it already."""
        pad = timedelta(hours=spill)
        blocking = [{"object_uri": source.uri(key), "reason": reason} for key, reason in skipped.items()
                    if overlaps((nominal[key][0] - pad, nominal[key][1] + pad), restated)]
        if blocking:
            raise AirflowFailException(_blocked_message(blocking, restated))

    def _result(self, audit: dict[str, Any], ignored: dict[str, int], objects_listed: int, plan: Plan,
                set_aside_objects: list[dict[str, Any]], purged: int, restated: list[dict[str, Any]],
                restated_before: list[Span], parameters: dict[str, Any]) -> dict[str, Any]:
        """The task's XCom: its audit record and what the run's staging found."""
        start, end = parameters["interval_start"], parameters["interval_end"]
        return {
            **(self.discovery.figures() if self.discovery else {}),
            **audit,
            "ignored_keys": ignored,
            "objects_listed": objects_listed,
            "objects_gone": len(plan.gone),
            "objects_set_aside": len(set_aside_objects),
            "set_aside": set_aside_objects,
            "objects_purged": purged,
            # JSON-native, as an XCom is read back by the run summary and the UI.
            "restated": [{**record, "hours_start": f"{record['hours_start']:%Y-%m-%dT%H:%M}",
                          "hours_end": f"{record['hours_end']:%Y-%m-%dT%H:%M}"} for record in restated],
            "hours_loaded": [span_text(span) for span in restatement.merge([(start, end), *restated_before])],
        }

    def _catalog_set_aside(self, books: Bookkeeping, staged: dict[str, StagedObject], objects: dict[str, str],
                           plan: Plan) -> list[dict[str, Any]]:
        """The catalog's files set aside as bad and still so after this run; a file gone from the bucket (its
        removal notified, or a full listing without it) has changed: its record goes. A listing read every
        record already; notifications read only those they name, so the set-aside ones are read apart."""
        assert self.discovery is not None
        aside = books.set_aside_records() if self.discovery.by_notifications else {
            key: record.rejected_reason for key, record in staged.items() if record.rejected_at is not None}
        gone = {key for key in aside if key in self.discovery.removed
                or (not self.discovery.by_notifications and key not in objects)}
        for key in sorted(gone):
            books.forget(key, None)
        return [{"object_uri": books.source.uri(key), "reason": reason} for key, reason in sorted(aside.items())
                if key not in gone and key not in plan.to_stage]

    def _copy(
        self, cursor: Any, dialect: str, source: ObjectSource, to_stage: dict[str, str], fields: list[str],
        columns: list[str], variables: dict[str, Any], parameters: dict[str, Any], now: datetime,
        time_bounds: dict[str, tuple[int, int]] | None,
    ) -> tuple[int | None, int | None, dict[str, int], dict[str, tuple[int | None, int | None]]]:
        """Stage the objects; (rows, rejected, ignored keys, key → (first, last) time of its rows)."""
        if dialect == "redshift":
            from sparkify.staging import redshift as staging_redshift

            if not to_stage:
                return None, 0, {}, {}
            copy = staging_redshift.CopySettings.prepare(
                source, parameters, iam_role=self.iam_role or None, aws_conn_id=self.aws_conn_id,
                region=self.region or None, jsonpaths_uri=self.jsonpaths_uri, manifest_prefix=self.manifest_prefix,
            )
            try:
                return staging_redshift.stage_objects(cursor, copy, to_stage, variables=variables,
                                                      parameters=parameters, staged_at=now)
            except staging_redshift.RefusedObjects as refused:
                raise _Refused({key: to_stage[key] for key in refused.keys},
                               f"{self.table}: {refused}; nothing of this run was staged") from None
        from sparkify.staging import postgres as staging_postgres

        try:
            staged = staging_postgres.stage_objects(
                cursor, source, to_stage, fields=fields, columns=columns, variables=variables, parameters=parameters,
                time_field=self.time_field, time_bounds=time_bounds, max_record_bytes=self.max_record_bytes,
                staged_at=now,
            )
            count_read(len(to_stage), [source.sizes.get(key) for key in to_stage])
            return staged
        except staging_postgres.RefusedObject as refused:
            raise _Refused({refused.key: to_stage[refused.key]},
                           f"{self.table}: {refused.message}; nothing of this run was staged") from None

    def _report(self, source: ObjectSource, plan: Plan, rows: int | None,
                rejected: int | None, max_errors: int, ignored: dict[str, int], restated: list[dict[str, Any]],
                purged: int) -> None:
        self.log.info("Staged %s rows from %d objects into %s", "?" if rows is None else rows,
                      len(plan.to_stage), self.table)
        for record in restated:
            self.log.warning("%s object %s: restating %s–%s", record["change"], record["object_uri"],
                             f"{record['hours_start']:%Y-%m-%d %H:%M}", f"{record['hours_end']:%Y-%m-%d %H:%M}")
        for key in plan.gone:
            self.log.warning("%s is gone from the bucket: its events are withdrawn", source.uri(key))
        for key in plan.skipped_rejected:
            self.log.warning("%s is set aside as bad (more bad records than max_errors): not staged until it "
                             "changes", source.uri(key))
        if rejected:
            self.log.warning("%d bad records (max_errors=%d) are in the quarantine table", rejected, max_errors)
        if ignored:
            self.log.warning("Keys not in %s were ignored: %s", self.jsonpaths, ignored)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the keys or prefixes that held the staged objects → the staging table."""
        return staging_lineage(self.redshift_conn_id, self.table, getattr(self, "staged_sources", []))


#: The two ways on from an event object set aside as bad, on a line of its own in every error naming one
#: (the first line, which alerts and run summaries show, names the object and its first bad line).
_WAYS_ON = ("Either re-publish a fixed object (the next runs stage it), or raise the Variable sparkify_max_errors "
            "to keep its bad records in the quarantine; then clear the failed runs of its hours.")


def _refused_message(message: str, by_time: bool) -> str:
    """The error of a run whose objects were refused as bad: an event object fails every run of its hours."""
    if not by_time:
        return f"{message}\nIt is set aside: later runs stage the other objects and skip it until it changes."
    return f"{message}\nIt is set aside: every run of the hours it covers fails until it changes.\n{_WAYS_ON}"


def _blocked_message(blocking: list[dict[str, Any]], restated: list[Span]) -> str:
    """The error of a run that restates hours which event objects set aside as bad cover."""
    hours = ", ".join(span_text(span) for span in restated)
    named = "; ".join(f"{entry['object_uri']} ({entry['reason'] or 'set aside as bad'})" for entry in blocking)
    return (f"this run restates {hours}, which event objects set aside as bad cover: {named}\n"
            f"No run of those hours succeeds until they change.\n{_WAYS_ON}")


@dataclass
class _Refused(Exception):
    """Object versions (key → version) with more bad records than allowed: the run fails, they are set aside."""

    versions: dict[str, str]
    message: str
