"""The Sparkify Airflow plugin: registers the DAGs' timetable, without which the scheduler,
DAG processor and API server cannot serialize or load the DAGs."""

from airflow.plugins_manager import AirflowPlugin

from sparkify.timetables import LogicalDateIntervalTimetable


class SparkifyPlugin(AirflowPlugin):
    name = "sparkify"
    timetables = [LogicalDateIntervalTimetable]
