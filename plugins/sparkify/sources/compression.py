"""Compressed objects, read as Redshift COPY's GZIP, BZIP2 and ZSTD read them: by extension
(``….gz``, ``….bz2``, ``….zst``), decompressed as they stream, memory bounded however much they
expand; and the one COPY option for the objects one COPY reads."""

from __future__ import annotations

import bz2
import gzip
import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from airflow.sdk.exceptions import AirflowFailException

#: Compressed objects by extension, with the Redshift COPY option that reads them.
COMPRESSIONS = {".gz": "GZIP", ".bz2": "BZIP2", ".zst": "ZSTD"}
#: zstd input fed to the decoder at a time: JSON logs expand about tenfold, so a few MiB out.
ZSTD_INPUT = 1 << 16


def compression(key: str) -> str | None:
    """The COPY compression option of an object, by its extension; None if it is not compressed."""
    return COMPRESSIONS.get(os.path.splitext(key)[1])


def copy_compression(keys: Iterable[str], unit: str) -> str | None:
    """The one compression of the objects a single COPY reads (COPY takes one option for all)."""
    found = {compression(key) for key in keys}
    if len(found) > 1:
        names = ", ".join(sorted(kind or "uncompressed" for kind in found))
        raise AirflowFailException(f"{unit}: objects of several compressions ({names}), and one Redshift COPY "
                                   "reads one: keep one compression per day file, hour prefix and song catalog")
    return found.pop() if found else None


def _zstd_blocks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """zstd frames one after another, as zstd writes and COPY reads them, fed ZSTD_INPUT bytes at a time.
    A last frame cut short is an error: the library's own stream reader would end quietly."""
    import zstandard

    decompressor = zstandard.ZstdDecompressor()
    frame, in_frame = decompressor.decompressobj(), False
    for data in iter(lambda: stream.read(ZSTD_INPUT), b""):
        while data:
            decoded, in_frame = frame.decompress(data), True
            yield from (decoded[start:start + size] for start in range(0, len(decoded), size))
            data = b""
            if frame.eof:
                data, frame, in_frame = frame.unused_data, decompressor.decompressobj(), False
    if in_frame:
        raise EOFError("the data ends inside a zstd frame")


def _decoded(key: str, stream: BinaryIO, size: int) -> Iterator[bytes]:
    """The object's bytes, decompressed as its extension says, in blocks of at most ``size``."""
    kind = compression(key)
    if kind == "ZSTD":
        return _zstd_blocks(stream, size)
    reader: BinaryIO | gzip.GzipFile | bz2.BZ2File = stream
    if kind == "GZIP":
        reader = gzip.GzipFile(fileobj=stream, mode="rb")
    elif kind == "BZIP2":
        reader = bz2.BZ2File(stream)
    return iter(lambda: reader.read(size), b"")


def decompressed_blocks(uri: str, key: str, stream: BinaryIO, size: int) -> Iterator[bytes]:
    """The object's decompressed bytes in blocks: memory stays bounded however much a compressed
    object expands. One that does not decode (corrupt, cut short, not that format) fails the task, named."""
    kind = compression(key)
    if kind is None:
        yield from _decoded(key, stream, size)
        return
    try:
        yield from _decoded(key, stream, size)
    except Exception as error:  # each decoder has its own: OSError, EOFError, zlib.error, ZstdError
        raise AirflowFailException(
            f"{uri}: cannot be read as {kind.lower()} ({type(error).__name__}: {error})"
        ) from error
