"""How a staging run finds what changed in a catalog (the song files): by a full listing, or by the
bucket's event notifications, read from an SQS queue.

With the queue (Variable ``sparkify_catalog_queue``) the bucket's ``s3:ObjectCreated:*`` and
``s3:ObjectRemoved:*`` notifications for the catalog's prefix name the files that changed. A run
receives them before it stages, reads back the ``staged_objects`` records of the files they name
(never the whole catalog's), asks S3 for the current version (HEAD) of the files whose version the
notification does not already show as staged, and stages those new or changed. It deletes the
messages only once its transaction has committed; a run that fails makes them visible again at
once. Delivery is at least once (SQS redelivers, S3 may notify twice) and staging is idempotent by
version, so a message read twice stages nothing twice.

A full listing (a *reconciliation*) runs instead when no queue is set, when the trigger form's
re-stage option is ticked, and once the last listing that committed (``catalog_listings``) is
older than the reconciliation cadence (``sparkify_catalog_reconcile_hours``, 24 by default): it
catches a notification lost or not delivered yet, and records how many files only it found.

A removed song file leaves its songs where they are (``staging_songs``, ``songs``, ``artists``):
the catalog only grows, whichever way a run learns of the removal. The run logs and counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from sparkify.sources.notifications import (
    MAX_MESSAGES,
    QUEUE_VARIABLE,
    CatalogQueue,
    Message,
    Notification,
    parse_message,
)
from sparkify.staging.bookkeeping import StagedObject
from sparkify.warehouse.run_parameters import whole_number
from sparkify.warehouse.sql import render_statements
from sparkify.warehouse.transactions import Cursor, execute_statements, transaction

if TYPE_CHECKING:
    from sparkify.sources.objects import ObjectSource

LISTING, NOTIFICATIONS = "listing", "notifications"
#: Keys per read of their staged_objects records (each key is a bound parameter).
KEYS_PER_READ = 100


def last_listing(hook: Any, dialect: str, parameters: dict[str, Any]) -> datetime | None:
    """When the table's last full listing committed (its own short read, outside the staging lock)."""
    with transaction(hook, dialect) as cursor:
        execute_statements(cursor, render_statements("catalog/last_listing.sql"), parameters)
        row = cursor.fetchone()
    value = row[0] if row else None
    return datetime.fromisoformat(value) if isinstance(value, str) else value  # the Data API gives text


@dataclass
class Discovery:
    """How this run finds the catalog's changes, and what it received from the queue."""

    mode: str
    reason: str
    queue: CatalogQueue | None = None
    messages: list[Message] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: For a full listing with a queue: the files it staged that no message of the run named.
    found_by_listing_only: int | None = None
    deleted: int = 0

    @property
    def by_notifications(self) -> bool:
        return self.mode == NOTIFICATIONS

    def named(self) -> dict[str, list[Notification]]:
        """Every catalog file the messages name, with what they say of it."""
        named: dict[str, list[Notification]] = {}
        for message in self.messages:
            for notification in message.notifications:
                named.setdefault(notification.key, []).append(notification)
        return named

    def resolve(self, cursor: Cursor, parameters: dict[str, Any],
                source: ObjectSource) -> tuple[dict[str, StagedObject], dict[str, str]]:
        """The staged records of the named files, and the current version of each named file that may
        differ from it (one HEAD each; none for a file every notification shows staged as it is)."""
        named = self.named()
        keys = sorted(named)
        staged: dict[str, StagedObject] = {}
        for start in range(0, len(keys), KEYS_PER_READ):
            chunk = {f"key_{number}": key for number, key in enumerate(keys[start:start + KEYS_PER_READ])}
            execute_statements(cursor, render_statements("catalog/named_objects.sql", key_parameters=list(chunk)),
                               {**parameters, **chunk})
            staged.update({key: StagedObject(*record) for key, *record in cursor.fetchall()})
        objects: dict[str, str] = {}
        for key in keys:
            record = staged.get(key)
            if record is not None and record.rejected_at is None and all(
                    notification.created and notification.etag == record.version for notification in named[key]):
                continue  # a duplicate, or a redelivery: that version is staged
            version = source.object_version(key)
            if version is None:
                self.removed.append(key)
            else:
                objects[key] = version
        return staged, objects

    def record(self, cursor: Cursor, parameters: dict[str, Any], listed_at: datetime, objects: dict[str, str],
               to_stage: dict[str, str]) -> None:
        """For a full listing: record it (the cadence's clock), with the files only it found."""
        if self.mode != LISTING:
            return
        if self.queue:
            self.found_by_listing_only = len(to_stage.keys() - self.named().keys())
        execute_statements(cursor, render_statements("catalog/record_listing.sql"), {
            **parameters, "listed_at": listed_at, "objects_listed": len(objects),
            "objects_staged": len(to_stage), "found_by_listing_only": self.found_by_listing_only,
        })

    def acknowledge(self) -> None:
        """After the commit: delete the messages handled."""
        if self.queue and self.messages:
            failed = self.queue.delete(self.messages)
            self.deleted = len(self.messages) - failed

    def release(self) -> None:
        """After a failure: the messages are visible again for the next attempt or run."""
        if self.queue and self.messages:
            self.queue.release(self.messages)

    def figures(self) -> dict[str, Any]:
        """For the task's XCom and the run summary."""
        return {"catalog_discovery": self.mode, "catalog_reason": self.reason,
                "messages_received": len(self.messages), "song_files_named": len(self.named()),
                "song_files_removed": len(self.removed), "found_by_listing_only": self.found_by_listing_only}


def discover(hook: Any, dialect: str, parameters: dict[str, Any], source: ObjectSource, *, catalog_prefix: str,
             queue_url: str | None, reconcile_hours: int | str, restage: bool, aws_conn_id: str | None,
             now: datetime, log: Any) -> Discovery:
    """Decide how this run finds the catalog's changes, and receive the queue's messages (kept
    hidden until the run commits): a full listing receives them too, so that it deletes what it
    covers and can count the files only it found."""
    from sparkify.sources.s3 import S3Source

    queue_url = (queue_url or "").strip()
    hours = whole_number(reconcile_hours, "reconcile_hours")
    if not queue_url:
        discovery = Discovery(LISTING, f"no queue set (Variable {QUEUE_VARIABLE})")
    elif not isinstance(source, S3Source):
        raise AirflowFailException(f"the Variable {QUEUE_VARIABLE} is set, but the source {source.base_uri} is not "
                                   "in S3: bucket notifications name S3 objects. Unset it for a local source")
    elif restage:
        discovery = Discovery(LISTING, "re-stage of the whole catalog requested")
    else:
        last = last_listing(hook, dialect, parameters)
        if last is None:
            discovery = Discovery(LISTING, "reconciliation: no full listing recorded yet")
        elif now - last >= timedelta(hours=hours):
            discovery = Discovery(LISTING, f"reconciliation: the last full listing was at {last:%Y-%m-%d %H:%M} "
                                           f"UTC (every {hours} h)")
        else:
            discovery = Discovery(NOTIFICATIONS, f"the last full listing was at {last:%Y-%m-%d %H:%M} UTC; "
                                                 f"the next is due from {last + timedelta(hours=hours):%Y-%m-%d %H:%M}")
    if queue_url:
        assert isinstance(source, S3Source)
        discovery.queue = CatalogQueue(queue_url, aws_conn_id)
        received = discovery.queue.receive()
        try:
            discovery.messages = [parse_message(raw, source.bucket, source.prefix, catalog_prefix)
                                  for raw in received]
        except AirflowFailException:
            discovery.queue.release(received)
            raise
        if elsewhere := sum(message.elsewhere for message in discovery.messages):
            log.info("%d notification records name objects outside %s: ignored", elsewhere,
                     source.uri(catalog_prefix))
        if len(received) == MAX_MESSAGES:
            log.warning("Took the first %d messages of %s; the next run takes the rest", MAX_MESSAGES, queue_url)
    log.info("Song catalog by %s (%s): %d messages received naming %d files", discovery.mode, discovery.reason,
             len(discovery.messages), len(discovery.named()))
    return discovery
