"""The Sparkify Airflow plugin: registers the DAGs' timetable, without which the scheduler,
DAG processor and API server cannot serialize or load the DAGs, and the listener that writes
each run's summary as its note."""

from airflow.plugins_manager import AirflowPlugin

from sparkify.listeners import run_summary
from sparkify.timetables import LogicalDateIntervalTimetable


class SparkifyPlugin(AirflowPlugin):
    name = "sparkify"
    timetables = [LogicalDateIntervalTimetable]
    listeners = [run_summary]
