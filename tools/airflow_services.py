"""A real local Airflow: API server with the UI, scheduler, DAG processor and triggerer.

    python tools/airflow_services.py start [--port 8080] [--source URI] [--warehouse URI]
    python tools/airflow_services.py stop
    python tools/airflow_services.py run     # start, wait for Ctrl-C (or `stop` from elsewhere), stop

Each component is its own process in its own process group (so stopping one
stops the LocalExecutor workers it spawned), with its log in
``<home>/logs/services/``. By default the home is ``.local/airflow``, the
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
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import psutil

from tools import local_pg
from tools.airflow_api import AirflowApi, healthy
from tools.airflow_env import DEFAULT_HOME, DEFAULT_SOURCE, airflow_environ, file_uri

# Task logs are files under the shared home, which the API server reads itself:
# no log-serving processes (and no fixed ports 8793/8794 to clash with another instance).
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
STARTUP_SECONDS = 180
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


def service_environ(
    port: int, source: str, warehouse: str, home: Path = DEFAULT_HOME, metadata_database: str = "airflow"
) -> dict[str, str]:
    """What every component needs beyond the shared local environment, tuned for a small machine:
    one parsing process, DAG files listed every 10 s, at most 8 task processes at once.

    The local sample has no objects for today: unless set otherwise, the schedule's runs of the
    current hour load it empty at once instead of waiting an hour and failing (production's default).
    """
    return {
        "AIRFLOW_VAR_SPARKIFY_OBJECTS_WAIT_SECONDS": "0",
        "AIRFLOW_VAR_SPARKIFY_MISSING_OBJECTS": "empty",
        **os.environ,
        **airflow_environ(warehouse, source, home, metadata_database),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    }


def start(
    port: int,
    source: str,
    warehouse: str,
    home: Path = DEFAULT_HOME,
    metadata_database: str = "airflow",
    settings: dict[str, str] | None = None,
) -> dict[str, int]:
    """Migrate the metadata database, start every component, wait until the API server answers;
    the process group of each component.

    :param settings: more environment for every component (``AIRFLOW__…`` options)
    """
    if state_file(home).exists():
        raise RuntimeError(f"Airflow already runs from {home} (see {state_file(home)}); stop it first")
    if not port_free(port):
        raise RuntimeError(f"port {port} is in use: choose another (--port, PORT=)")
    environ = {**service_environ(port, source, warehouse, home, metadata_database), **(settings or {})}
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=environ, check=True,
                   stdout=subprocess.DEVNULL)
    logs_dir(home).mkdir(parents=True, exist_ok=True)
    processes = {}
    for name, arguments in COMPONENTS.items():
        with open(logs_dir(home) / f"{name}.log", "ab") as log:
            processes[name] = subprocess.Popen([sys.executable, "-m", "airflow", *arguments], env=environ,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # Recorded as each starts, so a failure part-way still stops what did start.
        pids = {component: process.pid for component, process in processes.items()}
        state_file(home).write_text(json.dumps({"port": port, "pids": pids}))
    deadline = time.monotonic() + STARTUP_SECONDS
    while not healthy(f"http://localhost:{port}"):
        ended = [name for name, process in processes.items() if process.poll() is not None]
        if ended or time.monotonic() > deadline:
            stop(home)
            reason = f"{', '.join(ended)} exited" if ended else f"no answer within {STARTUP_SECONDS} s"
            raise RuntimeError(f"Airflow did not start ({reason}): see {logs_dir(home)}")
        time.sleep(1)
    return pids


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
    groups = state["pids"].values()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in groups:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
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
    deadline = time.monotonic() + 40  # its own stop: SIGTERM, up to 15 s, SIGKILL, up to 15 s
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
    port = free_port()
    try:
        start(port, source, warehouse, home, metadata_database, settings)
        yield AirflowApi(f"http://localhost:{port}", USER, password(home) or "", home / "logs").log_in()
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
    parser.add_argument("--warehouse", default="", help="postgresql:// URI (default: the embedded PostgreSQL)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="AIRFLOW_HOME (default: .local/airflow)")
    parser.add_argument("--metadata-db", default="airflow", help="embedded PostgreSQL database for the metadata")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    if args.command == "stop":
        print("Airflow stopped" if stop(home) else "Airflow was not running")
        return 0
    source = args.source or file_uri(DEFAULT_SOURCE)
    warehouse = args.warehouse or local_pg.ensure_database("sparkify")
    try:
        start(args.port, source, warehouse, home, args.metadata_db)
    except RuntimeError as error:
        raise SystemExit(str(error)) from None
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
