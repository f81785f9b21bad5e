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

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sparkify.staging.bookkeeping import StagedObject
from sparkify.warehouse.run_parameters import whole_number
from sparkify.warehouse.sql import render_statements
from sparkify.warehouse.transactions import execute_statements, transaction

if TYPE_CHECKING:
    from sparkify.sources.objects import ObjectSource

LISTING, NOTIFICATIONS = "listing", "notifications"
#: The Variable holding the queue's URL, named in every message about the queue.
QUEUE_VARIABLE = "sparkify_catalog_queue"
#: SQS hands out at most 10 messages per receive, and deletes at most 10 per batch.
SQS_BATCH = 10
#: Messages one run takes at most; the rest wait for the next run (a bulk upload of the catalog).
MAX_MESSAGES = 10_000
#: Seconds a received message stays hidden from other readers: longer than a run takes to stage
#: what its messages name. A run that fails makes them visible again at once; one that is killed
#: leaves them hidden this long.
VISIBILITY_SECONDS = 1800
#: Seconds a receive waits for messages. Long polling asks every SQS server, where a short poll may
#: answer empty while messages wait; the last, empty receive of a run costs this long.
WAIT_SECONDS = 1
#: Keys per read of their staged_objects records (each key is a bound parameter).
KEYS_PER_READ = 100
#: Errors of SQS a retry cannot fix.
_PERMANENT = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "AccessDenied",
              "AccessDeniedException", "InvalidAddress", "InvalidSecurity", "KMS.AccessDeniedException"}


@dataclass(frozen=True)
class Notification:
    """One S3 event record: a catalog file (its key under the source's base) created or removed."""

    key: str
    created: bool
    etag: str | None = None


@dataclass
class Message:
    """One received SQS message: what it names, and the handle that deletes it."""

    message_id: str
    receipt_handle: str
    notifications: list[Notification] = field(default_factory=list)
    #: Records of the bucket for keys outside the catalog (a wider notification filter).
    elsewhere: int = 0


def _records(body: str) -> list[dict[str, Any]] | None:
    """The S3 event records of a message body, directly from S3 or through SNS (not raw); [] for
    S3's test event; None for anything else."""
    try:
        document = json.loads(body)
        if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
            document = json.loads(document["Message"])
    except (TypeError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    if document.get("Event") == "s3:TestEvent":
        return []
    records = document.get("Records")
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        return None
    return records


def parse_message(raw: dict[str, Any], bucket: str, base_prefix: str, catalog_prefix: str) -> Message:
    """A received message, read as S3 event notifications of ``bucket``. Keys come URL-encoded
    (``+`` for a space) and full; they are returned relative to the source's base. A message that
    is no S3 notification, or one of another bucket, fails the task: the queue is not the catalog's."""
    message = Message(raw["MessageId"], raw["ReceiptHandle"])
    records = _records(raw.get("Body", ""))
    if records is None:
        raise AirflowFailException(
            f"message {message.message_id} of the catalog queue is not an S3 event notification "
            f"({raw.get('Body', '')[:200]!r}): is the Variable {QUEUE_VARIABLE} the queue of the bucket's "
            "notifications? Nothing was staged; the message stays in the queue"
        )
    base = f"{base_prefix}/" if base_prefix else ""
    for record in records:
        name, s3 = str(record.get("eventName", "")), record.get("s3")
        if not isinstance(s3, dict) or not isinstance(s3.get("bucket"), dict) or not isinstance(s3.get("object"), dict):
            raise AirflowFailException(f"message {message.message_id} of the catalog queue has a record without its "
                                       f"bucket and object ({json.dumps(record)[:200]}): nothing was staged")
        found_bucket = s3["bucket"].get("name")
        if found_bucket != bucket:
            raise AirflowFailException(
                f"message {message.message_id} of the catalog queue names bucket {found_bucket!r}, not the "
                f"source's {bucket!r}: is the Variable {QUEUE_VARIABLE} the right queue? Nothing was staged"
            )
        full_key = unquote_plus(str(s3["object"].get("key", "")))
        key = full_key[len(base):] if full_key.startswith(base) else None
        if key is None or not key.startswith(catalog_prefix) or key.endswith("/"):
            message.elsewhere += 1
        elif name.startswith("ObjectCreated:"):
            etag = s3["object"].get("eTag")
            message.notifications.append(Notification(key, True, str(etag).strip('"') if etag else None))
        elif name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
            message.notifications.append(Notification(key, False))
        else:  # restored, tagged, replicated: the content (its version) is as it was
            message.elsewhere += 1
    return message


class CatalogQueue:
    """The catalog's SQS queue, through the Amazon provider's SqsHook."""

    def __init__(self, url: str, aws_conn_id: str | None) -> None:
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        self.url = url
        self.client = SqsHook(aws_conn_id=aws_conn_id).get_conn()

    def _unreadable(self, action: str, error: Exception) -> AirflowException:
        """A queue that cannot be read fails the task by name: never an empty catalog."""
        code = getattr(error, "response", {}).get("Error", {}).get("Code")
        failure = AirflowFailException if code in _PERMANENT else AirflowException
        return failure(
            f"cannot {action} the song catalog's queue {self.url} (Variable {QUEUE_VARIABLE}): {error}. "
            f"Nothing was staged: fix the queue or its permissions, or unset {QUEUE_VARIABLE} to find new "
            "song files by listing the catalog"
        )

    def receive(self, limit: int = MAX_MESSAGES) -> list[dict[str, Any]]:
        """Every message waiting, up to ``limit``, each hidden from other readers for VISIBILITY_SECONDS."""
        from botocore.exceptions import BotoCoreError, ClientError

        received: list[dict[str, Any]] = []
        while len(received) < limit:
            try:
                answer = self.client.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=min(SQS_BATCH, limit - len(received)),
                    WaitTimeSeconds=WAIT_SECONDS, VisibilityTimeout=VISIBILITY_SECONDS,
                )
            except (BotoCoreError, ClientError) as error:
                self.release(received)
                raise self._unreadable("read", error) from error
            batch = answer.get("Messages", [])
            if not batch:
                break
            received += batch
        return received

    def _batches(self, messages: list[Message]) -> Iterator[list[dict[str, str]]]:
        for start in range(0, len(messages), SQS_BATCH):
            yield [{"Id": str(number), "ReceiptHandle": message.receipt_handle}
                   for number, message in enumerate(messages[start:start + SQS_BATCH])]

    def delete(self, messages: list[Message]) -> int:
        """Delete handled messages; how many SQS did not delete (they come back: harmless, as staging
        is idempotent by version)."""
        from botocore.exceptions import BotoCoreError, ClientError

        failed = 0
        for entries in self._batches(messages):
            try:
                answer = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
                failed += len(answer.get("Failed", []))
            except (BotoCoreError, ClientError):
                failed += len(entries)
        return failed

    def release(self, messages: list[Message] | list[dict[str, Any]]) -> None:
        """Make received messages visible again at once (best effort: else they come back after
        VISIBILITY_SECONDS), so the next attempt or run reads them."""
        from botocore.exceptions import BotoCoreError, ClientError

        handles = [m.receipt_handle if isinstance(m, Message) else m["ReceiptHandle"] for m in messages]
        for start in range(0, len(handles), SQS_BATCH):
            entries = [{"Id": str(number), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                       for number, handle in enumerate(handles[start:start + SQS_BATCH])]
            try:
                self.client.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
            except (BotoCoreError, ClientError):
                return


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

    def resolve(self, cursor: Any, parameters: dict[str, Any],
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

    def record(self, cursor: Any, parameters: dict[str, Any], listed_at: datetime, objects: dict[str, str],
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
    from sparkify.sources.objects import S3Source

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
