"""What a staging run knows of what is staged: the ``staged_objects`` records, the plan its listing
makes against them (stage, forget, skip), and the hours its changes restate.

The statements run in the staging transaction the operator opens (``Bookkeeping``), but for the
record of a version set aside as bad, which commits on its own so that later runs skip it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sparkify.sources.objects import ObjectSource
from sparkify.staging import restatement
from sparkify.staging.restatement import Span, hours_between
from sparkify.warehouse.run_parameters import epoch_ms
from sparkify.warehouse.sql import render_statements
from sparkify.warehouse.transactions import Cursor, execute_statements, transaction

#: The width of ``staged_objects.rejected_reason`` (include/sql/create/create_tables.sql).
REASON_LENGTH = 1024


class StagedObject(NamedTuple):
    """One object's record in ``staged_objects`` (``stage/staged_objects.sql``), by column name."""

    version: str | None
    first_ts: int | None
    last_ts: int | None
    rejected_at: datetime | None = None
    batch_id: str | None = None
    row_count: int | None = None
    rejected_reason: str | None = None


@dataclass
class Plan:
    """What a run's listing means against what is staged."""

    to_stage: dict[str, str] = field(default_factory=dict)  # key → listed version
    gone: list[str] = field(default_factory=list)
    skipped_rejected: list[str] = field(default_factory=list)


def as_staged(source: ObjectSource, objects: dict[str, str], staged: dict[str, StagedObject]) -> dict[str, str]:
    """The listed versions, each replaced by its staged version where the source says both name the same
    bytes: a file listed just after it was written, and again later, is staged once."""
    versions = dict(objects)
    for key, version in objects.items():
        record = staged.get(key)
        if record and record.version and record.version != version and source.same_object(key, record.version, version):
            versions[key] = record.version
    return versions


def plan_listing(listed: Mapping[str, Mapping[str, str]], objects: dict[str, str], staged: dict[str, StagedObject],
                 batch: str, by_time: bool, covers_run: Callable[[str], bool] = lambda key: False) -> Plan:
    """Which listed versions to stage, which staged objects are gone (``by_time``: events; a catalog
    only grows) and which stay set aside as bad.

    A version set aside as bad is tried again by the run that set it aside (a retry, perhaps with a
    higher max_errors) and by every run it ``covers_run`` (events: the hours its key names are the
    run's): those runs fail on it until it changes. Other runs go on without it."""
    plan = Plan()
    for key, version in objects.items():
        record = staged.get(key)
        if record is None or record.version != version or (
                record.rejected_at is not None and (record.batch_id == batch or covers_run(key))):
            plan.to_stage[key] = version
        elif record.rejected_at is not None:
            plan.skipped_rejected.append(key)
    if by_time:  # an object staged under a listed key or prefix, no longer there, is gone
        prefixes = tuple(key for key in listed if key.endswith("/"))
        plan.gone = sorted(key for key in staged.keys() - objects.keys()
                           if key in listed or (prefixes and key.startswith(prefixes)))
    return plan


@dataclass
class Bookkeeping:
    """The bookkeeping statements of one staging transaction."""

    cursor: Cursor
    variables: dict[str, Any]
    parameters: dict[str, Any]
    source: ObjectSource
    log: Any  # the task's logger

    def staged(self, restage: bool) -> dict[str, StagedObject]:
        """The record of every object staged (or set aside) into the table, by key."""
        if restage:
            return {}  # forgotten by stage/begin.sql
        execute_statements(self.cursor, render_statements("stage/staged_objects.sql"), self.parameters)
        return {key: StagedObject(*record) for key, *record in self.cursor.fetchall()}

    def set_aside_records(self) -> dict[str, str | None]:
        """The objects of the table set aside as bad, and why, by key."""
        execute_statements(self.cursor, render_statements("stage/set_aside_objects.sql"), self.parameters)
        return dict(self.cursor.fetchall())

    def forget(self, key: str, record: StagedObject | None) -> None:
        """Remove what a staged version of the object left: its rows, rejected records and record."""
        execute_statements(self.cursor, render_statements("stage/forget_object.sql", **self.variables), {
            **self.parameters, "object_key": key, "object_uri": self.source.uri(key),
            "first_ts": record.first_ts if record else None, "last_ts": record.last_ts if record else None,
        })

    def restate(self, plan: Plan, staged: dict[str, StagedObject],
                coverage: dict[str, tuple[int | None, int | None]], covers: Callable[[str], Span],
                now: datetime) -> list[dict[str, Any]]:
        """Record the loaded hours before the run's interval that new, changed or gone objects cover
        (:func:`sparkify.staging.restatement.restate`); return them. Where the new rows' times are not known
        (the Data API) the hours the object ``covers`` stand for them."""
        changed: dict[str, tuple[str, list[Span]]] = {}
        for key in [*plan.to_stage, *plan.gone]:
            old = staged.get(key)
            found = [hours_between(old.first_ts, old.last_ts)] if old else []
            if key in plan.to_stage:
                found.append(hours_between(*coverage[key]) if key in coverage else covers(key))
            change = "gone" if key in plan.gone else "changed" if old else "late"
            changed[self.source.uri(key)] = (change, [span for span in found if span])
        return restatement.restate(self.cursor, self.parameters, changed, now)

    def touch(self, window: tuple[datetime, datetime], now: datetime) -> None:
        """Mark the staged objects covering the listed hours as used now (the retention's clock)."""
        window_ms = {"window_start_ms": epoch_ms(window[0]), "window_end_ms": epoch_ms(window[1])}
        execute_statements(self.cursor, render_statements("stage/touch_objects.sql"),
                           {**self.parameters, **window_ms, "used_at": now})

    def purge(self, listed: dict[str, str], now: datetime, retention: int) -> int:
        """Drop the staged objects no run has listed for ``retention`` hours (a few per run); how many."""
        purge_before = now - timedelta(hours=retention)
        execute_statements(self.cursor, render_statements("stage/expired_objects.sql"),
                           {**self.parameters, "purge_before": purge_before})
        expired = [(key, first, last) for key, first, last in self.cursor.fetchall() if key not in listed]
        for key, first, last in expired:
            self.forget(key, StagedObject(None, first, last))
        if expired:
            self.log.info("Dropped %d staged objects no run listed since %s (retention %d hours), the oldest %s",
                          len(expired), purge_before, retention, self.source.uri(expired[0][0]))
        return len(expired)


def set_aside(hook: Any, dialect: str, variables: dict[str, Any], parameters: dict[str, Any],
              versions: dict[str, str], staged: dict[str, StagedObject], now: datetime, reason: str, log: Any) -> None:
    """Record object versions refused as bad, and why, in their own transaction, so later runs know them."""
    with transaction(hook, dialect) as cursor:
        execute_statements(cursor, render_statements("stage/begin.sql", **{**variables, "restage": False}),
                           parameters)
        for key, version in versions.items():
            record = staged.get(key) or StagedObject(None, None, None)
            execute_statements(cursor, render_statements("stage/set_aside.sql"), {
                **parameters, "object_key": key, "version": version, "rejected_at": now,
                "row_count": record.row_count, "first_ts": record.first_ts, "last_ts": record.last_ts,
                "rejected_reason": reason[:REASON_LENGTH],
            })
    for key in versions:
        log.error("%s is set aside as bad until it changes", key)
