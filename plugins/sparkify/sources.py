"""The bucket the app writes to, as the staging operator sees it: a base URI
(``s3://bucket/prefix`` or ``file:///folder``) under which keys are listed and
objects streamed line by line, never read whole into memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


class ObjectSource(Protocol):
    """Keys are relative to the source's base URI and use ``/`` separators."""

    base_uri: str

    def list_keys(self, key_or_prefix: str) -> list[str]:
        """One key if it names an object; every key below it if it ends with ``/``; [] if none."""

    def iter_lines(self, key: str) -> Iterator[bytes]:
        """The object's lines, with or without a trailing newline."""

    def uri(self, key: str) -> str:
        """The object's full URI, for messages and for Redshift COPY."""


class LocalSource:
    """A folder laid out like the bucket (local runs and tests)."""

    def __init__(self, base_uri: str) -> None:
        self.base_uri = base_uri.rstrip("/")
        self.root = Path(unquote(urlsplit(base_uri).path))
        if not self.root.is_dir():
            raise AirflowFailException(f"source folder does not exist: {self.root}")

    def list_keys(self, key_or_prefix: str) -> list[str]:
        target = self.root / key_or_prefix
        if not key_or_prefix.endswith("/"):
            return [key_or_prefix] if target.is_file() else []
        if not target.is_dir():
            return []
        return sorted(path.relative_to(self.root).as_posix() for path in target.rglob("*") if path.is_file())

    def iter_lines(self, key: str) -> Iterator[bytes]:
        with open(self.root / key, "rb") as stream:
            yield from stream

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

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list_keys(self, key_or_prefix: str) -> list[str]:
        full = self._full_key(key_or_prefix)
        if not key_or_prefix.endswith("/"):
            return [key_or_prefix] if self.hook.check_for_key(full, self.bucket) else []
        start = len(self._full_key(""))
        keys = self.hook.list_keys(bucket_name=self.bucket, prefix=full)
        return sorted(key[start:] for key in keys if not key.endswith("/"))

    def iter_lines(self, key: str) -> Iterator[bytes]:
        body = self.hook.get_key(self._full_key(key), self.bucket).get()["Body"]
        try:
            yield from body.iter_lines(keepends=True)
        finally:
            body.close()

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{key}"


def open_source(base_uri: str, aws_conn_id: str | None) -> ObjectSource:
    """The source for a base URI: ``file://`` or ``s3://``."""
    scheme = urlsplit(base_uri).scheme
    if scheme == "file":
        return LocalSource(base_uri)
    if scheme == "s3":
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Source(base_uri, S3Hook(aws_conn_id=aws_conn_id))
    raise AirflowFailException(f"unsupported source {base_uri!r}: use s3://bucket/prefix or file:///folder")
