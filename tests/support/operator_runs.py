"""The four operators run as a task of one hour runs them, on the inputs of ``tests.support.inputs``
and the ``sparkify_warehouse`` connection a test sets (a real PostgreSQL, or the recorded Redshift path)."""

from __future__ import annotations

from pathlib import Path

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from tests.support.inputs import DAY_KEY, HOUR
from tests.support.tasks import run_context, sql_file


def stage_events(bucket: Path, run_id="run_1", key=DAY_KEY, start=HOUR, hours=1, time_field="ts", **kwargs) -> dict:
    operator = StageToRedshiftOperator(
        task_id="stage_events", table="staging_events", source=bucket.as_uri(), s3_key=key,
        jsonpaths="jsonpaths/log_events.json", time_field=time_field, **kwargs,
    )
    return operator.execute(run_context(start, run_id, hours=hours))


def stage_songs(bucket: Path, run_id="run_1", **kwargs) -> dict:
    operator = StageToRedshiftOperator(
        task_id="stage_songs", table="staging_songs", source=bucket.as_uri(), s3_key="song_data/",
        jsonpaths="jsonpaths/song_data.json", catalog_key="song_id", **kwargs,
    )
    return operator.execute(run_context(HOUR, run_id))


def load_songplays(run_id="run_1", start=HOUR, restated_table=None) -> dict:
    operator = LoadFactOperator(task_id="load_songplays", table="songplays", sql=sql_file("load/songplays.sql"),
                                parameters={"duration_tolerance": 0.5}, restated_table=restated_table)
    return operator.execute(run_context(start, run_id))


def load_dimension(table: str, mode: str, run_id="run_1", start=HOUR, **kwargs) -> dict:
    if mode == "time":
        mode, kwargs = "replace-interval", {"interval_column": "start_time", **kwargs}
    operator = LoadDimensionOperator(task_id=f"load_{table}", table=table, sql=sql_file(f"load/{table}.sql"),
                                     mode=mode, **kwargs)
    return operator.execute(run_context(start, run_id))


def quality(checks: list[dict], run_id="run_1", start=HOUR) -> dict:
    return DataQualityOperator(task_id="checks", checks=checks).execute(run_context(start, run_id))


SHIPPED_CHECKS = [
    {"name": name, "sql": sql_file(f"quality/{name}.sql"), "expected": 0}
    for name in ("null_keys", "duplicate_keys", "songplays_match_staged_events", "songplays_have_dimensions")
]


def rows(warehouse, query: str) -> list[tuple]:
    return warehouse.execute(query).fetchall()
