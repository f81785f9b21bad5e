"""A real local Airflow: API server with the UI, scheduler, DAG processor and triggerer.

    python tools/airflow_services.py start [--port 8080] [--source URI] [--warehouse URI]
    python tools/airflow_services.py stop
    python tools/airflow_services.py run     # start, wait for Ctrl-C, stop

Each component is its own process in its own process group (so stopping one
stops the LocalExecutor workers it spawned), with its log in
``.local/airflow/logs/services/``. The metadata database is the embedded
PostgreSQL's ``airflow`` database and the warehouse its ``sparkify`` database,
so run history and warehouse survive a restart. Local users log in as
``admin``; the password is generated on first start and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import local_pg  # noqa: E402
from tools.airflow_env import DEFAULT_HOME, DEFAULT_SOURCE, airflow_environ, file_uri  # noqa: E402

COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
}
PIDS = DEFAULT_HOME / "services.json"
LOGS = DEFAULT_HOME / "logs" / "services"
PASSWORDS = DEFAULT_HOME / "simple_auth_manager_passwords.json.generated"
STARTUP_SECONDS = 120


def service_environ(port: int, source: str, warehouse: str) -> dict[str, str]:
    """What every component needs beyond the shared local environment."""
    return {
        **os.environ,
        **airflow_environ(warehouse, source),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "10",
    }


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/api/v2/monitor/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start(port: int, source: str, warehouse: str) -> dict[str, int]:
    if PIDS.exists():
        raise SystemExit(f"Airflow already runs (see {PIDS}); stop it first")
    environ = service_environ(port, source, warehouse)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=environ, check=True,
                   stdout=subprocess.DEVNULL)
    LOGS.mkdir(parents=True, exist_ok=True)
    pids = {}
    for name, arguments in COMPONENTS.items():
        with open(LOGS / f"{name}.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "airflow", *arguments], env=environ,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pids[name] = process.pid
    PIDS.write_text(json.dumps({"port": port, "pids": pids}))
    deadline = time.monotonic() + STARTUP_SECONDS
    while not healthy(port):
        if time.monotonic() > deadline:
            stop()
            raise SystemExit(f"the API server did not answer within {STARTUP_SECONDS} s: see {LOGS}")
        time.sleep(1)
    return pids


def stop() -> bool:
    """Stop every component's process group: SIGTERM, then SIGKILL what is left."""
    if not PIDS.exists():
        return False
    groups = json.loads(PIDS.read_text())["pids"].values()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in groups:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in groups):
            time.sleep(0.5)
    PIDS.unlink()
    return True


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "run"])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--source", default="", help="base URI of the bucket (default: the generated sample)")
    parser.add_argument("--warehouse", default="", help="postgresql:// URI (default: the embedded PostgreSQL)")
    args = parser.parse_args(argv)
    if args.command == "stop":
        print("Airflow stopped" if stop() else "Airflow was not running")
        return 0
    source = args.source or file_uri(DEFAULT_SOURCE)
    warehouse = args.warehouse or local_pg.ensure_database("sparkify")
    start(args.port, source, warehouse)
    password = json.loads(PASSWORDS.read_text()).get("admin") if PASSWORDS.exists() else "(see the api-server log)"
    print(f"Airflow UI: http://localhost:{args.port}  (user admin, password {password})")
    print(f"Logs: {LOGS}.  Stop with: make airflow-stop")
    if args.command == "run":
        print("Ctrl-C stops Airflow.")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        stop()
        print("Airflow stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
