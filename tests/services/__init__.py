"""Services: the real Airflow services through the REST API and a browser, `make airflow-stop`, the Docker
stack's files."""
