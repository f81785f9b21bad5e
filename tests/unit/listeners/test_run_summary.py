"""The run summary: each task's figures told apart by its operator class, whatever its task id."""

from __future__ import annotations

from sparkify.listeners.run_summary import TaskFigures, summary

INTERVAL = "2018-11-15 10:00 → 11:00 UTC"


def audit(table: str, written: int | None, **extra: object) -> dict[str, object]:
    return {"table_name": table, "rows_written": written, "rows_rejected": 0, "object_count": 1, **extra}


def run(**renamed: str) -> list[TaskFigures]:
    """A run's tasks, under task ids of the caller's choosing (the DAG's by default)."""
    ids = {"events": "stage_events", "songs": "stage_songs", "fact": "load_songplays", "late": "match_late_songs",
           "users": "load_users", "checks": "run_quality_checks", **renamed}
    return [
        TaskFigures(ids["events"], "StageToRedshiftOperator", audit(
            "staging_events", 300, staged="by time", set_aside=[], restated=[
                {"object_uri": "s3://b/day.json", "change": "late", "hours_start": "2018-11-15T08:00",
                 "hours_end": "2018-11-15T10:00"}])),
        TaskFigures(ids["songs"], "StageToRedshiftOperator", audit(
            "staging_songs", 5, staged="catalog", set_aside=[{"object_uri": "s3://b/song.json", "reason": "line 1"}])),
        TaskFigures(ids["fact"], "LoadFactOperator", audit("songplays", 40, mode="replace-interval")),
        TaskFigures(ids["late"], "LoadFactOperator", audit("songplays", 2, mode="update")),
        TaskFigures(ids["users"], "LoadDimensionOperator", audit("users", 7, mode="upsert")),
        TaskFigures(ids["checks"], "DataQualityOperator", {"checks": 13, "failed": 0}),
    ]


def test_the_summary_reads_each_task_by_its_operator_class_not_its_task_id():
    expected = [
        "**Run summary**: success, 2018-11-15 10:00 → 11:00 UTC",
        "",
        "- Rows written: songplays 40 · users 7; late songs matched in earlier plays: 2",
        "- Staged: 300 events (event objects read: 1), 5 songs (song files new or changed: 1)",
        "- Bad records set aside (quarantine): 0",
        "- Hours restated: 2018-11-15 08:00–10:00 (late object s3://b/day.json)",
        "- Objects set aside as bad (until they change): s3://b/song.json (line 1)",
        "- Quality checks: 13 of 13 passed",
    ]
    assert summary("success", INTERVAL, run(), []).splitlines() == expected
    renamed = run(events="events_in", songs="catalog_in", fact="facts", late="late_matches", checks="verify")
    assert summary("success", INTERVAL, renamed, []).splitlines() == expected


def test_a_failed_run_says_what_failed_and_why():
    note = summary("failed", INTERVAL, run()[:2], ["load_songplays"], not_run=7,
                   errors={"load_songplays": "OperationalError: server closed the connection"})
    assert note.splitlines()[2] == "- Rows written: none (the loads did not run)"
    assert note.splitlines()[-3:] == ["- Quality checks: not run",
                                      "- Failed: load_songplays (7 tasks after it did not run)",
                                      "  - load_songplays: OperationalError: server closed the connection"]
