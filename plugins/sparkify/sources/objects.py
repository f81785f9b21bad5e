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

from collections.abc import Iterator
from typing import Protocol
from urllib.parse import urlsplit

from airflow.sdk.exceptions import AirflowFailException

from sparkify.sources.compression import COMPRESSIONS
from sparkify.sources.json_records import MAX_RECORD_BYTES, Piece


def variants(key: str) -> list[str]:
    """The objects a key naming one object finds: itself and its compressed forms."""
    return [key, *(key + extension for extension in COMPRESSIONS)]


def top_folder(key: str) -> str:
    """The first folder of a key (``log_data/``), which must hold objects if the source is right."""
    return key.split("/", 1)[0] + "/" if "/" in key else ""


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

    def same_object(self, key: str, staged_version: str, listed_version: str) -> bool:
        """Whether a listed version that differs from the staged one still names the same bytes (a
        folder's file versioned while it was just written; on S3 never: an ETag is exact)."""

    def read_pieces(self, keys: list[str], size: int, record_limit: int = MAX_RECORD_BYTES) -> Iterator[Piece]:
        """The objects of ``keys`` in order, decompressed, in pieces of about ``size`` bytes of whole
        records; a record over ``record_limit`` bytes fails the object (:class:`RecordTooLarge`)."""

    def uri(self, key: str) -> str:
        """The object's full URI, for messages and for Redshift COPY."""


def open_source(base_uri: str, aws_conn_id: str | None, check: bool = True) -> ObjectSource:
    """The source for a base URI: ``file://`` or ``s3://``. ``check=False`` spares S3 the check of the
    bucket and base (two requests) for a task that may read nothing: a listing that finds nothing
    still fails on a wrong source (its key's top folder must hold objects)."""
    scheme = urlsplit(base_uri).scheme
    if scheme == "file":
        from sparkify.sources.local import LocalSource

        return LocalSource(base_uri)
    if scheme == "s3":
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from sparkify.sources.s3 import S3Source

        return S3Source(base_uri, S3Hook(aws_conn_id=aws_conn_id), check)
    raise AirflowFailException(f"unsupported source {base_uri!r}: use s3://bucket/prefix or file:///folder")
