"""A small client of Airflow's REST API (``/api/v2``, the one the UI uses), for the
service tests and benchmarks: log in with SimpleAuthManager credentials, call,
and wait for DAG runs. The standard library only, so it adds no dependency.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

#: Run states after which nothing more happens to a run.
FINISHED = {"success", "failed"}
#: Airflow's default [api] maximum_page_limit.
PAGE = 100


class ApiError(RuntimeError):
    pass


class AirflowApi:
    """One logged-in user of one Airflow API server.

    :param url: the API server, e.g. ``http://localhost:8080``
    :param logs: the instance's log folder, to quote failed tasks' logs in errors
    """

    def __init__(self, url: str, username: str, password: str, logs: Path | None = None) -> None:
        self.url, self.username, self.password, self.logs = url.rstrip("/"), username, password, logs
        self.token = ""

    def request(self, method: str, path: str, body: dict | None = None, *, authorized: bool = True):
        """(status, decoded JSON) of one call; error answers are returned too, for tests to check."""
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

    def call(self, method: str, path: str, body: dict | None = None):
        """The JSON answer of a call that must succeed."""
        status, answer = self.request(method, path, body)
        if status >= 300:
            raise ApiError(f"{method} {path} answered {status}: {answer}")
        return answer

    def log_in(self) -> AirflowApi:
        """A JWT from SimpleAuthManager's token endpoint, as the UI's login form gets one."""
        status, answer = self.request(
            "POST", "/auth/token", {"username": self.username, "password": self.password}, authorized=False
        )
        if status != 201:
            raise ApiError(f"login as {self.username} answered {status}: {answer}")
        self.token = answer["access_token"]
        return self

    def dag_runs(self, dag_id: str, **filters: str) -> list[dict]:
        """Every run of the DAG (filters as the endpoint takes them, e.g. ``run_type="backfill"``),
        oldest logical date first."""
        runs: list[dict] = []
        while True:
            query = urlencode({**filters, "limit": PAGE, "offset": len(runs), "order_by": "logical_date"})
            page = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")
            runs += page["dag_runs"]
            if len(runs) >= page["total_entries"] or not page["dag_runs"]:
                return runs

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the DAG processor has parsed the DAG and the API knows it."""
        deadline = time.monotonic() + timeout
        while self.request("GET", f"/api/v2/dags/{dag_id}")[0] != 200:
            if time.monotonic() > deadline:
                raise ApiError(f"{dag_id} not parsed within {timeout} s")
            time.sleep(1)

    def wait_for_runs(self, dag_id: str, expected: int, timeout: float, **filters: str) -> list[dict]:
        """Until at least ``expected`` runs exist and all have finished. Fails as soon as a task
        fails or waits for a retry (retries are minutes apart), quoting the end of its log."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.dag_runs(dag_id, **filters)
            if len(runs) >= expected and all(run["state"] in FINISHED for run in runs):
                return runs
            troubled = self.call(
                "GET", f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?state=failed&state=up_for_retry"
            )["task_instances"]
            if troubled:
                raise ApiError("tasks failed:\n" + "\n".join(self._log_tail(ti) for ti in troubled))
            if time.monotonic() > deadline:
                states = {run["dag_run_id"]: run["state"] for run in runs if run["state"] not in FINISHED}
                raise ApiError(f"{len(runs)} of {expected} runs exist, not finished within {timeout} s: {states}")
            time.sleep(2)

    def wait_for_backfill(self, backfill_id: int, timeout: float = 90) -> dict:
        """Until the scheduler marks the backfill complete (it looks every 30 s)."""
        deadline = time.monotonic() + timeout
        while not (backfill := self.call("GET", f"/api/v2/backfills/{backfill_id}"))["completed_at"]:
            if time.monotonic() > deadline:
                raise ApiError(f"backfill {backfill_id} not marked complete within {timeout} s: {backfill}")
            time.sleep(2)
        return backfill

    def _log_tail(self, ti: dict, lines: int = 30) -> str:
        """The end of a task instance's log file, when its folder is known."""
        heading = f"--- {ti['dag_run_id']} {ti['task_id']} {ti['state']}"
        if self.logs is None:
            return heading
        pattern = f"dag_id={ti['dag_id']}/run_id={ti['dag_run_id']}/task_id={ti['task_id']}/attempt=*.log"
        files = sorted(self.logs.glob(pattern))
        tail = "\n".join(files[-1].read_text(errors="replace").splitlines()[-lines:]) if files else "(no log)"
        return f"{heading} ({files[-1] if files else self.logs})\n{tail}"
