"""`make airflow-stop` against a running `make airflow`: the services and the `make airflow`
process itself end, quickly, and no process of theirs is left behind (not even a zombie); under
the LocalExecutor and under Celery (`EXECUTOR=celery WORKERS=2`: the Redis broker and the workers too)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import psutil
import psycopg
import pytest

from tests.support.paths import REPO
from tools import airflow_services, local_pg
from tools.airflow_env import file_uri

pytestmark = pytest.mark.services

SERVICES = [sys.executable, str(REPO / "tools" / "airflow_services.py")]


#: Executor options, and the processes `make airflow` starts at least: the four components (and under
#: Celery the broker and two workers).
EXECUTORS = {"local": ([], 4), "celery": (["--executor", "celery", "--workers", "2"], 7)}


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_stop_ends_make_airflow_and_leaves_no_process(pg_server, tmp_path, executor):
    home, metadata_db = tmp_path / "home", f"airflow_test_stop_{uuid.uuid4().hex[:8]}"
    (tmp_path / "bucket").mkdir()
    options = ["--home", str(home), "--metadata-db", metadata_db]
    executor_options, components = EXECUTORS[executor]
    run = subprocess.Popen(
        [*SERVICES, "run", "--port", str(airflow_services.free_port()), "--source", file_uri(tmp_path / "bucket"),
         *options, *executor_options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        for line in run.stdout:
            if "stops Airflow" in line:  # started, and waiting for a stop
                break
        else:
            pytest.fail(f"`run` ended before the services were up: {run.wait()}")
        descendants = psutil.Process(run.pid).children(recursive=True)
        assert len(descendants) >= components, descendants  # the components, and their workers
        if executor == "celery":
            commands = [" ".join(process.cmdline()) for process in descendants]
            assert any("redis-server" in command for command in commands), commands
            assert sum(" celery worker " in command for command in commands) >= 2, commands

        began = time.monotonic()
        stopped = subprocess.run([*SERVICES, "stop", *options], capture_output=True, text=True, timeout=90)
        seconds = time.monotonic() - began
        assert stopped.returncode == 0 and "Airflow stopped" in stopped.stdout, stopped
        assert run.wait(timeout=30) == 0, "the `make airflow` process kept running"
        # A loaded machine may take a few seconds to reap the last worker: wait, bounded, then look.
        psutil.wait_procs([process for process in descendants if process.is_running()], timeout=15)
        left = [process for process in descendants if process.is_running()
                and process.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"left behind: {[process.cmdline() for process in left]}"
        # No zombie of ours: one whose parent is `make airflow` or one of its processes. An orphan
        # handed to the machine's init is init's to reap (some sandboxes' init never does).
        ours = {run.pid, *(process.pid for process in descendants)}
        zombies = [process for process in descendants if process.is_running() and _parent(process) in ours]
        assert not zombies, f"zombies left behind: {zombies}"
        # Before, the stop waited out two 15 s timeouts on the zombies of the components.
        assert seconds < 25, f"the stop took {seconds:.0f} s"
        assert not airflow_services.state_file(home).exists()
    finally:
        if run.poll() is None:
            airflow_services.stop(home)
            run.kill()
        with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{metadata_db}" WITH (FORCE)')


def _parent(process: psutil.Process) -> int | None:
    try:
        return process.ppid()
    except psutil.Error:  # reaped while we looked
        return None
