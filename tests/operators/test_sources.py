"""The bucket reader on real folders: compressed objects (read as their plain bytes, in bounded
memory, a corrupt one named), listing errors and wrong or empty sources failing the task, and the one
reading of ``file://`` URIs that ``make backfill`` shares with the operator."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify import StageToRedshiftOperator
from sparkify.sources.compression import copy_compression
from sparkify.sources.local import LocalSource, local_path
from tests.support.dates import START
from tests.support.tasks import run_context
from tools.generate_data import COMPRESSED_EXTENSIONS, generate

DAY_KEY = "log_data/2018/11/2018-11-01-events.json"


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("plain")
    generate(folder, START, START + timedelta(days=1), events_per_day=400, songs=30, seed=3)
    return folder


@pytest.mark.parametrize("codec", list(COMPRESSED_EXTENSIONS))
def test_compressed_objects_read_as_their_plain_bytes(plain, tmp_path, codec):
    generate(tmp_path, START, START + timedelta(days=1), events_per_day=400, songs=30, seed=3, compress=codec)
    extension = COMPRESSED_EXTENSIONS[codec]
    source = LocalSource(tmp_path.as_uri())
    keys = list(source.list_objects(DAY_KEY))  # the daily key finds the day's compressed file
    assert keys == [DAY_KEY + extension]
    pieces = list(source.read_pieces(keys, 4096))
    expected = (plain / DAY_KEY).read_bytes()
    assert b"".join(piece.data for piece in pieces) == expected
    assert len(pieces) > 5 and all(len(piece.data) <= 2 * 4096 for piece in pieces)  # a block and a line held
    lines_before = 0
    for piece in pieces:
        assert (piece.key, piece.line) == (keys[0], lines_before + 1)
        lines_before += piece.data.count(b"\n")

    songs = list(source.list_objects("song_data/"))
    assert len(songs) == 30 and all(key.endswith(".json" + extension) for key in songs)
    for piece in source.read_pieces(songs, 1 << 20):
        assert json.loads(piece.data)["song_id"], piece.key


def test_a_compressed_object_that_expands_a_thousandfold_streams_in_bounded_memory(tmp_path):
    line = b'{"ts":1541105830796,"page":"NextSong","userId":"39","song":"' + b"x" * 200 + b'"}\n'
    path = tmp_path / DAY_KEY
    path.parent.mkdir(parents=True)
    with gzip.open(str(path) + ".gz", "wb") as stream:
        for _ in range((64 << 20) // (len(line) * 1024)):
            stream.write(line * 1024)
    assert os.path.getsize(str(path) + ".gz") < 1 << 20  # under a MiB on disk, 64 MiB of lines
    source = LocalSource(tmp_path.as_uri())
    tracemalloc.start()
    try:
        total = sum(len(piece.data) for piece in source.read_pieces(source.list_objects(DAY_KEY), 1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total >= 63 << 20
    assert peak < 8 << 20, f"reading held {peak >> 20} MiB at once"


@pytest.mark.parametrize("codec", list(COMPRESSED_EXTENSIONS))
@pytest.mark.parametrize("damage", ["cut short", "not compressed"])
def test_an_object_that_does_not_decode_fails_naming_it(plain, tmp_path, codec, damage):
    shutil.copytree(plain / "song_data", tmp_path / "song_data")
    generate(tmp_path / "packed", START, START + timedelta(days=1), events_per_day=400, songs=1, compress=codec)
    name = DAY_KEY + COMPRESSED_EXTENSIONS[codec]
    data = (tmp_path / "packed" / name).read_bytes()
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_bytes(data[: len(data) // 2] if damage == "cut short" else (plain / DAY_KEY).read_bytes())
    source = LocalSource(tmp_path.as_uri())
    with pytest.raises(AirflowFailException, match=rf"{tmp_path.as_uri()}/{name}: cannot be read as {codec} "):
        list(source.read_pieces(source.list_objects(DAY_KEY), 1 << 20))


def test_a_compressed_day_stages_through_the_operator(warehouse, plain, tmp_path):
    generate(tmp_path, START, START + timedelta(days=1), events_per_day=400, songs=30, seed=3, compress="zstd")
    operator = StageToRedshiftOperator(task_id="stage_events", table="staging_events", source=tmp_path.as_uri(),
                                       s3_key="log_data/%Y/%m/%Y-%m-%d-events.json",
                                       jsonpaths="jsonpaths/log_events.json", time_field="ts")
    result = operator.execute(run_context(START, hours=24))
    lines = len((plain / DAY_KEY).read_bytes().splitlines())
    assert (result["object_count"], result["rows_written"]) == (1, lines)
    assert operator.staged_sources == [f"{tmp_path.as_uri()}/{DAY_KEY}"]


#: How each staging table is staged: the catalog by key, events by time.
STAGING_KIND = {"staging_songs": {"catalog_key": "song_id"}, "staging_events": {"time_field": "ts"}}


def test_one_copy_reads_one_compression():
    assert copy_compression(["a.json.gz", "b.json.gz"], "unit") == "GZIP"
    assert copy_compression(["a.json"], "unit") is None
    with pytest.raises(AirflowFailException, match=r"s3://b/log_data/x/: objects of several compressions "
                                                   r"\(ZSTD, uncompressed\)"):
        copy_compression(["a.json", "b.json.zst"], "s3://b/log_data/x/")


def test_a_wrong_or_empty_source_fails(warehouse, plain, tmp_path):
    def stage(source: str, key: str = "log_data/%Y/%m/%Y-%m-%d-events.json", table="staging_events"):
        jsonpaths = "jsonpaths/log_events.json" if table == "staging_events" else "jsonpaths/song_data.json"
        return StageToRedshiftOperator(task_id="stage", table=table, source=source, s3_key=key,
                                       jsonpaths=jsonpaths, **STAGING_KIND[table]).execute(run_context(START))

    (tmp_path / "empty").mkdir()
    with pytest.raises(AirflowFailException, match=rf"no objects under {(tmp_path / 'empty').as_uri()}/: is the"):
        stage((tmp_path / "empty").as_uri())
    with pytest.raises(AirflowFailException, match="no objects under file:///etc/log_data/: is the source right"):
        stage("file:///etc")
    shutil.copytree(plain / "song_data", tmp_path / "songs_only" / "song_data")
    with pytest.raises(AirflowFailException, match=r"no objects under file://.*/songs_only/log_data/"):
        stage((tmp_path / "songs_only").as_uri())
    with pytest.raises(AirflowFailException, match=r"no objects under file://.*/songs_only/log_data/"):
        stage((tmp_path / "songs_only").as_uri(), "log_data/%Y/%m/%d/%H/")  # the hourly layout alike
    # A source that holds events: an hour without its object is an empty hour, as before.
    assert stage(plain.as_uri(), "log_data/2018/12/%Y-%m-%d-events.json")["object_count"] == 0


def test_a_song_folder_that_cannot_be_listed_fails_naming_it(plain, tmp_path):
    """The listing runs in a child process; as root, without the capabilities that let root list any folder."""
    shutil.copytree(plain, tmp_path / "bucket")
    locked = sorted((tmp_path / "bucket" / "song_data").glob("*/*"))[0]
    os.chmod(locked, 0)
    without_override = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                        "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    script = (
        "import sys\n"
        "from sparkify.sources.local import LocalSource\n"
        "print(len(LocalSource(sys.argv[1]).list_objects('song_data/')))\n"
    )
    try:
        result = subprocess.run([*without_override, sys.executable, "-c", script, (tmp_path / "bucket").as_uri()],
                                capture_output=True, text=True, timeout=120)
    finally:
        os.chmod(locked, 0o755)
    assert result.returncode != 0, f"listed {result.stdout.strip()} song files, skipping {locked}"
    assert f"AirflowFailException: cannot list {locked}: Permission denied" in result.stderr, result.stderr[-3000:]


def test_file_uris_are_percent_decoded_and_a_raw_hash_is_refused(plain, tmp_path):
    folder = tmp_path / "bucket #1 100%"
    shutil.copytree(plain, folder)
    assert folder.as_uri().endswith("/bucket%20%231%20100%25")
    assert local_path(folder.as_uri()) == folder
    assert LocalSource(folder.as_uri()).list_objects(DAY_KEY).keys() == {DAY_KEY}
    raw = f"file://{folder}"
    with pytest.raises(AirflowFailException, match="write '#' as %23"):
        LocalSource(raw)
    literal = tmp_path / "a%20b"  # a folder whose name holds "%20": the URI names "a b"
    shutil.copytree(plain, literal)
    with pytest.raises(AirflowFailException, match=r"source folder does not exist: .*/a b \(from file://"):
        LocalSource(f"file://{literal}")
    assert LocalSource(literal.as_uri()).list_objects(DAY_KEY).keys() == {DAY_KEY}
    with pytest.raises(AirflowFailException, match="names the host 'tmp'"):
        local_path("file://tmp/bucket")
    with pytest.raises(AirflowFailException, match="write a '%' of the path as %25"):
        local_path("file:///tmp/100%")
