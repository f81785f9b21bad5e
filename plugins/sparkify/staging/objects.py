"""Staging object by object, in one transaction: events into PostgreSQL, and a catalog into either warehouse.

Under the staging lock: what is staged is read (for a catalog read by notifications, only the records of the
files they name), the listing planned against it (:func:`~sparkify.staging.bookkeeping.plan_listing`), each
rewritten, gone or retried version forgotten, the versions to stage copied by the warehouse's engine
(:mod:`sparkify.staging.postgres`, :mod:`sparkify.staging.redshift`), and then, for events, the hours they
restate recorded (:mod:`sparkify.staging.restatement`) with the run's interval as loaded, the retention applied;
for a catalog, its rows replaced by key and its discovery recorded. A version refused as bad rolls it all back
and is set aside in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk.exceptions import AirflowFailException

from sparkify.cost import count_read
from sparkify.exceptions import ObjectsRefused
from sparkify.sources.objects import ObjectSource
from sparkify.staging import restatement
from sparkify.staging.bookkeeping import Bookkeeping, Plan, StagedObject, as_staged, plan_listing, set_aside
from sparkify.staging.catalog import Discovery
from sparkify.staging.listing import Listing
from sparkify.staging.outcome import Copied, Staged, refused_message
from sparkify.staging.redshift import CopySettings
from sparkify.staging.restatement import overlaps
from sparkify.warehouse.audit import record_load
from sparkify.warehouse.sql import render_statements

if TYPE_CHECKING:
    import psycopg

from sparkify.warehouse.transactions import Cursor, execute_statements, transaction


@dataclass(frozen=True)
class Reading:
    """How a task reads its objects: the JSON keys and their columns, the time key of a table staged by time,
    how far an event's time may lie from its object's hours, and the largest record."""

    fields: list[str]
    columns: list[str]
    time_field: str | None
    plausible: timedelta
    max_record_bytes: int


@dataclass
class ObjectStaging:
    """One run's staging of objects (see the module docstring)."""

    hook: Any
    dialect: str
    source: ObjectSource
    listing: Listing
    variables: dict[str, Any]
    parameters: dict[str, Any]
    reading: Reading
    #: The Redshift COPY's settings, prepared only when there is something to copy.
    redshift_copy: Callable[[], CopySettings]
    discovery: Discovery | None
    now: datetime
    log: Any

    @property
    def by_time(self) -> bool:
        return self.reading.time_field is not None

    def stage(self, restage: bool, retention: int, task_id: str) -> Staged:
        staged: dict[str, StagedObject] = {}
        objects = self.listing.objects
        plan = Plan()
        try:
            with transaction(self.hook, self.dialect) as cursor:
                execute_statements(cursor, render_statements("stage/begin.sql", **self.variables), self.parameters)
                books = Bookkeeping(cursor, self.variables, self.parameters, self.source, self.log)
                if self.discovery and self.discovery.by_notifications:
                    staged, objects = self.discovery.resolve(cursor, self.parameters, self.source)
                else:
                    staged = books.staged(restage)
                    objects = as_staged(self.source, objects, staged)
                plan = plan_listing(self.listing.listed, objects, staged, self.parameters["batch_id"],
                                    by_time=self.by_time, covers_run=self._covers_run)
                self.log.info("%d objects listed: %d to stage, %d gone, %d set aside as bad", len(objects),
                              len(plan.to_stage), len(plan.gone), len(plan.skipped_rejected))
                # A new object has nothing to forget: only those with a record (rewritten, gone, set aside).
                for key in [key for key in [*plan.to_stage, *plan.gone] if key in staged]:
                    books.forget(key, staged[key])
                copied = self._copy(cursor, plan.to_stage)
                result = Staged({}, dict(plan.to_stage), list(plan.gone),
                                {key: staged[key].rejected_reason for key in plan.skipped_rejected},
                                copied.rows, copied.rejected, copied.ignored)
                if self.by_time:
                    self._events_bookkeeping(cursor, books, plan, staged, copied.coverage, retention, result)
                else:
                    self._catalog_bookkeeping(cursor, books, plan, staged, objects, result)
                if plan.to_stage or plan.gone or result.purged:
                    execute_statements(cursor, render_statements("stage/analyze.sql", **self.variables),
                                       self.parameters)
                result.audit = record_load(
                    cursor, self.parameters, task_id=task_id, table=self.parameters["table_name"],
                    rows_read=copied.rows, rows_written=copied.rows, rows_rejected=copied.rejected,
                    objects=list(plan.to_stage), uri=self.source.uri, note=self.listing.note,
                )
        except ObjectsRefused as refused:
            versions = {key: plan.to_stage[key] for key in refused.keys}
            set_aside(self.hook, self.dialect, self.variables, self.parameters, versions, staged, self.now,
                      refused.message, self.log)
            raise AirflowFailException(refused_message(refused.message, self.by_time)) from None
        result.sources = [self.source.uri(key) for key, found in self.listing.listed.items()
                          if found.keys() & plan.to_stage.keys()]
        return result

    def _covers_run(self, key: str) -> bool:
        """Whether an event object holds hours of the run's own (a set-aside one is then tried again)."""
        own = (self.parameters["interval_start"], self.parameters["interval_end"])
        return self.by_time and overlaps(self.listing.covers(self.listing.unit_of[key]), [own])

    def _copy(self, cursor: Cursor, to_stage: dict[str, str]) -> Copied:
        """Copy the versions to stage with the warehouse's engine."""
        table = self.parameters["table_name"]
        if self.dialect == "redshift":
            from sparkify.staging import redshift

            if not to_stage:
                return Copied(rows=None)
            try:
                return redshift.stage_objects(cursor, self.redshift_copy(), to_stage, variables=self.variables,
                                              parameters=self.parameters, staged_at=self.now)
            except ObjectsRefused as refused:
                raise ObjectsRefused(refused.keys, f"{table}: {refused}; nothing of this run was staged") from None
        from sparkify.staging import postgres

        bounds = {key: self.listing.time_bounds(self.listing.unit_of[key], self.reading.plausible)
                  for key in to_stage} if self.by_time else None
        try:
            staged = postgres.stage_objects(  # a postgres connection's cursor is psycopg's
                cast("psycopg.Cursor[Any]", cursor), self.source, to_stage, fields=self.reading.fields,
                columns=self.reading.columns,
                variables=self.variables, parameters=self.parameters, time_field=self.reading.time_field,
                time_bounds=bounds, max_record_bytes=self.reading.max_record_bytes, staged_at=self.now,
            )
        except ObjectsRefused as refused:
            raise ObjectsRefused(refused.keys, f"{table}: {refused}; nothing of this run was staged") from None
        count_read(len(to_stage), [self.source.sizes.get(key) for key in to_stage])
        return staged

    def _events_bookkeeping(self, cursor: Cursor, books: Bookkeeping, plan: Plan, staged: dict[str, StagedObject],
                            coverage: dict[str, tuple[int | None, int | None]], retention: int,
                            result: Staged) -> None:
        """Restatement, the run's interval as loaded, the retention's clock and drops."""
        assert self.listing.window is not None  # a table staged by time has a listing window
        covers = self.listing.covers
        result.restated = books.restate(plan, staged, coverage, lambda key: covers(self.listing.unit_of[key]),
                                        self.now)
        restatement.record_loaded(cursor, self.parameters, self.now)
        books.touch(self.listing.window, self.now)
        if retention:
            result.purged = books.purge(self.listing.objects, self.now, retention)
        # Over every attempt of the run (on the Data API the read runs ahead of this attempt's batch).
        result.restated_before = restatement.merge([
            *restatement.restated_spans(cursor, self.parameters, self.parameters["table_name"]),
            *[(entry["hours_start"], entry["hours_end"]) for entry in result.restated]])

    def _catalog_bookkeeping(self, cursor: Cursor, books: Bookkeeping, plan: Plan, staged: dict[str, StagedObject],
                             objects: dict[str, str], result: Staged) -> None:
        """Rows replaced by key, the discovery recorded, the files still set aside (a file gone from the bucket,
        its removal notified or a full listing without it, has changed: its record goes). A listing read every
        record already; notifications read only those they name, so the set-aside ones are read apart."""
        if plan.to_stage:
            execute_statements(cursor, render_statements("stage/replace_catalog_rows.sql", **self.variables),
                               self.parameters)
        if self.discovery is None:
            return
        self.discovery.record(cursor, self.parameters, self.now, objects, plan.to_stage)
        aside = books.set_aside_records() if self.discovery.by_notifications else {
            key: record.rejected_reason for key, record in staged.items() if record.rejected_at is not None}
        gone = {key for key in aside if key in self.discovery.removed
                or (not self.discovery.by_notifications and key not in objects)}
        for key in sorted(gone):
            books.forget(key, None)
        result.set_aside = [{"object_uri": self.source.uri(key), "reason": reason}
                            for key, reason in sorted(aside.items()) if key not in gone and key not in plan.to_stage]
