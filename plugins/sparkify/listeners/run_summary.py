"""What a run did, at one glance on its page: a listener writes the run's note when it ends.

Airflow 3.3 gives tasks no way to set their run's note (the Execution API only reads it), so the
note is written where the run's end is decided: Airflow calls ``on_dag_run_success`` /
``on_dag_run_failed`` in the scheduler (in ``make backfill``'s process under ``dag.test()``),
with the run in its session. The figures are the tasks' XComs, which are their ``load_audit``
records. A note a person wrote is kept: only a note this listener wrote (or none) is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl

from sparkify.cost import summary_line, total
from sparkify.notifications.alerts import ERROR_KEY, hour_of

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

#: The first words of every summary: how a note written here is told from a person's.
HEADING = "**Run summary**"
STAR_TABLES = ("songplays", "users", "songs", "artists", "time")


def _count(value: Any) -> str:
    return "?" if value is None else f"{value:,}"  # the Data API does not count some rows


def _hours(start: Any, end: Any) -> str:
    start, end = (datetime.fromisoformat(value) if isinstance(value, str) else value for value in (start, end))
    last = f"{end:%H:%M}" if start.date() == end.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M}–{last}"


@dataclass(frozen=True)
class TaskFigures:
    """One task of a run: its operator's class name (how the summary knows what it did) and its XCom."""

    task_id: str
    operator: str
    figures: dict[str, Any]


def summary(state: str, interval: str, tasks: list[TaskFigures], failed: list[str], not_run: int = 0,
            errors: dict[str, str] | None = None) -> str:
    """The note's Markdown, from each task's XCom (its audit record and its cost), told apart by the task's
    operator class; the tasks that failed (with the first line of each one's error, ``errors``), and how many
    did not run because of them."""
    from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator

    def of(operator: type, **where: Any) -> list[dict[str, Any]]:
        return [task.figures for task in tasks if task.operator == operator.__name__ and isinstance(task.figures, dict)
                and all(task.figures.get(key) == value for key, value in where.items())]

    loads = [*of(LoadFactOperator), *of(LoadDimensionOperator)]
    written = {record["table_name"]: record["rows_written"] for record in loads if record.get("mode") != "update"}
    late = next((record["rows_written"] for record in of(LoadFactOperator, mode="update")), None)
    events = next(iter(of(StageToRedshiftOperator, staged="by time")), {})
    songs = next(iter(of(StageToRedshiftOperator, staged="catalog")), {})
    set_aside = sum(record.get("rows_rejected") or 0 for record in (events, songs))
    lines = [f"{HEADING}: {state}, {interval}", ""]
    rows = " · ".join(f"{table} {_count(written[table])}" for table in STAR_TABLES if table in written)
    lines.append(f"- Rows written: {rows or 'none (the loads did not run)'}"
                 + (f"; late songs matched in earlier plays: {_count(late)}" if late is not None else ""))
    if events or songs:
        lines.append(f"- Staged: {_count(events.get('rows_written'))} events (event objects read: "
                     f"{_count(events.get('object_count'))}), {_count(songs.get('rows_written'))} songs "
                     f"(song files new or changed: {_count(songs.get('object_count'))})")
        lines.append(f"- Bad records set aside (quarantine): {set_aside:,}")
        restated = events.get("restated") or []
        lines.append("- Hours restated: " + ("; ".join(
            f"{_hours(record['hours_start'], record['hours_end'])} ({record['change']} object "
            f"{record['object_uri']})" for record in restated) or "none"))
        aside = [entry for record in (events, songs) for entry in record.get("set_aside") or []]
        if aside:
            lines.append("- Objects set aside as bad (until they change): " + "; ".join(
                f"{entry['object_uri']} ({entry['reason'] or 'no reason recorded'})" for entry in aside))
    checks = next(iter(of(DataQualityOperator)), None)
    checks_failed = {task.task_id for task in tasks if task.operator == DataQualityOperator.__name__} & set(failed)
    if checks:
        lines.append(f"- Quality checks: {checks['checks'] - checks['failed']} of {checks['checks']} passed")
    else:
        lines.append("- Quality checks: " + ("failed (its log names each check)" if checks_failed else "not run"))
    if songs.get("catalog_discovery"):
        lines.append(catalog_line(songs))
    costs = [task.figures["cost"] for task in tasks if isinstance(task.figures, dict) and task.figures.get("cost")]
    if costs:  # what the tasks that ended cost, together (sparkify.cost)
        lines.append(summary_line(total(costs)))
    if failed:
        lines.append(f"- Failed: {', '.join(failed)}" + (f" ({not_run} tasks after it did not run)" if not_run else ""))
        lines += [f"  - {task}: {(errors or {})[task]}" for task in failed if (errors or {}).get(task)]
    return "\n".join(lines)


def catalog_line(songs: dict[str, Any]) -> str:
    """How stage_songs found the catalog's changes, the bucket's notifications or a full listing (a
    reconciliation: then how many new or changed files it alone found), and why."""
    if songs["catalog_discovery"] == "notifications":
        found = (f"notifications, {_count(songs.get('messages_received'))} messages naming "
                 f"{_count(songs.get('song_files_named'))} song files")
    else:
        found = f"full listing of {_count(songs.get('objects_listed'))} song files"
        if songs.get("found_by_listing_only") is not None:
            found += f", {_count(songs['found_by_listing_only'])} new or changed found by it alone"
    removed = songs.get("song_files_removed") or 0
    return (f"- Song catalog: {found} — {songs.get('catalog_reason')}"
            + (f"; removed from the bucket (their songs kept): {removed:,}" if removed else ""))


def write_note(dag_run: DagRun) -> None:
    """Set the run's note to its summary, unless a person wrote one."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:  # the scheduler's session, which it commits
        _write_note(dag_run, dag_run, session)
        return
    # dag.test() hands listeners a run out of any session: write through one of our own (it takes
    # no lock the run's own transaction holds: the note is a row of its own).
    assert settings.NonScopedSession is not None, "Airflow configures its ORM before it calls listeners"
    with settings.NonScopedSession() as own, own.begin():
        _write_note(dag_run, own.get(DagRun, dag_run.id), own)


def _write_note(dag_run: DagRun, stored: DagRun, session: Any) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.sdk.bases.xcom import BaseXCom
    from sqlalchemy import select

    from sparkify import StageToRedshiftOperator

    if stored.note and not stored.note.startswith(HEADING):
        return
    instances = session.execute(
        select(TaskInstance.task_id, TaskInstance.state, TaskInstance.operator).where(
            TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
    ).all()
    operators = {row.task_id: row.operator for row in instances}
    if StageToRedshiftOperator.__name__ not in operators.values():
        return  # not a run of this project's pipeline
    results = session.execute(
        select(XComModel.task_id, XComModel.key, XComModel.value).where(
            XComModel.dag_run_id == dag_run.id, XComModel.key.in_([BaseXCom.XCOM_RETURN_KEY, ERROR_KEY])
        )
    ).all()
    by_key: dict[str, dict[str, Any]] = {BaseXCom.XCOM_RETURN_KEY: {}, ERROR_KEY: {}}
    for row in results:
        by_key[row.key][row.task_id] = XComModel.deserialize_value(row)
    tasks = [TaskFigures(task_id, operators[task_id], figures)
             for task_id, figures in by_key[BaseXCom.XCOM_RETURN_KEY].items() if task_id in operators]
    failed = sorted(row.task_id for row in instances if row.state == "failed")
    not_run = sum(row.state == "upstream_failed" for row in instances)
    stored.note = summary(str(dag_run.state), hour_of(dag_run.data_interval_start, dag_run.data_interval_end),
                          tasks, failed, not_run, by_key[ERROR_KEY])


@hookimpl
def on_dag_run_success(dag_run: DagRun, msg: str) -> None:
    write_note(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: DagRun, msg: str) -> None:
    write_note(dag_run)
