"""The bucket the app writes to, as the staging operator sees it: a base URI
(``s3://bucket/prefix`` or ``file:///folder``) under which keys are listed and
objects streamed in pieces of whole lines. Only small objects are ever held
whole (S3 reads them ahead, concurrently, since a catalog is a million one-line
files); a larger one is held a piece at a time.

Objects named ``….gz``, ``….bz2`` or ``….zst`` are decompressed as they stream
(:mod:`sparkify.sources.compression`), and a key naming one object (``…-events.json``)
also finds its compressed variants (``…-events.json.gz``). A listing error, or a base (or the
top folder of a key, ``log_data/``) without any object, fails the task: a
wrong source never passes for an empty hour.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sparkify import cost
from sparkify.sources.compression import COMPRESSIONS, compression, decompressed_blocks
from sparkify.sources.json_records import MAX_RECORD_BYTES, Piece, pieces

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


#: Objects up to this size are read whole, ahead of their turn; larger ones are streamed.
SMALL_OBJECT = 1 << 20


#: Concurrent S3 reads, and how many objects may be fetched ahead (memory: at most
#: READ_AHEAD small objects).
READERS, READ_AHEAD = 8, 16


def _variants(key: str) -> list[str]:
    """The objects a key naming one object finds: itself and its compressed forms."""
    return [key, *(key + extension for extension in COMPRESSIONS)]


def _top_folder(key: str) -> str:
    """The first folder of a key (``log_data/``), which must hold objects if the source is right."""
    return key.split("/", 1)[0] + "/" if "/" in key else ""


def local_path(base_uri: str) -> Path:
    """The folder a ``file://`` URI names: the one reading of such URIs, the staging operator's and
    ``make backfill``'s. The path is percent-decoded, as ``Path.as_uri()`` writes it (``#`` is
    ``%23``, ``%`` is ``%25``, a space ``%20``); a raw ``#`` or ``?`` (which would cut the path), a
    host, or a ``%`` that starts no escape is refused rather than read as another folder."""
    parts = urlsplit(base_uri)
    if parts.scheme != "file":
        raise AirflowFailException(f"not a file:// URI: {base_uri!r}")
    if "#" in base_uri or "?" in base_uri:
        raise AirflowFailException(f"{base_uri!r}: write '#' as %23 and '?' as %3F in a file:// URI "
                                   "(Path.as_uri() does)")
    if parts.netloc not in ("", "localhost"):
        raise AirflowFailException(f"{base_uri!r} names the host {parts.netloc!r}: write file:///absolute/path")
    if re.search(r"%(?![0-9A-Fa-f]{2})", parts.path):
        raise AirflowFailException(f"{base_uri!r}: '%' starts an escape in a URI: write a '%' of the path as %25")
    return Path(unquote(parts.path))


class ObjectSource(Protocol):
    """Keys are relative to the source's base URI and use ``/`` separators."""

    base_uri: str
    #: The size in bytes of every object listed or looked up so far, by key (what a run read, in its cost).
    sizes: dict[str, int]

    def list_objects(self, key_or_prefix: str) -> dict[str, str]:
        """The objects a key names, each with its version: the key and its compressed variants
        (``.gz``, ``.bz2``, ``.zst``) that exist if it names an object; every key below it if it ends
        with ``/``; empty if none, when the key's top folder holds objects (else the source is wrong:
        the task fails). The version changes whenever the object is rewritten (S3: its ETag; a
        folder: its size and modification time)."""

    def object_version(self, key: str) -> str | None:
        """The version of the one object a key names (as ``list_objects`` gives it), or None when there
        is none: one request, whatever the bucket holds (S3: HEAD)."""

    def read_pieces(self, keys: list[str], size: int, record_limit: int = MAX_RECORD_BYTES) -> Iterator[Piece]:
        """The objects of ``keys`` in order, decompressed, in pieces of about ``size`` bytes of whole
        records; a record over ``record_limit`` bytes fails the object (:class:`RecordTooLarge`)."""

    def uri(self, key: str) -> str:
        """The object's full URI, for messages and for Redshift COPY."""


class LocalSource:
    """A folder laid out like the bucket (local runs and tests)."""

    def __init__(self, base_uri: str) -> None:
        self.base_uri = base_uri.rstrip("/")
        self.sizes: dict[str, int] = {}
        self.root = local_path(base_uri)
        if not self.root.is_dir():
            raise AirflowFailException(f"source folder does not exist: {self.root} (from {base_uri})")
        if not self._holds_objects(self.root):
            raise AirflowFailException(f"no objects under {self.base_uri}/: is the source right?")
        self._checked = {""}

    @staticmethod
    def _walk(folder: Path) -> Iterator[tuple[str, list[str], list[str]]]:
        """os.walk that fails on a folder it cannot list, instead of skipping it and its files."""

        def failed(error: OSError) -> None:
            raise AirflowFailException(f"cannot list {error.filename}: {error.strerror}") from error

        return os.walk(folder, onerror=failed)

    def _holds_objects(self, folder: Path) -> bool:
        return folder.is_dir() and any(files for _, _, files in self._walk(folder))

    def _require_objects(self, key_or_prefix: str) -> None:
        """An empty listing is an empty hour only if the key's top folder holds objects."""
        top = _top_folder(key_or_prefix)
        if top not in self._checked:
            if not self._holds_objects(self.root / top):
                raise AirflowFailException(f"no objects under {self.uri(top)}: is the source right?")
            self._checked.add(top)

    def list_objects(self, key_or_prefix: str) -> dict[str, str]:
        target = self.root / key_or_prefix
        objects = {}
        if not key_or_prefix.endswith("/"):
            objects = {key: self._version(key, self.root / key) for key in _variants(key_or_prefix)
                       if (self.root / key).is_file()}
        elif target.is_dir():
            # os.walk, not Path.rglob: a catalog is a hundred thousand files, and pathlib costs 20 µs each.
            for folder, _, files in self._walk(target):
                prefix = Path(folder).relative_to(self.root).as_posix()
                # Each file looked up by its name in its open folder: a catalog is a hundred thousand
                # files, and resolving each full path costs more than the stat itself.
                folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    for name in files:
                        objects[f"{prefix}/{name}"] = self._version(f"{prefix}/{name}", name, folder_fd)
                finally:
                    os.close(folder_fd)
        if not objects:
            self._require_objects(key_or_prefix)
        return dict(sorted(objects.items()))

    def _version(self, key: str, path: str | Path, folder_fd: int | None = None) -> str:
        version, self.sizes[key] = _file_version(path, folder_fd)
        return version

    def object_version(self, key: str) -> str | None:
        path = self.root / key
        return self._version(key, path) if path.is_file() else None

    def read_pieces(self, keys: list[str], size: int, record_limit: int = MAX_RECORD_BYTES) -> Iterator[Piece]:
        for key in keys:
            with open(self.root / key, "rb") as stream:
                yield from pieces(key, decompressed_blocks(self.uri(key), key, stream, size), record_limit)

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{key}"


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
        top = _top_folder(key_or_prefix)
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
            found = {key: listed[self._full_key(key)] for key in _variants(key_or_prefix)
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
        return found["ETag"].strip('"')

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


#: A file modified less than this long ago may be rewritten again within the file system's clock
#: tick, keeping its size and modification time: its version then includes a digest of its bytes.
RACY_SECONDS = 2


def _file_version(path: str | Path, folder_fd: int | None = None) -> tuple[str, int]:
    """A local file's version, and its size: a rewrite changes its size or its modification time
    (nanoseconds), or, for a file modified just now, its bytes (as git treats a racily clean file).
    ``path`` is relative to ``folder_fd`` when that is given."""
    stat = os.stat(path, dir_fd=folder_fd)
    version = f"{stat.st_size}-{stat.st_mtime_ns}"
    if time.time_ns() - stat.st_mtime_ns < RACY_SECONDS * 1_000_000_000:
        with open(path, "rb", opener=lambda name, flags: os.open(name, flags, dir_fd=folder_fd)) as stream:
            version += "-" + hashlib.file_digest(stream, "blake2b").hexdigest()[:32]
    return version, stat.st_size


def open_source(base_uri: str, aws_conn_id: str | None, check: bool = True) -> ObjectSource:
    """The source for a base URI: ``file://`` or ``s3://``. ``check=False`` spares S3 the check of the
    bucket and base (two requests) for a task that may read nothing: a listing that finds nothing
    still fails on a wrong source (its key's top folder must hold objects)."""
    scheme = urlsplit(base_uri).scheme
    if scheme == "file":
        return LocalSource(base_uri)
    if scheme == "s3":
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Source(base_uri, S3Hook(aws_conn_id=aws_conn_id), check)
    raise AirflowFailException(f"unsupported source {base_uri!r}: use s3://bucket/prefix or file:///folder")
