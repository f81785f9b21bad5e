"""A folder laid out like the bucket, for local runs and tests: ``file:///folder``."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from airflow.sdk.exceptions import AirflowFailException

from sparkify.sources.compression import decompressed_blocks
from sparkify.sources.json_records import MAX_RECORD_BYTES, Piece, pieces
from sparkify.sources.objects import top_folder, variants


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
        top = top_folder(key_or_prefix)
        if top not in self._checked:
            if not self._holds_objects(self.root / top):
                raise AirflowFailException(f"no objects under {self.uri(top)}: is the source right?")
            self._checked.add(top)

    def list_objects(self, key_or_prefix: str) -> dict[str, str]:
        target = self.root / key_or_prefix
        objects = {}
        if not key_or_prefix.endswith("/"):
            objects = {key: self._version(key, self.root / key) for key in variants(key_or_prefix)
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

    def same_object(self, key: str, staged_version: str, listed_version: str) -> bool:
        """A file staged while just written was versioned with its digest; listed since, it has none. It is
        the same file if its size, modification time and digest are those staged (the file is read again
        at every such listing while that record stands)."""
        if not staged_version.startswith(f"{listed_version}-"):
            return False
        return staged_version == f"{listed_version}-{_digest(self.root / key)}"

    def read_pieces(self, keys: list[str], size: int, record_limit: int = MAX_RECORD_BYTES) -> Iterator[Piece]:
        for key in keys:
            with open(self.root / key, "rb") as stream:
                yield from pieces(key, decompressed_blocks(self.uri(key), key, stream, size), record_limit)

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
        version += "-" + _digest(path, folder_fd)
    return version, stat.st_size


def _digest(path: str | Path, folder_fd: int | None = None) -> str:
    with open(path, "rb", opener=lambda name, flags: os.open(name, flags, dir_fd=folder_fd)) as stream:
        return hashlib.file_digest(stream, "blake2b").hexdigest()[:32]
