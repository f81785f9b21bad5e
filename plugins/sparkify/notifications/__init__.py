"""Notifications: alerts through Airflow's notifiers."""
