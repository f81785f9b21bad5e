"""Alerts: a failed or retried task, a failed run, a late hour and objects set aside as bad, told
through Airflow's notifiers.

Off until the Variable ``sparkify_alerts`` names a notifier (JSON, read when an alert fires, never
at parse time)::

    {"to": "oncall@example.com", "from_email": "airflow@example.com"}

sends mail through Airflow's SMTP notifier and its ``smtp_default`` connection (``smtp_conn_id``
names another); any provider's notifier works by its import path, with its own arguments, which
may use ``{{ alert.subject }}`` and ``{{ alert.text }}``::

    {"notifier": "airflow.providers.slack.notifications.slack.SlackNotifier",
     "channel": "#data-oncall", "text": "{{ alert.text }}"}

Every alert names the DAG run, the hour (its data interval), the task and the first line of its
error. A notifier that fails is logged and never fails the task or run it reports on.

The freshness rule is an Airflow deadline alert on the hourly DAG: a scheduled hour whose run has
not succeeded a set time after the hour ended is reported by :func:`late_hour`, in the triggerer.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier, Variable

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

VARIABLE = "sparkify_alerts"
SMTP_NOTIFIER = "airflow.providers.smtp.notifications.smtp.SmtpNotifier"
#: The SMTP notifier's message, unless the Variable gives its own ``subject`` / ``html_content``.
SMTP_MESSAGE = {"subject": "{{ alert.subject }}", "html_content": "<pre>{{ alert.text | e }}</pre>"}
#: The XCom under which a failed task leaves its first error line for the run's alert.
ERROR_KEY = "sparkify_alert_error"


def first_line(error: BaseException | str | None) -> str:
    """The first non-blank line of an error, with its type: what fits an alert's subject line."""
    if error is None:
        return "(no error recorded: see the task log)"
    text = str(error) if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())


def hour_of(start: Any, end: Any) -> str:
    """A data interval as people read it: ``2018-11-01 14:00 → 15:00 UTC``."""
    if start is None or end is None:
        return "(no data interval)"
    end_format = "%H:%M" if start.date() == end.date() else "%Y-%m-%d %H:%M"
    return f"{start:%Y-%m-%d %H:%M} → {end.strftime(end_format)} UTC"


def compose(kind: str, *, dag_id: str, run_id: str, interval: str, task: str, error: str,
            detail: str = "") -> dict[str, str]:
    """The alert's subject and text."""
    subject = f"[sparkify] {dag_id} {interval}: {task} {kind}"
    lines = [
        f"{kind.capitalize()}: {task}",
        f"DAG run: {dag_id} / {run_id}",
        f"Hour: {interval}",
        f"Error: {error}",
    ]
    return {"subject": subject, "text": "\n".join([*lines, *([detail] if detail else [])])}


def configured_notifier() -> BaseNotifier | None:
    """The notifier the Variable names, or None when alerts are off."""
    setting = Variable.get(VARIABLE, default="")
    if not setting.strip():
        return None
    options = json.loads(setting)
    path = options.pop("notifier", SMTP_NOTIFIER)
    if path == SMTP_NOTIFIER:
        options = {**SMTP_MESSAGE, **options}
    module, _, name = path.rpartition(".")
    notifier: BaseNotifier = getattr(importlib.import_module(module), name)(**options)
    return notifier


def send(alert: dict[str, str], context: Context) -> bool:
    """Hand the alert to the configured notifier; whether one was configured and sent it."""
    try:
        notifier = configured_notifier()
        if notifier is None:
            return False
        # The notifier renders its fields with the context: {{ alert.subject }}, {{ alert.text }}.
        # The alert is a value there, never a template, so an error message is not rendered.
        notifier_context = {**context, "alert": alert}
        if not hasattr(notifier_context.get("dag"), "get_template_env"):
            # dag.test() (make backfill) gives DAG callbacks the serialized DAG, which cannot render.
            notifier_context.pop("dag", None)
        notifier(notifier_context)
    except Exception:  # an alert must never fail what it reports on
        log.exception("could not send the alert %r", alert["subject"])
        return False
    log.info("alert sent: %s", alert["subject"])
    return True


class _Alert(BaseNotifier):
    """What both alerts share: they template nothing themselves, the notifier they call does."""

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Nothing to render (and dag.test()'s DAG callbacks get a DAG that cannot)."""


class TaskAlert(_Alert):
    """``on_failure_callback`` / ``on_retry_callback`` of every task.

    :param kind: what happened, ``failed`` or ``up for retry``
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def notify(self, context: Context) -> None:
        ti = context["ti"]
        error = first_line(context.get("exception"))
        if self.kind == "failed":
            ti.xcom_push(key=ERROR_KEY, value=error)  # for the run's alert
        attempt = f"{ti.task_id} (try {ti.try_number} of {ti.max_tries + 1})"
        alert = compose(self.kind, dag_id=ti.dag_id, run_id=ti.run_id, task=attempt, error=error,
                        interval=hour_of(context.get("data_interval_start"), context.get("data_interval_end")),
                        detail=f"Log: {ti.log_url}")
        send(alert, context)


class RunAlert(_Alert):
    """``on_failure_callback`` of the DAG: the run failed; names the task that failed it."""

    def notify(self, context: Context) -> None:
        dag_run, ti = context.get("dag_run"), context.get("ti")
        task = ti.task_id if ti else "(unknown task)"
        error = _recorded_error(ti) if ti else first_line(None)
        alert = compose("failed the run", dag_id=context["dag"].dag_id, run_id=context["run_id"], task=task,
                        error=error, detail=f"Reason: {context.get('reason')}",
                        interval=hour_of(getattr(dag_run, "data_interval_start", None),
                                         getattr(dag_run, "data_interval_end", None)))
        send(alert, context)


def set_aside_alert(context: Context, task_id: str, objects: list[dict[str, Any]]) -> bool:
    """Warn that objects are set aside as bad (song files: the catalog goes on without them), in every
    run until they change; whether the alert was sent."""
    dag_run = context.get("dag_run")
    first = objects[0]
    alert = compose(
        "warning", dag_id=getattr(dag_run, "dag_id", "(no DAG run)"), run_id=context["run_id"], task=task_id,
        interval=hour_of(context.get("data_interval_start"), context.get("data_interval_end")),
        error=f"{len(objects)} object(s) set aside as bad, the first {first['object_uri']}",
        detail="\n".join(f"Set aside: {entry['object_uri']}: {entry['reason'] or '(no reason recorded)'}"
                         for entry in objects),
    )
    return send(alert, context)


def _recorded_error(ti: Any) -> str:
    """The error line the failed task left (read through the DAG processor); dag.test() runs DAG
    callbacks with no way to read XComs, so there the task's own alert has it."""
    try:
        recorded = ti.xcom_pull(task_ids=ti.task_id, key=ERROR_KEY)
    except ImportError:  # dag.test(): no supervisor to ask
        return f"see the alert of {ti.task_id}"
    return recorded or first_line(None)


async def late_hour(grace_minutes: int, context: dict[str, Any]) -> None:
    """Deadline alert callback: the run of a scheduled hour has not succeeded ``grace_minutes``
    after the hour ended. Backfills and runs triggered by hand load hours long past on purpose:
    whoever started them watches them, so they raise no freshness alert (their failures still do)."""
    run = context["dag_run"]
    if run["run_type"] != "scheduled":
        return
    interval = hour_of(datetime.fromisoformat(run["data_interval_start"]),
                       datetime.fromisoformat(run["data_interval_end"]))
    alert = compose("late", dag_id=run["dag_id"], run_id=run["dag_run_id"], interval=interval,
                    task=f"the hour's run ({run['state']})",
                    error=f"not loaded {grace_minutes} minutes after the hour ended")
    # The notifier (and the Variable read) are synchronous: off the triggerer's event loop.
    await asyncio.to_thread(send, alert, {"dag_run": run})
