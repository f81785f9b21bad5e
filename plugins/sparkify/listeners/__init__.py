"""Listeners: what the project does when Airflow says a run ended."""
