"""StageToRedshiftOperator: the bucket's JSON objects into a staging table, each object version once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from sparkify.cost import counting
from sparkify.lineage import staging_lineage
from sparkify.notifications.alerts import set_aside_alert
from sparkify.sources.json_records import MAX_RECORD_BYTES
from sparkify.sources.objects import open_source
from sparkify.staging.catalog import Discovery, discover
from sparkify.staging.jsonpaths import read_jsonpaths, snake_case
from sparkify.staging.listing import list_catalog, list_events
from sparkify.staging.objects import ObjectStaging, Reading
from sparkify.staging.outcome import Staged, block_restated_hours
from sparkify.staging.redshift import CopySettings
from sparkify.warehouse.run_parameters import flag, run_parameters, whole_number
from sparkify.warehouse.sql import quote_identifier
from sparkify.warehouse.transactions import warehouse_hook

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context


@dataclass(frozen=True)
class StagingSettings:
    """The operator's numeric and flag arguments, rendered and checked."""

    restage: bool
    max_errors: int
    spill: int
    lookback: int
    retention: int
    plausible: int


class StageToRedshiftOperator(BaseOperator):
    """
    Stage the bucket's JSON objects into a staging table, each object version once.

    Each JSON key the JSONPaths file names lands in the column of the same name in snake_case
    (``firstName`` → ``first_name``), plus ``batch_id``, the run that staged it. ``staged_objects``
    records every staged object version (the ETag on S3; size and modification time in a folder): a
    listed object is staged only when new or changed, its new rows replacing its old ones.

    A table staged by time (``time_field``: events) lists the objects of its interval, of ``spill_hours``
    either side and of the ``lookback_hours`` before; an object new, rewritten or gone since it was staged
    *restates* the hours before the interval that its rows cover and runs have loaded
    (:mod:`sparkify.staging.restatement`), which the run's loads and checks then cover (``restated_table``).
    A catalog (``catalog_key``: songs) is listed whole, or read from the bucket's notifications
    (``catalog_queue``, :mod:`sparkify.staging.catalog`); it only grows.

    On a ``postgres`` connection the operator reads the objects itself into ``COPY … FROM STDIN``
    (:mod:`sparkify.staging.postgres`); on a ``redshift`` one it issues ``COPY … FROM 's3://…'`` through
    manifests (:mod:`sparkify.staging.redshift`), events unit by unit (:mod:`sparkify.staging.unit_staging`).

    Bad records follow Redshift's MAXERROR rule (``max_errors`` go to ``quarantine``); an object with more is
    set aside: an event object fails every run of its hours until it changes, a song file is skipped and
    named by every run (docs/bad-input.md). The XCom says what the run staged, restated and cost.

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
        the loaded hours of those new, changed or gone (templated)
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

    def _settings(self, fields: list[str]) -> StagingSettings:
        """The rendered arguments, checked."""
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
        return StagingSettings(restage, whole_number(self.max_errors, "max_errors"),
                               whole_number(self.spill_hours, "spill_hours"),
                               whole_number(self.lookback_hours, "lookback_hours"), retention,
                               whole_number(self.plausible_hours, "plausible_hours"))

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
        settings = self._settings(fields)
        run = run_parameters(context)
        parameters: dict[str, Any] = {**run, "table_name": self.table}
        columns = [snake_case(name) for name in fields]
        variables = {
            "dialect": dialect,
            "table": quote_identifier(self.table),
            "columns": ", ".join(map(quote_identifier, columns)),
            "time_column": quote_identifier(snake_case(self.time_field)) if self.time_field else None,
            "catalog_key": quote_identifier(snake_case(self.catalog_key)) if self.catalog_key else None,
            "restage": settings.restage,
            "max_errors": settings.max_errors,
        }
        if settings.restage:
            self.log.warning("Full re-stage: forgetting every staged object of %s", self.table)
        # A catalog read by notifications asks S3 nothing in an hour with nothing new.
        source = open_source(self.source, self.aws_conn_id, check=not (self.catalog_key and self.catalog_queue))
        interval = (run["interval_start"], run["interval_end"])
        if self.time_field:
            listing = list_events(source, self.s3_key, interval, lookback=settings.lookback, spill=settings.spill)
        else:
            self.discovery = discover(
                hook, dialect, parameters, source, catalog_prefix=self.s3_key, queue_url=self.catalog_queue,
                reconcile_hours=self.reconcile_hours, restage=settings.restage, aws_conn_id=self.aws_conn_id,
                now=datetime.now(timezone.utc).replace(tzinfo=None), log=self.log,
            )
            listing = list_catalog(source, self.s3_key, whole=not self.discovery.by_notifications)
        if listing.note:
            self.log.warning("%s", listing.note)
        now = datetime.now(timezone.utc).replace(tzinfo=None)

        def redshift_copy() -> CopySettings:
            return CopySettings.prepare(
                source, parameters, iam_role=self.iam_role or None, aws_conn_id=self.aws_conn_id,
                region=self.region or None, jsonpaths_uri=self.jsonpaths_uri, manifest_prefix=self.manifest_prefix,
            )

        if self.time_field and dialect == "redshift":
            from sparkify.staging.unit_staging import UnitStaging

            staged = UnitStaging(hook, dialect, redshift_copy(), variables, parameters, listing,
                                 timedelta(hours=settings.plausible), now, self.log).stage(
                retention=settings.retention, pattern=self.s3_key, task_id=self.task_id)
        else:
            reading = Reading(fields, columns, self.time_field, timedelta(hours=settings.plausible),
                              self.max_record_bytes)
            staged = ObjectStaging(hook, dialect, source, listing, variables, parameters, reading, redshift_copy,
                                   self.discovery, now, self.log).stage(settings.restage, settings.retention,
                                                                        self.task_id)
        return self._told(context, source, listing, staged, settings, parameters)

    def _told(self, context: Context, source: Any, listing: Any, staged: Staged, settings: StagingSettings,
              parameters: dict[str, Any]) -> dict[str, Any]:
        """Log what the run staged, fail it if hours it restates are set aside, warn of the catalog's files set
        aside; its XCom."""
        self.staged_sources = staged.sources
        if self.discovery and self.discovery.by_notifications and staged.to_stage:
            self.staged_sources = [source.uri(self.s3_key)]
        staged.log(self.log, source, self.table, self.jsonpaths, settings.max_errors)
        for key in self.discovery.removed if self.discovery else []:
            self.log.warning("%s was removed from the bucket: its songs stay in the catalog (it only grows)",
                             source.uri(key))
        if self.time_field:
            block_restated_hours(source, listing, staged.skipped, staged.restated_before)
        elif staged.set_aside:
            set_aside_alert(context, self.task_id, staged.set_aside)
        extra = self.discovery.figures() if self.discovery else {}
        return {**extra, **staged.result(parameters, len(listing.objects), by_time=bool(self.time_field))}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the keys or prefixes that held the staged objects → the staging table."""
        return staging_lineage(self.redshift_conn_id, self.table, getattr(self, "staged_sources", []))
