"""The bucket the app writes to, as the staging operator sees it: a base URI
(``s3://bucket/prefix`` or ``file:///folder``) under which keys are listed and
objects streamed in pieces of whole lines. Only small objects are ever held
whole (S3 reads them ahead, concurrently, since a catalog is a million one-line
files); a larger one is held a piece at a time.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


#: Objects up to this size are read whole, ahead of their turn; larger ones are streamed.
SMALL_OBJECT = 1 << 20
#: A piece of an object: its key, the number of its first line, and whole lines of bytes.
Piece = tuple[str, int, bytes]

#: Concurrent S3 reads, and how many objects may be fetched ahead (memory: at most
#: READ_AHEAD small objects).
READERS, READ_AHEAD = 8, 16


class ObjectSource(Protocol):
    """Keys are relative to the source's base URI and use ``/`` separators."""

    base_uri: str

    def list_objects(self, key_or_prefix: str) -> dict[str, str]:
        """The objects a key names, each with its version: the key alone if it names an object,
        every key below it if it ends with ``/``; empty if none. The version changes whenever
        the object is rewritten (S3: its ETag; a folder: its size and modification time)."""

    def read_pieces(self, keys: list[str], size: int) -> Iterator[Piece]:
        """The objects of ``keys`` in order, in pieces of about ``size`` bytes that end a line."""

    def uri(self, key: str) -> str:
        """The object's full URI, for messages and for Redshift COPY."""


class LocalSource:
    """A folder laid out like the bucket (local runs and tests)."""

    def __init__(self, base_uri: str) -> None:
        self.base_uri = base_uri.rstrip("/")
        self.root = Path(unquote(urlsplit(base_uri).path))
        if not self.root.is_dir():
            raise AirflowFailException(f"source folder does not exist: {self.root}")

    def list_objects(self, key_or_prefix: str) -> dict[str, str]:
        target = self.root / key_or_prefix
        if not key_or_prefix.endswith("/"):
            return {key_or_prefix: _file_version(target)} if target.is_file() else {}
        if not target.is_dir():
            return {}
        # os.walk, not Path.rglob: a catalog is a hundred thousand files, and pathlib costs 20 µs each.
        objects = {}
        for folder, _, files in os.walk(target):
            prefix = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                objects[f"{prefix}/{name}"] = _file_version(Path(folder, name))
        return dict(sorted(objects.items()))

    def read_pieces(self, keys: list[str], size: int) -> Iterator[Piece]:
        for key in keys:
            with open(self.root / key, "rb") as stream:
                yield from _pieces(key, iter(lambda: stream.read(size), b""))

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{key}"


class S3Source:
    """An S3 bucket and prefix, through the Amazon provider's hook."""

    def __init__(self, base_uri: str, hook: S3Hook) -> None:
        self.base_uri = base_uri.rstrip("/")
        parts = urlsplit(self.base_uri)
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self.hook = hook
        if not hook.check_for_bucket(self.bucket):
            raise AirflowFailException(f"bucket does not exist or is not readable: s3://{self.bucket}")
        # An hour without objects is an empty hour, but a base prefix without any is a wrong source.
        if self.prefix and not hook.list_keys(bucket_name=self.bucket, prefix=f"{self.prefix}/", max_items=1):
            raise AirflowFailException(f"no objects under {self.base_uri}/: is the source right?")

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list_objects(self, key_or_prefix: str) -> dict[str, str]:
        full = self._full_key(key_or_prefix)
        if not key_or_prefix.endswith("/"):
            head = self.hook.head_object(full, self.bucket)
            return {key_or_prefix: head["ETag"].strip('"')} if head else {}
        start = len(self._full_key(""))
        listed = self.hook.iter_file_metadata(prefix=full, bucket_name=self.bucket)
        return dict(sorted((item["Key"][start:], item["ETag"].strip('"')) for item in listed
                           if not item["Key"].endswith("/")))

    def _stream(self, key: str, size: int) -> Iterator[Piece]:
        body = self.hook.get_conn().get_object(Bucket=self.bucket, Key=self._full_key(key))["Body"]
        try:
            yield from _pieces(key, body.iter_chunks(size))
        finally:
            body.close()

    def read_pieces(self, keys: list[str], size: int) -> Iterator[Piece]:
        """Small objects are fetched ahead by a few threads (one boto3 client: it is thread-safe),
        at most READ_AHEAD at a time; larger ones are streamed when their turn comes."""
        client = self.hook.get_conn()

        def fetch(key: str) -> Iterable[Piece]:
            response = client.get_object(Bucket=self.bucket, Key=self._full_key(key))
            if response["ContentLength"] > SMALL_OBJECT:
                response["Body"].close()
                return self._stream(key, size)
            return list(_pieces(key, [response["Body"].read()]))

        remaining = iter(keys)
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            pending = deque(pool.submit(fetch, key) for key in islice(remaining, READ_AHEAD))
            while pending:
                pieces = pending.popleft()
                following = next(remaining, None)
                if following is not None:
                    pending.append(pool.submit(fetch, following))
                yield from pieces.result()

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{key}"


#: A file modified less than this long ago may be rewritten again within the file system's clock
#: tick, keeping its size and modification time: its version then includes a digest of its bytes.
RACY_SECONDS = 2


def _file_version(path: Path) -> str:
    """A local file's version: a rewrite changes its size or its modification time (nanoseconds),
    or, for a file modified just now, its bytes (as git treats a racily clean file)."""
    stat = path.stat()
    version = f"{stat.st_size}-{stat.st_mtime_ns}"
    if time.time_ns() - stat.st_mtime_ns < RACY_SECONDS * 1_000_000_000:
        with open(path, "rb") as stream:
            version += "-" + hashlib.file_digest(stream, "blake2b").hexdigest()[:32]
    return version


def _pieces(key: str, blocks: Iterable[bytes]) -> Iterator[Piece]:
    """Cut blocks of bytes after their last line end; a line longer than a block is held (in parts,
    joined once) until it ends."""
    line, held = 1, []
    for block in blocks:
        end = block.rfind(b"\n") + 1
        if not end:
            held.append(block)
            continue
        data = b"".join([*held, block[:end]])
        held = [block[end:]]
        yield key, line, data
        line += data.count(b"\n")
    if rest := b"".join(held):
        yield key, line, rest


def open_source(base_uri: str, aws_conn_id: str | None) -> ObjectSource:
    """The source for a base URI: ``file://`` or ``s3://``."""
    scheme = urlsplit(base_uri).scheme
    if scheme == "file":
        return LocalSource(base_uri)
    if scheme == "s3":
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Source(base_uri, S3Hook(aws_conn_id=aws_conn_id))
    raise AirflowFailException(f"unsupported source {base_uri!r}: use s3://bucket/prefix or file:///folder")
