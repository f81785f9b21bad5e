"""The bucket's event notifications, read from an SQS queue through the Amazon provider's SqsHook: which
objects were created (with their ETag) or removed. A queue that cannot be read, or a message that is not an
S3 notification of the source's bucket, fails the task by name: never an empty catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from airflow.sdk.exceptions import AirflowException, AirflowFailException

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
