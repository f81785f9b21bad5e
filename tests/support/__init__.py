"""What the test layers share besides fixtures: paths, inputs, the recording Redshift connection, the
independent reference, the backfill and DAG runners, the Airflow services and the SMTP inbox.
Fixtures live in the ``conftest.py`` files; nothing imports those."""
