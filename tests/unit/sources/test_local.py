"""A folder's file versions: a file listed just after it was written is versioned by its bytes too, and
listed again later it is still the file staged, unless its bytes changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparkify.sources import local
from sparkify.sources.local import LocalSource
from sparkify.staging.bookkeeping import StagedObject, as_staged, plan_listing

KEY = "song_data/A/TRA.json"


def write(root: Path, text: str, mtime_ns: int | None = None) -> None:
    path = root / KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def staged(version: str) -> StagedObject:
    return StagedObject(version, 1, 1, None, "the run that staged it", 10, None)


def test_a_file_staged_while_just_written_is_the_same_file_when_listed_later(tmp_path, monkeypatch):
    write(tmp_path, '{"song_id": "SOA"}')
    source = LocalSource(tmp_path.as_uri())
    just_written = source.list_objects("song_data/")[KEY]
    assert just_written.count("-") == 2  # size, modification time and digest
    monkeypatch.setattr(local, "RACY_SECONDS", 0)
    later = source.list_objects("song_data/")[KEY]
    assert just_written.startswith(f"{later}-")
    assert source.same_object(KEY, just_written, later)
    objects = as_staged(source, {KEY: later}, {KEY: staged(just_written)})
    assert objects == {KEY: just_written}
    assert plan_listing({"song_data/": objects}, objects, {KEY: staged(just_written)}, "a later run",
                        by_time=False).to_stage == {}


def test_a_file_rewritten_with_the_same_size_and_time_is_not_the_same_file(tmp_path, monkeypatch):
    write(tmp_path, '{"song_id": "SOA"}')
    source = LocalSource(tmp_path.as_uri())
    mtime = (tmp_path / KEY).stat().st_mtime_ns
    just_written = source.list_objects("song_data/")[KEY]
    write(tmp_path, '{"song_id": "SOB"}', mtime_ns=mtime)  # within the same clock tick
    monkeypatch.setattr(local, "RACY_SECONDS", 0)
    later = source.list_objects("song_data/")[KEY]
    assert just_written.startswith(f"{later}-") and not source.same_object(KEY, just_written, later)
    assert as_staged(source, {KEY: later}, {KEY: staged(just_written)}) == {KEY: later}


@pytest.mark.parametrize("staged_version", ["18-1", "19-5-abc"])
def test_other_versions_are_never_the_same_file(tmp_path, staged_version):
    write(tmp_path, '{"song_id": "SOA"}', mtime_ns=5)
    source = LocalSource(tmp_path.as_uri())
    listed = source.list_objects("song_data/")[KEY]
    assert listed == "18-5" and not source.same_object(KEY, staged_version, listed)
