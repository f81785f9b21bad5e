"""The bucket in S3: ``s3://bucket/prefix``, through the Amazon provider's S3Hook."""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sparkify import cost
from sparkify.sources.compression import compression, decompressed_blocks
from sparkify.sources.json_records import MAX_RECORD_BYTES, Piece, pieces
from sparkify.sources.objects import top_folder, variants

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


#: Objects up to this size are read whole, ahead of their turn; larger ones are streamed.
SMALL_OBJECT = 1 << 20


#: Concurrent S3 reads, and how many objects may be fetched ahead (memory: at most
#: READ_AHEAD small objects).
READERS, READ_AHEAD = 8, 16


class S3Source:
    """An S3 bucket and prefix, through the Amazon provider's hook."""

    def __init__(self, base_uri: str, hook: S3Hook, check: bool = True) -> None:
        self.base_uri = base_uri.rstrip("/")
        # Read as written, like Redshift COPY and the AWS CLI: a key may hold '#', '?' or '%'.
        self.bucket, _, prefix = self.base_uri.removeprefix("s3://").partition("/")
        self.prefix = prefix.strip("/")
        self.hook = hook
        self.sizes: dict[str, int] = {}
        self._checked = {""}
        cost.watch_s3(hook.get_conn())  # the requests of this task, for its cost
        if check:
            self.check()

    def check(self) -> None:
        """The bucket exists and the base holds objects (HeadBucket, and a LIST of one key)."""
        if not self.hook.check_for_bucket(self.bucket):
            raise AirflowFailException(f"bucket does not exist or is not readable: s3://{self.bucket}")
        # An hour without objects is an empty hour, but a base prefix without any is a wrong source.
        if self.prefix and not self._list(f"{self.prefix}/", max_items=1):
            raise AirflowFailException(f"no objects under {self.base_uri}/: is the source right?")

    def _list(self, prefix: str, max_items: int | None = None) -> dict[str, tuple[str, int | None]]:
        """The keys under a full prefix with their ETags and sizes; a listing S3 refuses fails the task naming
        it (retried: it may pass)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            listed = self.hook.iter_file_metadata(prefix=prefix, bucket_name=self.bucket, max_items=max_items)
            return {item["Key"]: (item["ETag"].strip('"'), item.get("Size")) for item in listed}
        except (BotoCoreError, ClientError) as error:
            raise AirflowException(f"cannot list s3://{self.bucket}/{prefix}: {error}") from error

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _require_objects(self, key_or_prefix: str) -> None:
        """An empty listing is an empty hour only if the key's top folder holds objects."""
        top = top_folder(key_or_prefix)
        if top not in self._checked:
            if not self._list(self._full_key(top), max_items=1):
                raise AirflowFailException(f"no objects under {self.uri(top)}: is the source right?")
            self._checked.add(top)

    def list_objects(self, key_or_prefix: str) -> dict[str, str]:
        full = self._full_key(key_or_prefix)
        # One LIST finds a key naming one object with its compressed variants, and every version.
        listed = self._list(full)
        start = len(self._full_key(""))
        if key_or_prefix.endswith("/"):
            found = {key[start:]: entry for key, entry in listed.items() if not key.endswith("/")}
        else:
            found = {key: listed[self._full_key(key)] for key in variants(key_or_prefix)
                     if self._full_key(key) in listed}
        self.sizes.update({key: size for key, (_, size) in found.items() if size is not None})
        objects = {key: version for key, (version, _) in found.items()}
        if not objects:
            self._require_objects(key_or_prefix)
        return dict(sorted(objects.items()))

    def object_version(self, key: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            found = self.hook.head_object(key=self._full_key(key), bucket_name=self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise AirflowException(f"cannot read {self.uri(key)}: {error}") from error
        if found is None:
            return None
        if found.get("ContentLength") is not None:
            self.sizes[key] = found["ContentLength"]
        return str(found["ETag"]).strip('"')

    def same_object(self, key: str, staged_version: str, listed_version: str) -> bool:
        return False

    def _stream(self, key: str, size: int, record_limit: int) -> Iterator[Piece]:
        body = self.hook.get_conn().get_object(Bucket=self.bucket, Key=self._full_key(key))["Body"]
        try:
            yield from pieces(key, decompressed_blocks(self.uri(key), key, body, size), record_limit)
        finally:
            body.close()

    def read_pieces(self, keys: list[str], size: int, record_limit: int = MAX_RECORD_BYTES) -> Iterator[Piece]:
        """Small objects are fetched ahead by a few threads (one boto3 client: it is thread-safe),
        at most READ_AHEAD at a time; larger ones are streamed when their turn comes."""
        client = self.hook.get_conn()

        def fetch(key: str) -> Iterable[Piece]:
            response = client.get_object(Bucket=self.bucket, Key=self._full_key(key))
            if response["ContentLength"] > SMALL_OBJECT:
                response["Body"].close()
                return self._stream(key, size, record_limit)
            body = io.BytesIO(response["Body"].read())
            found = pieces(key, decompressed_blocks(self.uri(key), key, body, size), record_limit)
            # A compressed one is decompressed in its turn, not ahead: it may hold far more than it weighs.
            return found if compression(key) else list(found)

        remaining = iter(keys)
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            pending = deque(pool.submit(fetch, key) for key in islice(remaining, READ_AHEAD))
            while pending:
                fetched = pending.popleft()
                following = next(remaining, None)
                if following is not None:
                    pending.append(pool.submit(fetch, following))
                yield from fetched.result()

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{key}"
