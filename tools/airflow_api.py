"""Airflow's REST API (``/api/v2``, the one the UI uses) through Airflow's official client,
``apache-airflow-client`` (``airflow_client.client``), for the service tests, ``make airflow``
and the benchmarks. What the client leaves to its users is here: logging in with
SimpleAuthManager credentials, waiting (with timeouts) for a DAG to be parsed and for DAG runs
and backfills to finish, and quoting the end of a failed task's log.

The calls themselves are the client's: ``AirflowApi`` holds one logged-in ``ApiClient`` and the
client's API classes (``dag_api``, ``dag_run_api``, ``backfill_api``, ``task_api``,
``task_instance_api``, ``asset_api``); answers are the client's models, error answers raise its
``ApiException`` (``.status`` is the HTTP status).
"""

from __future__ import annotations

import time
from pathlib import Path

import urllib3
from airflow_client.client import (
    ApiClient,
    ApiException,
    AssetApi,
    BackfillApi,
    BackfillResponse,
    Configuration,
    DAGApi,
    DagRunApi,
    DAGRunResponse,
    DagRunState,
    MonitorApi,
    TaskApi,
    TaskInstanceApi,
    TaskInstanceResponse,
    TaskInstanceState,
)

#: Run states after which nothing more happens to a run.
FINISHED = {DagRunState.SUCCESS, DagRunState.FAILED}
#: Airflow's default [api] maximum_page_limit.
PAGE = 100
#: Seconds one call may take. The client's own default is no limit, so a hung API server would hang
#: a test for good.
CALL_TIMEOUT = 30


class ApiError(RuntimeError):
    pass


class _ApiClient(ApiClient):
    """The client's ApiClient, with ``CALL_TIMEOUT`` on every call that sets no timeout of its own."""

    def call_api(self, method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        return super().call_api(method, url, header_params, body, post_params, _request_timeout or CALL_TIMEOUT)


def api_client(url: str, token: str | None = None) -> ApiClient:
    """A client of the API server at ``url``, e.g. ``http://localhost:8080`` (the base URL: the
    client's paths start with ``/api/v2``), sending ``token`` as a Bearer JWT when given."""
    return _ApiClient(Configuration(host=url.rstrip("/"), access_token=token))


def healthy(url: str) -> bool:
    """Whether the API server answers its health endpoint (no login needed)."""
    try:
        MonitorApi(api_client(url)).get_health(_request_timeout=2)
    except (ApiException, urllib3.exceptions.HTTPError):
        return False
    return True


def access_token(url: str, username: str, password: str) -> str:
    """A JWT from SimpleAuthManager's token endpoint, as the UI's login form gets one.

    Sent through the client's transport but not one of its calls: ``POST /auth/token`` belongs to the
    auth manager, not to the ``/api/v2`` spec the client is generated from. The client's only login
    call, ``LoginApi.login``, is ``GET /api/v2/auth/login``, which redirects to the login page
    (measured on 3.3.2: it answers the page's HTML, no token), and the client's README gets the token
    with a hand-written POST too.
    """
    client = api_client(url)
    request = client.param_serialize(
        "POST", "/auth/token", header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body={"username": username, "password": password},
    )
    response = client.call_api(*request)
    response.read()
    # Error answers raise ApiException, as the client's own calls do.
    answer = client.response_deserialize(response, {"201": "object"}).data
    return answer["access_token"]


class AirflowApi:
    """One logged-in user of one Airflow API server.

    :param url: the API server, e.g. ``http://localhost:8080``
    :param logs: the instance's log folder, to quote failed tasks' logs in errors
    """

    def __init__(self, url: str, username: str, password: str, logs: Path | None = None) -> None:
        self.url, self.username, self.password, self.logs = url.rstrip("/"), username, password, logs
        self.client = api_client(self.url)
        self.dag_api = DAGApi(self.client)
        self.dag_run_api = DagRunApi(self.client)
        self.backfill_api = BackfillApi(self.client)
        self.task_api = TaskApi(self.client)
        self.task_instance_api = TaskInstanceApi(self.client)
        self.asset_api = AssetApi(self.client)

    def log_in(self) -> AirflowApi:
        """Every later call sends the user's JWT."""
        self.client.configuration.access_token = access_token(self.url, self.username, self.password)
        return self

    def dag_runs(self, dag_id: str, **filters) -> list[DAGRunResponse]:
        """Every run of the DAG (filters as ``DagRunApi.get_dag_runs`` takes them, e.g.
        ``run_type=["backfill"]``), oldest logical date first."""
        runs: list[DAGRunResponse] = []
        while True:
            page = self.dag_run_api.get_dag_runs(
                dag_id, **filters, limit=PAGE, offset=len(runs), order_by=["logical_date"]
            )
            runs += page.dag_runs
            if len(runs) >= page.total_entries or not page.dag_runs:
                return runs

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the DAG processor has parsed the DAG and the API knows it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.dag_api.get_dag(dag_id)
                return
            except ApiException:
                if time.monotonic() > deadline:
                    raise ApiError(f"{dag_id} not parsed within {timeout} s") from None
            time.sleep(1)

    def wait_for_runs(
        self, dag_id: str, expected: int, timeout: float, *, retries_expected: bool = False, **filters
    ) -> list[DAGRunResponse]:
        """Until at least ``expected`` runs exist and all have finished. Fails as soon as a task
        fails or waits for a retry (retries are minutes apart), quoting the end of its log; with
        ``retries_expected`` (a test that makes a try fail and shortens the delay), only a task that
        failed for good does."""
        troubles = [TaskInstanceState.FAILED.value]
        if not retries_expected:
            troubles.append(TaskInstanceState.UP_FOR_RETRY.value)
        deadline = time.monotonic() + timeout
        while True:
            runs = self.dag_runs(dag_id, **filters)
            if len(runs) >= expected and all(run.state in FINISHED for run in runs):
                return runs
            troubled = self.task_instance_api.get_task_instances(dag_id, "~", state=troubles).task_instances
            if troubled:
                raise ApiError("tasks failed:\n" + "\n".join(self._log_tail(ti) for ti in troubled))
            if time.monotonic() > deadline:
                states = {run.dag_run_id: run.state.value for run in runs if run.state not in FINISHED}
                raise ApiError(f"{len(runs)} of {expected} runs exist, not finished within {timeout} s: {states}")
            time.sleep(2)

    def wait_for_backfill(self, backfill_id: int, timeout: float = 90) -> BackfillResponse:
        """Until the scheduler marks the backfill complete (it looks every 30 s)."""
        deadline = time.monotonic() + timeout
        while not (backfill := self.backfill_api.get_backfill(backfill_id)).completed_at:
            if time.monotonic() > deadline:
                raise ApiError(f"backfill {backfill_id} not marked complete within {timeout} s: {backfill}")
            time.sleep(2)
        return backfill

    def _log_tail(self, ti: TaskInstanceResponse, lines: int = 30) -> str:
        """The end of a task instance's log file, when its folder is known."""
        heading = f"--- {ti.dag_run_id} {ti.task_id} {ti.state.value if ti.state else None}"
        if self.logs is None:
            return heading
        pattern = f"dag_id={ti.dag_id}/run_id={ti.dag_run_id}/task_id={ti.task_id}/attempt=*.log"
        files = sorted(self.logs.glob(pattern))
        tail = "\n".join(files[-1].read_text(errors="replace").splitlines()[-lines:]) if files else "(no log)"
        return f"{heading} ({files[-1] if files else self.logs})\n{tail}"
