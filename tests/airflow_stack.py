"""The real Airflow services for the service-level and browser tests, and what
they do through the REST API the UI uses.

Started once per test session (fixtures in conftest.py) with a home, metadata
database and warehouse database of their own on free local ports, so they run
beside a developer's ``make airflow``; stopped at the end whatever happened.
The scenario, as a user would run it: unpause ``sparkify_dwh``, trigger a run
for a logical date, backfill six hours, wait for every run.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from tools import airflow_services, local_pg
from tools.airflow_env import file_uri
from tools.generate_data import generate

DAG_ID = "sparkify_dwh"
#: The generated hours: a backfill loads the first six, a run triggered by hand the seventh.
DATA_START = datetime(2018, 11, 1, tzinfo=timezone.utc)
BACKFILL_HOURS = 6
DATA_END = DATA_START + timedelta(hours=BACKFILL_HOURS + 1)
#: A manual run at X loads the last complete hour before X: this one loads [06:00, 07:00).
TRIGGER_LOGICAL_DATE = DATA_END
RUNS_TIMEOUT = 420
#: How often the scheduler looks for finished backfills (fixed in Airflow), plus slack.
BACKFILL_COMPLETION_TIMEOUT = 90
FINISHED = {"success", "failed"}


class ApiError(RuntimeError):
    pass


@dataclass
class AirflowStack:
    url: str
    home: Path
    source: Path
    warehouse: str
    username: str = airflow_services.USER
    password: str = ""
    token: str = ""

    def request(self, method: str, path: str, body: dict | None = None, *, authorized: bool = True):
        """(status, decoded JSON) of one call; errors are answers too, for tests to check."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if authorized:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """The JSON of a call that must succeed."""
        status, answer = self.request(method, path, body)
        if status >= 300:
            raise ApiError(f"{method} {path} answered {status}: {answer}")
        return answer

    def log_in(self) -> None:
        """A JWT from SimpleAuthManager's token endpoint, as the UI's login form gets one."""
        status, answer = self.request(
            "POST", "/auth/token", {"username": self.username, "password": self.password}, authorized=False
        )
        if status != 201:
            raise ApiError(f"login answered {status}: {answer}")
        self.token = answer["access_token"]

    def dag_runs(self) -> list[dict]:
        return self.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100&order_by=logical_date")["dag_runs"]

    def wait_for_dag(self, timeout: float = 120) -> None:
        """Until the DAG processor has parsed the DAG file and the API knows the DAG."""
        deadline = time.monotonic() + timeout
        while self.request("GET", f"/api/v2/dags/{DAG_ID}")[0] != 200:
            if time.monotonic() > deadline:
                raise ApiError(f"{DAG_ID} not parsed within {timeout} s: see {self.home / 'logs'}")
            time.sleep(1)

    def wait_for_runs(self, expected: int, timeout: float = RUNS_TIMEOUT) -> list[dict]:
        """Until at least ``expected`` runs exist and all are finished; fails fast, with the task
        logs, as soon as a task fails or waits for a retry (the DAG retries minutes apart)."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.dag_runs()
            if len(runs) >= expected and all(run["state"] in FINISHED for run in runs):
                return runs
            troubled = self.call(
                "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances?state=failed&state=up_for_retry"
            )["task_instances"]
            if troubled or time.monotonic() > deadline:
                states = {run["dag_run_id"]: run["state"] for run in runs}
                raise ApiError(
                    f"runs not finished within {timeout} s: {states}" if not troubled else
                    "tasks failed:\n" + "\n".join(self.task_log_tail(ti) for ti in troubled)
                )
            time.sleep(2)

    def wait_for_backfill(self, backfill_id: int, timeout: float = BACKFILL_COMPLETION_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while not (backfill := self.call("GET", f"/api/v2/backfills/{backfill_id}"))["completed_at"]:
            if time.monotonic() > deadline:
                raise ApiError(f"backfill {backfill_id} not marked complete within {timeout} s: {backfill}")
            time.sleep(2)
        return backfill

    def task_log_tail(self, ti: dict, lines: int = 30) -> str:
        """The end of a task instance's log file (task logs are files under the home)."""
        pattern = f"dag_id={ti['dag_id']}/run_id={ti['dag_run_id']}/task_id={ti['task_id']}/attempt=*.log"
        logs = sorted((self.home / "logs").glob(pattern))
        tail = "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:]) if logs else "(no log)"
        return f"--- {ti['dag_run_id']} {ti['task_id']} {ti['state']}\n{tail}"


@dataclass
class Scenario:
    """What the scenario asked for and what Airflow answered."""

    triggered: dict
    backfill: dict
    runs: list[dict]
    seconds: dict[str, float] = field(default_factory=dict)


def started(tmp: Path) -> Iterator[AirflowStack]:
    """Generate the data, start the services with their own home and databases, yield them
    logged in; stop everything and drop the databases afterwards, also on failure."""
    source = tmp / "bucket"
    generate(source, DATA_START, DATA_END, events_per_day=600, songs=150, users=20, seed=7)
    suffix = uuid.uuid4().hex[:10]
    metadata_db, warehouse_db = f"airflow_test_{suffix}", f"test_{suffix}"
    warehouse = local_pg.ensure_database(warehouse_db)
    home, port = tmp / "airflow-home", airflow_services.free_port()
    try:
        airflow_services.start(port, file_uri(source), warehouse, home, metadata_db)
        stack = AirflowStack(f"http://localhost:{port}", home, source, warehouse,
                             password=airflow_services.password(home) or "")
        stack.log_in()
        yield stack
    finally:
        airflow_services.stop(home)
        with psycopg.connect(local_pg.database_uri("postgres"), autocommit=True) as admin:
            for database in (metadata_db, warehouse_db):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run_scenario(stack: AirflowStack) -> Scenario:
    """Unpause the DAG, trigger a run for a logical date and backfill six hours, all through the
    REST API; wait for every run and for the backfill to be marked complete."""
    began = time.monotonic()
    stack.wait_for_dag()
    stack.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    triggered = stack.call(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": TRIGGER_LOGICAL_DATE.isoformat(), "conf": {}}
    )
    backfill = stack.call("POST", "/api/v2/backfills", {
        "dag_id": DAG_ID,
        "from_date": DATA_START.isoformat(),
        "to_date": (DATA_START + timedelta(hours=BACKFILL_HOURS - 1)).isoformat(),
        "max_active_runs": 4,
        "reprocess_behavior": "failed",
    })
    submitted = time.monotonic()
    # The backfill's runs, the triggered one and the one the schedule makes on unpausing.
    runs = stack.wait_for_runs(BACKFILL_HOURS + 2)
    finished = time.monotonic()
    completed = stack.wait_for_backfill(backfill["id"])
    return Scenario(triggered, completed, runs, {
        "submit": submitted - began, "runs": finished - submitted, "backfill marked": time.monotonic() - finished,
    })
