"""`make backfill` (tools/backfill.py, run as a user runs it) against what goes wrong around it: a
warehouse that accepts connections and never answers, SIGTERM and SIGINT mid-run, the embedded
PostgreSQL restarted mid-backfill, and source folders named with ``#`` and ``%``."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.dates import START
from tests.support.reference import build_reference
from tests.support.warehouse_checks import assert_matches_reference, backfill, backfill_command
from tools import local_pg
from tools.airflow_env import CONNECT_TIMEOUT, connection_json
from tools.generate_data import generate

HOURS = 6
END = START + timedelta(hours=HOURS)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bucket")
    generate(folder, START, START + timedelta(days=1), events_per_day=300, songs=80, users=20, seed=9)
    return folder


@pytest.fixture
def silent_warehouse():
    """A socket on 127.0.0.1 that accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"postgresql://sparkify@127.0.0.1:{listener.getsockname()[1]}/sparkify"
    closing.set()
    listener.close()
    for connection in accepted:
        connection.close()


class Backfill:
    """tools/backfill.py in a process of its own, its console lines collected as they come."""

    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(backfill_command(*arguments), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    def wait_for(self, pattern: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(re.search(pattern, line) for line in list(self.lines)):
            assert self.process.poll() is None, f"ended before {pattern!r}: {''.join(self.lines)}"
            assert time.monotonic() < deadline, f"no {pattern!r} in {timeout} s: {''.join(self.lines)}"
            time.sleep(0.2)

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        """Wait for the end (stdout is the reader's: communicate() would race it for the last lines)."""
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return self.process.returncode, "".join(self.lines), self.process.stderr.read()


def test_a_warehouse_that_never_answers_fails_the_backfill_in_seconds(source, silent_warehouse):
    began = time.monotonic()
    result = subprocess.run(backfill_command(source, silent_warehouse, START, START + timedelta(days=30)),
                            capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - began
    assert result.returncode != 0
    assert f"the warehouse {silent_warehouse} does not answer (connect timeout {CONNECT_TIMEOUT} s)" in result.stderr
    assert "Backfilling" not in result.stdout, "a run started against a warehouse that does not answer"
    assert seconds < CONNECT_TIMEOUT + 30, f"took {seconds:.0f} s"


def test_the_tasks_warehouse_connection_gives_up_after_its_connect_timeout(silent_warehouse, monkeypatch):
    """The connection the tasks use (tools/airflow_env.py), through the postgres provider's hook."""
    import psycopg
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setenv("AIRFLOW_CONN_SPARKIFY_WAREHOUSE", connection_json(silent_warehouse))
    began = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="timeout"):
        PostgresHook(postgres_conn_id="sparkify_warehouse").get_conn()
    assert time.monotonic() - began < CONNECT_TIMEOUT + 10


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_backfill_with_its_summary_and_a_rerun_completes_it(source, warehouse_uri, signum):
    running = Backfill(source, warehouse_uri, START, END, "--hourly")
    running.wait_for(rf"^\[1/{HOURS}\] .* success")
    time.sleep(0.5)  # into the second run
    running.process.send_signal(signum)
    began = time.monotonic()
    returncode, stdout, stderr = running.finish(timeout=120)
    assert time.monotonic() - began < 60
    assert returncode == 128 + signum, stdout + stderr[-3000:]
    assert re.search(r"^\d of \d runs succeeded in", stdout, re.MULTILINE), stdout + stderr[-3000:]
    stopped = re.search(rf"^Stopped by {signum.name}: (\d) of {HOURS} runs not run", stdout, re.MULTILINE)
    assert stopped and 0 < int(stopped.group(1)) < HOURS, stdout
    assert "Traceback" not in stderr, stderr[-3000:]
    backfill(source, warehouse_uri, START, END, "--hourly")
    assert_matches_reference(warehouse_uri, build_reference(source, START, END))


def test_the_embedded_postgresql_restarted_mid_backfill_fails_at_most_the_runs_in_flight(source, warehouse_uri):
    running = Backfill(source, warehouse_uri, START, END, "--hourly")
    running.wait_for(rf"^\[1/{HOURS}\] .* success")
    time.sleep(0.5)
    assert local_pg.stop_server()
    time.sleep(1)
    local_pg.ensure_server()
    returncode, stdout, stderr = running.finish()
    summary = re.search(r"^(\d) of (\d) runs succeeded", stdout, re.MULTILINE)
    assert summary and summary.group(2) == str(HOURS), stdout + stderr[-3000:]
    assert int(summary.group(1)) >= HOURS - 2, stdout  # the run the restart hit, and perhaps the one after
    assert re.search(rf"^\[{HOURS}/{HOURS}\] .* success", stdout, re.MULTILINE), stdout
    assert returncode == (0 if summary.group(1) == str(HOURS) else 1)
    assert "Traceback" not in stderr, stderr[-3000:]
    backfill(source, warehouse_uri, START, END, "--hourly")
    assert_matches_reference(warehouse_uri, build_reference(source, START, END))


def test_folders_named_with_hash_and_percent_are_read_by_their_uri_and_a_raw_hash_is_refused(
        source, warehouse_uri, tmp_path):
    folder = tmp_path / "bucket #2 %20"
    shutil.copytree(source, folder)
    end = START + timedelta(hours=2)
    refused = subprocess.run(backfill_command(f"file://{folder}", warehouse_uri, START, end),
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert f"SOURCE file://{folder}: 'file://{folder}': write '#' as %23" in refused.stderr
    assert "Backfilling" not in refused.stdout
    shutil.copytree(source, tmp_path / "a%20b")
    literal = subprocess.run(backfill_command(f"file://{tmp_path}/a%20b", warehouse_uri, START, end),
                             capture_output=True, text=True, timeout=120)
    assert literal.returncode != 0  # a URI's %20 is a space: the folder "a b", which is not there
    assert f"source folder does not exist: {tmp_path}/a b (from file://{tmp_path}/a%20b)" in literal.stderr
    backfill(folder, warehouse_uri, START, end)  # by Path.as_uri(): file:///…/bucket%20%232%20%2520
    assert_matches_reference(warehouse_uri, build_reference(folder, START, end))
