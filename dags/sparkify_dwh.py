"""
### Sparkify warehouse

Every hour of app activity goes from the bucket into a star schema. Two DAGs share one pipeline:
`sparkify_dwh` runs it hourly; `sparkify_dwh_daily` (paused, for backfills by date) runs it over
whole UTC days and yields the same rows, paying Airflow's per-task cost once a day.

1. **create_tables**: idempotent DDL (`include/sql/create/create_tables.sql`).
2. **wait_for_events**: a recent hour without event objects waits for them (reschedule mode) up to
   `sparkify_objects_wait_seconds`; then `sparkify_missing_objects` decides: `fail` or `empty`.
3. **stage_events**, **stage_songs**: every new, rewritten or gone object, staged once per version.
   An event object changed since it was staged *restates* the hours runs had loaded from it: this
   run's loads and checks cover them too. An event object set aside as bad fails every run of its
   hours until it changes; a song file set aside is skipped and named. With
   `sparkify_catalog_queue`, song files come from the bucket's notifications.
4. **load_songplays**: the `NextSong` events of those hours become songplays, replacing the hours.
5. **load_users**, **load_songs**, **load_artists**, **load_time** and **match_late_songs**
   (earlier plays whose song only now reached the catalog).
6. **run_quality_checks**: keys present and unique, songplays equal to the staged plays, every
   songplay with its dimensions, over the same hours.

A run owns its data interval `[data_interval_start, data_interval_end)`, whether the schedule, a
backfill or a trigger made it; re-running any run gives the same warehouse. Triggering by hand
offers **Re-stage the whole song catalog**. A run's note becomes its summary, each load's asset
event carries its figures, and alerts (off until `sparkify_alerts` is set) name the run, the hour,
the task and the error.

Configuration: the connection `sparkify_warehouse` and the Variable `sparkify_source`; every other
Variable has a default (README, "Configuration"). More: docs/operations.md, docs/guarantees.md.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypedDict

import jinja2
from airflow.providers.standard.operators.empty import EmptyOperator

# airflow.sdk exports AsyncCallback, DeadlineAlert and DeadlineReference, but its __init__.pyi (3.3.2) omits them.
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, Param, chain  # type: ignore[attr-defined]

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from sparkify.lineage import STAR_SCHEMA_CHECKED, star_asset
from sparkify.notifications.alerts import RunAlert, TaskAlert, late_hour
from sparkify.operators.warehouse_sql import WarehouseSQLOperator
from sparkify.sensors.objects_landed import ObjectsLandedSensor
from sparkify.timetables import LogicalDateIntervalTimetable

WAREHOUSE = "sparkify_warehouse"
SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"


def variable(name: str, default: str) -> str:
    """A template of the Variable ``name`` (``default`` when unset), read when the task runs."""
    return f"{{{{ var.value.get('{name}', '{default}') }}}}"


SOURCE = "{{ var.value.sparkify_source }}"
#: Event objects as strftime patterns, expanded for every hour of a run's interval.
LOG_KEY = (
    "{% if var.value.get('sparkify_log_layout', 'daily') == 'hourly' %}log_data/%Y/%m/%d/%H/"
    "{% else %}log_data/%Y/%m/%Y-%m-%d-events.json{% endif %}"
)
#: Hours either side of a run's interval whose event objects it reads too, so an event filed in
#: the neighbouring day's file still loads into its hour: one extra file per day at midnight.
LOG_SPILL_HOURS = (
    "{{ var.value.get('sparkify_log_spill_hours', "
    "'0' if var.value.get('sparkify_log_layout', 'daily') == 'hourly' else '1') }}"
)


class StagingArguments(TypedDict):
    """The arguments both staging tasks share (templates, rendered when each task runs)."""

    max_errors: str  # bad records a staging task may quarantine before it fails (Redshift's MAXERROR)
    iam_role: str
    region: str
    manifest_prefix: str  # Redshift only: where COPY manifests (and their records CSVs) are written


STAGING: StagingArguments = {
    "max_errors": variable("sparkify_max_errors", "0"),
    "iam_role": variable("sparkify_iam_role", ""),
    "region": variable("sparkify_region", ""),
    "manifest_prefix": variable("sparkify_manifest_prefix", ""),
}
#: Seconds a play's length may differ from the catalog song's duration and still match it.
DURATION_TOLERANCE = 0.5
#: Hours before its interval whose objects a run lists too: one that is new, rewritten or gone since it
#: was staged restates its hours in this run (a day file landing late, a corrected file).
RESTATE_LOOKBACK_HOURS = variable("sparkify_restate_lookback_hours", "24")
#: How far (hours) an event's time may lie from the hours its object's key names; further, or none at
#: all, and it is a bad record: no run of those hours would load it.
PLAUSIBLE_HOURS = variable("sparkify_plausible_hours", "24")
#: Hours a staged event object stays staged once no run lists it any more (0 keeps them all). The
#: default is the late-song look-back: a song arriving late can only match events still staged.
STAGING_RETENTION_HOURS = variable("sparkify_staging_retention_hours", "168")
#: Seconds after its interval ended that a run waits for its event objects, and what it does when
#: there are none then (at once for an hour long past): "fail", or "empty" to load the hour empty.
OBJECTS_WAIT_SECONDS = variable("sparkify_objects_wait_seconds", "3600")
MISSING_OBJECTS = variable("sparkify_missing_objects", "fail")
#: The loads and checks of a run cover its interval and the hours its staging of events restated.
RESTATED = "staging_events"
#: The SQS queue of the bucket's notifications for song_data/: new song files are found from its messages,
#: and the catalog is listed whole only every CATALOG_RECONCILE_HOURS (unset: listed every run).
CATALOG_QUEUE = variable("sparkify_catalog_queue", "")
CATALOG_RECONCILE_HOURS = variable("sparkify_catalog_reconcile_hours", "24")
#: How far back a song arriving late in the catalog still fills in earlier songplays.
LATE_SONG_LOOKBACK_HOURS = variable("sparkify_late_song_lookback_hours", "168")


#: Minutes after an hour ends by which its scheduled run must have succeeded, or a late-hour alert
#: goes out. An environment variable, not a Variable: the deadline is part of the parsed DAG.
FRESHNESS_MINUTES = int(os.environ.get("SPARKIFY_FRESHNESS_MINUTES", "30"))
#: Seconds between a failed try and the next. Read when the DAG is parsed, like the freshness: the
#: Celery service tests shorten it to see a task retried on another worker within minutes.
RETRY_DELAY_SECONDS = int(os.environ.get("SPARKIFY_RETRY_DELAY_SECONDS", "300"))


def trigger_params() -> dict[str, Param]:
    """The trigger form's fields (one set per DAG); the defaults are what scheduled runs use."""
    return {
        "full_restage_songs": Param(
            False, type="boolean", title="Re-stage the whole song catalog",
            description="List the whole catalog, forget which song files were staged and read them all again "
            "(slow on a big catalog): for a catalog whose files were replaced in place.",
        ),
    }


default_args = {
    "owner": "sparkify",
    "depends_on_past": False,
    "retries": 3,
    "retry_delay": timedelta(seconds=RETRY_DELAY_SECONDS),
    # A warehouse that stops answering mid-statement fails the attempt instead of holding it for hours
    # (connecting is bounded by the connection's connect_timeout). A day of the public data stages in
    # seconds; an hour of a busy app in minutes.
    "execution_timeout": timedelta(hours=1),
    "email_on_retry": False,
    # Off until the Variable sparkify_alerts names a notifier (plugins/sparkify/notifications/alerts.py).
    "on_failure_callback": [TaskAlert("failed")],
    "on_retry_callback": [TaskAlert("up for retry")],
    # The warehouse of the staging, load and check operators (create_tables names its conn_id).
    "redshift_conn_id": WAREHOUSE,
}


def build_pipeline() -> None:
    """The tasks and their order, inside the DAG being defined."""
    begin = EmptyOperator(task_id="begin")

    # SQLExecuteQueryOperator, which also reaches Redshift through the Data API (one batch).
    create_tables = WarehouseSQLOperator(
        task_id="create_tables", conn_id=WAREHOUSE, sql="create/create_tables.sql", split_statements=True,
    )

    wait_for_events = ObjectsLandedSensor(
        task_id="wait_for_events",
        source=SOURCE,
        s3_key=LOG_KEY,
        wait_seconds=OBJECTS_WAIT_SECONDS,
        policy=MISSING_OBJECTS,
        poke_interval=timedelta(minutes=5), timeout=timedelta(days=1), retries=0,
    )

    stage_events = StageToRedshiftOperator(
        task_id="stage_events",
        table="staging_events",
        source=SOURCE,
        s3_key=LOG_KEY,
        time_field="ts",
        spill_hours=LOG_SPILL_HOURS,
        lookback_hours=RESTATE_LOOKBACK_HOURS,
        plausible_hours=PLAUSIBLE_HOURS,
        retention_hours=STAGING_RETENTION_HOURS,
        jsonpaths="jsonpaths/log_events.json",
        jsonpaths_uri=SOURCE + "/jsonpaths/log_events.json",
        **STAGING,
    )

    stage_songs = StageToRedshiftOperator(
        task_id="stage_songs",
        table="staging_songs",
        source=SOURCE,
        s3_key="song_data/",
        jsonpaths="jsonpaths/song_data.json",
        jsonpaths_uri=SOURCE + "/jsonpaths/song_data.json",
        catalog_key="song_id",
        restage="{{ params.full_restage_songs }}",
        catalog_queue=CATALOG_QUEUE,
        reconcile_hours=CATALOG_RECONCILE_HOURS,
        **STAGING,
    )

    load_songplays = LoadFactOperator(
        task_id="load_songplays", table="songplays", sql="load/songplays.sql",
        parameters={"duration_tolerance": DURATION_TOLERANCE},
        restated_table=RESTATED,
        outlets=[star_asset("songplays")],
    )

    match_late_songs = LoadFactOperator(
        task_id="match_late_songs", table="songplays", mode="update", sql="load/songplays_late_songs.sql",
        parameters={"duration_tolerance": DURATION_TOLERANCE, "lookback_hours": LATE_SONG_LOOKBACK_HOURS},
        restated_table=RESTATED,
        outlets=[star_asset("songplays")],
    )

    load_dimensions = [
        LoadDimensionOperator(
            task_id="load_users", table="users", sql="load/users.sql", mode="upsert", key="user_id",
            version_column="last_seen_at", restated_table=RESTATED, outlets=[star_asset("users")],
        ),
        LoadDimensionOperator(
            task_id="load_songs", table="songs", sql="load/songs.sql", mode="upsert", key="song_id",
            outlets=[star_asset("songs")],
        ),
        LoadDimensionOperator(
            task_id="load_artists", table="artists", sql="load/artists.sql", mode="upsert", key="artist_id",
            outlets=[star_asset("artists")],
        ),
        LoadDimensionOperator(
            task_id="load_time", table="time", sql="load/time.sql", mode="replace-interval",
            interval_column="start_time", restated_table=RESTATED, outlets=[star_asset("time")],
        ),
    ]

    run_quality_checks = DataQualityOperator(
        task_id="run_quality_checks",
        checks=[
            {"name": "no NULL keys", "sql": "quality/null_keys.sql", "expected": 0},
            {"name": "no duplicate keys", "sql": "quality/duplicate_keys.sql", "expected": 0},
            {"name": "songplays = staged plays", "sql": "quality/songplays_match_staged_events.sql", "expected": 0},
            {"name": "songplays have dimensions", "sql": "quality/songplays_have_dimensions.sql", "expected": 0},
        ],
        restated_table=RESTATED,
        outlets=[STAR_SCHEMA_CHECKED],
    )

    end = EmptyOperator(task_id="end")

    chain(begin, create_tables, [wait_for_events, stage_songs])
    chain(wait_for_events, stage_events)
    chain([stage_events, stage_songs], load_songplays, [*load_dimensions, match_late_songs], run_quality_checks, end)


def pipeline_dag(dag_id: str, description: str, schedule: str, **kwargs: object) -> DAG:
    """One of the two DAGs of the pipeline: what they share, and what sets each apart."""
    return DAG(
        dag_id=dag_id,
        description=description,
        doc_md=__doc__,
        schedule=LogicalDateIntervalTimetable(schedule, timezone="UTC"),
        start_date=datetime(2018, 11, 1),
        catchup=False,
        default_args=default_args,
        on_failure_callback=RunAlert(),
        params=trigger_params(),
        template_searchpath=[str(SQL_DIR)],
        # A name a template does not know fails the task instead of rendering as nothing.
        template_undefined=jinja2.StrictUndefined,
        **kwargs,  # type: ignore[arg-type]
    )


with pipeline_dag(
    "sparkify_dwh",
    "Hourly: app events and song catalog from the bucket into the star schema",
    "@hourly",
    # Hours are independent and every write locks what it touches, so a backfill
    # may run several at once; four keeps a small warehouse responsive.
    max_active_runs=4,
    # Freshness: a run's logical date is its hour's start, so the hour is due an hour and
    # FRESHNESS_MINUTES later. Airflow drops the deadline when the run succeeds in time.
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(hours=1, minutes=FRESHNESS_MINUTES),
        callback=AsyncCallback(late_hour, kwargs={"grace_minutes": FRESHNESS_MINUTES}),
        name="hour loaded",
    ),
    tags=["sparkify", "warehouse"],
):
    build_pipeline()

with pipeline_dag(
    "sparkify_dwh_daily",
    "The same pipeline over whole UTC days: for backfills by date",
    "@daily",
    # Backfills only: the hourly DAG keeps the warehouse current. A day's run
    # pays Airflow's per-task cost once instead of 24 times, and gives the same rows.
    is_paused_upon_creation=True,
    max_active_runs=2,
    tags=["sparkify", "warehouse", "backfill"],
):
    build_pipeline()
