"""Events into Redshift, staging unit by staging unit (:mod:`sparkify.staging.units`), each in a transaction
of its own, then the run's own bookkeeping in one more.

1. What is staged is read (a transaction of its own on a driver; a read ahead on the Data API), and each
   unit the listing shows new, changed or gone is planned.
2. Each such unit is replaced in one transaction: under the staging lock, its rows, rejected records and
   members' records are forgotten, one manifest COPY per compression loads all its members, its rows are
   tagged with the unit's key, each member recorded with the unit's coverage, and the hours it restates
   recorded. On the Data API that transaction is one ``BatchExecuteStatement`` under a name of its own
   (:func:`~sparkify.staging.units.statement_name`): an attempt that finds it running (its worker restarted)
   waits for it, one that finds it finished takes it as done. On a driver the unit's records are read again
   under the lock first, so two runs meeting the same new unit stage it once.
3. A unit whose COPY fails on bad records is rolled back and the members its load errors name are set aside
   (their own transaction); the run goes on with its other units, then fails naming the first.
4. Once every unit is in: the run's interval recorded as loaded, the staged units it listed touched, the
   retention's expired units dropped, the restated hours read back over every attempt, ANALYZE and the audit
   record, in one transaction.

A run that fails midway leaves each unit old or new; its retry plans again from what is staged and does the
rest. The hours a unit restates are recorded with the unit, under the run: its loads, over all its attempts,
cover them (:func:`sparkify.staging.restatement.restated_spans`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from sparkify import cost
from sparkify.exceptions import BatchFailed, ObjectsRefused
from sparkify.staging import restatement
from sparkify.staging.bookkeeping import Bookkeeping, StagedObject, set_aside
from sparkify.staging.listing import Listing
from sparkify.staging.outcome import Staged, refused_message
from sparkify.staging.redshift import (
    CopySettings,
    count_rejected,
    forget_unit_statements,
    run_unit,
    unit_load_errors,
    unit_statements,
)
from sparkify.staging.restatement import Span, hours_between, overlaps
from sparkify.staging.units import Unit, plan_units, statement_name, unit_of, unit_text
from sparkify.warehouse.audit import record_load
from sparkify.warehouse.data_api import DataApiWarehouse
from sparkify.warehouse.sql import quote_literal, render_statements
from sparkify.warehouse.transactions import Cursor, execute_statements, redact, transaction


@dataclass
class EventsStaging:
    """What a run's staging of events did, for the operator's log, audit record and XCom."""

    #: The members of the units staged (key → version), and those gone from them.
    staged: dict[str, str] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    units_staged: list[str] = field(default_factory=list)
    #: Units an earlier attempt's batch staged (found by its name): not sent again.
    units_attached: list[str] = field(default_factory=list)
    #: Members set aside as bad whose units the run skipped, with why they were set aside.
    skipped_rejected: dict[str, str | None] = field(default_factory=dict)
    restated: list[dict[str, Any]] = field(default_factory=list)
    #: The hours the run restated over all its attempts.
    restated_before: list[Span] = field(default_factory=list)
    purged: int = 0
    rejected: int | None = 0
    #: Why units were refused (their objects set aside): the run fails with the first.
    refusals: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnitStaging:
    """One run's staging of events, unit by unit (see the module docstring)."""

    hook: Any
    dialect: str
    copy: CopySettings
    variables: dict[str, Any]
    parameters: dict[str, Any]
    #: The units listed: each a key the pattern names, with the hours it covers.
    listing: Listing
    #: How far an event's time may lie from its unit's hours.
    plausible: timedelta
    now: datetime
    log: Any
    outcome: EventsStaging = field(default_factory=EventsStaging)

    @property
    def data_api(self) -> bool:
        return isinstance(self.hook, DataApiWarehouse)

    def covers(self, unit_key: str) -> Span:
        return self.listing.covers(unit_key)

    def covers_run(self, unit_key: str) -> bool:
        return overlaps(self.covers(unit_key), [(self.parameters["interval_start"], self.parameters["interval_end"])])

    def stage(self, *, pattern: str, retention: int, task_id: str) -> Staged:
        """Stage the units listed and record the run's bookkeeping (see the module docstring); a unit refused
        fails the run once the others are staged."""
        listed = {unit: dict(members) for unit, members in self.listing.listed.items()}
        assert self.listing.window is not None  # events are listed by time
        if retention:  # the retention finds a staged object's unit from the pattern alone
            try:
                unit_of(pattern, "")
            except ValueError as error:
                raise AirflowFailException(f"s3_key on Redshift with retention_hours: {error}") from None
        with transaction(self.hook, self.dialect) as cursor:
            staged = Bookkeeping(cursor, self.variables, self.parameters, self.copy.source, self.log).staged(False)
        plan = plan_units(listed, staged, self.parameters["batch_id"], self.covers_run)
        self.outcome.skipped_rejected = {key: staged[key].rejected_reason for key in plan.skipped_rejected}
        self.log.info("%d units listed (%d objects): %d to stage", len(listed),
                      sum(map(len, listed.values())), len(plan.to_stage))
        loaded = self._loaded_ahead(plan.to_stage) if self.data_api else None
        for unit in plan.to_stage:
            self._stage_unit(unit, loaded)
        outcome = self.outcome
        if outcome.refusals:
            others = "".join(f"\nAnd: {refusal.splitlines()[0]}" for refusal in outcome.refusals[1:])
            raise AirflowFailException(refused_message(outcome.refusals[0], by_time=True) + others)
        self._bookkeeping(listed, self.listing.window, pattern, retention, task_id, self.listing.note)
        for unit_key in outcome.units_attached:
            self.log.warning("%s was staged by an earlier attempt's Data API batch, found by its name: not sent again",
                             self.copy.source.uri(unit_key))
        return Staged(
            outcome.audit, dict(outcome.staged), list(outcome.gone), dict(outcome.skipped_rejected),
            rejected=outcome.rejected, purged=outcome.purged, restated=outcome.restated,
            restated_before=outcome.restated_before,
            sources=[self.copy.source.uri(unit_key) for unit_key in outcome.units_staged],
            extra={"units_listed": len(listed), "units_staged": len(outcome.units_staged),
                   "units_attached": len(outcome.units_attached)},
        )

    def _loaded_ahead(self, units: list[Unit]) -> list[Span] | None:
        """The Data API's hours loaded before the run's interval, read once for all its units: a read runs
        ahead of the batches anyway (docs/redshift.md says what that allows)."""
        start = self.parameters["interval_start"]
        earliest = min((span[0] for unit in units for span in [*unit.old_hours(), self.covers(unit.key)]),
                       default=start)
        if earliest >= start:
            return []
        with transaction(self.hook, self.dialect) as cursor:
            return restatement.loaded_spans(cursor, self.parameters, (earliest, start))

    def _stage_unit(self, unit: Unit, loaded: list[Span] | None) -> None:
        """Replace one unit in a transaction of its own (see the module docstring)."""
        max_errors = self.variables["max_errors"]
        name = statement_name(self.parameters["table_name"], self.parameters["batch_id"], unit, max_errors)
        if self.data_api and self.hook.attach(name):
            self.outcome.units_attached.append(unit.key)
            return
        statements = self._statements(unit, name)
        try:
            with transaction(self.hook, self.dialect, name=name) as cursor:
                execute_statements(cursor, render_statements("stage/begin.sql", **self.variables), self.parameters)
                if not self.data_api:
                    fresh = self._records(cursor, unit)
                    if fresh != unit.records:  # another run replaced it since it was read
                        again = plan_units({unit.key: unit.members}, fresh, self.parameters["batch_id"],
                                           self.covers_run).to_stage
                        if not again:
                            self.log.info("%s was replaced by another run meanwhile: nothing left to stage", unit.key)
                            return
                        unit = again[0]
                        name = statement_name(self.parameters["table_name"], self.parameters["batch_id"], unit,
                                              max_errors)
                        statements = self._statements(unit, name)
                first_ts, last_ts = unit.old_bounds()
                parameters = {**self.parameters, "staged_at": self.now, "first_ts": first_ts, "last_ts": last_ts}
                run_unit(cursor, self.copy, unit, statements, parameters, max_errors)
                rejected = count_rejected(cursor, parameters, max_errors) if unit.members else 0
                restated = restatement.restate(cursor, self.parameters, {
                    self.copy.source.uri(unit.key): (unit.change, [*unit.old_hours(), *self._new_hours(cursor, unit)]),
                }, self.now, loaded)
        except ObjectsRefused as refused:
            self._refuse(unit, refused)
            return
        except BatchFailed as failed:
            with transaction(self.hook, self.dialect) as cursor:
                refusal = unit_load_errors(self.hook, cursor, self.copy, unit, failed.statement_id, max_errors)
            if refusal is None:
                if self.copy.secrets:  # Redshift's error may quote the COPY, keys and all
                    message = redact(str(failed), self.copy.secrets)
                    raise AirflowFailException(f"Redshift COPY failed: {message}") from None
                raise
            self._refuse(unit, refusal)
            return
        self.log.info("Staged %s%s", unit_text(unit.key, len(unit.members)),
                      f", {len(unit.gone)} gone" if unit.gone else "")
        cost.count_read(len(unit.members), [self.copy.source.sizes.get(key) for key in unit.members])
        self.outcome.staged.update(unit.members)
        self.outcome.gone += unit.gone
        self.outcome.units_staged.append(unit.key)
        self.outcome.restated += restated
        if rejected is None or self.outcome.rejected is None:
            self.outcome.rejected = None
        elif unit.members:  # counted after its COPY: the run's total so far, over its attempts
            self.outcome.rejected = rejected

    def _statements(self, unit: Unit, name: str) -> list[str]:
        return unit_statements(self.copy, unit, variables=self.variables, parameters=self.parameters,
                               staged_at=self.now, time_bounds=self.listing.time_bounds(unit.key, self.plausible),
                               name=name)

    def _records(self, cursor: Cursor, unit: Unit) -> dict[str, StagedObject]:
        """The unit's members' records as they are now (a driver reads them under the lock)."""
        execute_statements(cursor, render_statements(
            "redshift/unit_records.sql", unit_key=quote_literal(unit.key), unit_length=len(unit.key)),
            self.parameters)
        return {key: StagedObject(*record) for key, *record in cursor.fetchall()}

    def _new_hours(self, cursor: Cursor, unit: Unit) -> list[Span]:
        """The hours the unit's new rows cover: read back on a driver; on the Data API, whose reads run ahead
        of the batch, the hours the unit covers stand for them."""
        if not unit.members:
            return []
        if self.data_api:
            return [self.covers(unit.key)]
        execute_statements(cursor, render_statements(
            "redshift/unit_coverage.sql", unit_key=quote_literal(unit.key), unit_length=len(unit.key)),
            self.parameters)
        found = cursor.fetchone()
        span = hours_between(*found) if found else None
        return [span] if span else []

    def _refuse(self, unit: Unit, refused: ObjectsRefused) -> None:
        """Set aside the unit's members its load errors name (a transaction of their own); the run goes on."""
        set_aside(self.hook, self.dialect, self.variables, self.parameters,
                  {key: unit.members[key] for key in refused.keys}, unit.records, self.now, str(refused), self.log)
        self.outcome.refusals.append(
            f"{self.parameters['table_name']}: {refused}; its unit {self.copy.source.uri(unit.key)} was not staged "
            "(the run's other units are, each in its own transaction)")

    def _bookkeeping(self, listed: dict[str, dict[str, str]], window: Span, pattern: str, retention: int,
                     task_id: str, note: str | None) -> None:
        """The run's own transaction, once its units are in (see the module docstring)."""
        outcome = self.outcome
        with transaction(self.hook, self.dialect) as cursor:
            execute_statements(cursor, render_statements("stage/begin.sql", **self.variables), self.parameters)
            books = Bookkeeping(cursor, self.variables, self.parameters, self.copy.source, self.log)
            restatement.record_loaded(cursor, self.parameters, self.now)
            books.touch(window, self.now)
            if retention:
                outcome.purged = self._purge(cursor, listed, pattern, retention)
            outcome.restated_before = restatement.merge([
                *restatement.restated_spans(cursor, self.parameters, self.parameters["table_name"]),
                *[(entry["hours_start"], entry["hours_end"]) for entry in outcome.restated]])
            if outcome.units_staged or outcome.purged:
                execute_statements(cursor, render_statements("stage/analyze.sql", **self.variables), self.parameters)
            outcome.audit = record_load(
                cursor, self.parameters, task_id=task_id, table=self.parameters["table_name"], rows_read=None,
                rows_written=None, rows_rejected=outcome.rejected, objects=list(outcome.staged),
                uri=self.copy.source.uri, note=note,
            )

    def _purge(self, cursor: Cursor, listed: dict[str, dict[str, str]], pattern: str, retention: int) -> int:
        """Drop the staged units no run has listed for ``retention`` hours (those of at most ten expired
        records a run: each unit costs three statements, and a Data API batch takes forty); how many."""
        purge_before = self.now - timedelta(hours=retention)
        execute_statements(cursor, render_statements("stage/expired_objects.sql"),
                           {**self.parameters, "purge_before": purge_before})
        expired: dict[str, list[tuple[int | None, int | None]]] = {}
        for key, first, last in cursor.fetchall():
            unit_key = unit_of(pattern, key)
            if unit_key not in listed:  # not one this run listed (the Data API read ran ahead of its touch)
                expired.setdefault(unit_key, []).append((first, last))
        for unit_key, spans in expired.items():
            firsts = [first for first, _ in spans if first is not None]
            lasts = [last for _, last in spans if last is not None]
            execute_statements(cursor, forget_unit_statements(self.copy, unit_key, self.variables), {
                **self.parameters, "first_ts": min(firsts, default=None), "last_ts": max(lasts, default=None),
            })
        if expired:
            self.log.info("Dropped %d staged units no run listed since %s (retention %d hours), the oldest %s",
                          len(expired), purge_before, retention, self.copy.source.uri(next(iter(expired))))
        return len(expired)
