# The image of every Airflow service in docker-compose.yaml: the official Airflow image,
# with the Python version and Airflow version the project pins (requirements.txt), plus the
# project's pinned requirements installed against the full lock (constraints.txt). Only what the
# DAGs and plugins need: the test, lint and local-run tools of requirements-dev.txt stay out.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt constraints.txt /opt/airflow/requirements/
RUN pip install --no-cache-dir -r /opt/airflow/requirements/requirements.txt \
        -c /opt/airflow/requirements/constraints.txt

# Owned by the airflow user, so the named volumes mounted here start writable by it.
RUN mkdir -p /opt/airflow/config /opt/airflow/sample
