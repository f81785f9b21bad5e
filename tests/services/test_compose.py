"""docker-compose.yaml and the Dockerfile, checked as far as is honest without a Docker
engine: the official Airflow 3 structure, pinned images matching requirements.txt, an image
without the test tools (requirements-dev.txt), every mounted path present in the project, and
every connection and Variable the DAGs use provided."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.support.paths import REPO

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
CONTAINER_PROJECT = "/opt/airflow"


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the environment, and ``$$`` → ``$``."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return value.replace("$$", "$")


def environment(service: str) -> dict[str, str]:
    return {key: interpolate(str(value)) for key, value in SERVICES[service]["environment"].items()}


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
    assert "airflow db migrate" in script
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
             "mypy", "pre-commit", "matplotlib"}


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
    conn_ids = {
        value
        for dag in dags.values()
        for task in dag.tasks
        for attribute, value in vars(task).items()
        if attribute.endswith("conn_id") and isinstance(value, str) and value
    }
    assert {"sparkify_warehouse", "aws_default"} <= conn_ids
    env = environment("airflow-scheduler")
    for conn_id in conn_ids:
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, f"no AIRFLOW_CONN_ for {conn_id}"


def test_the_warehouse_connection_reaches_the_warehouse_service():
    connection = json.loads(environment("airflow-scheduler")["AIRFLOW_CONN_SPARKIFY_WAREHOUSE"])
    warehouse = environment("warehouse")
    assert connection["conn_type"] == "postgres" and connection["host"] == "warehouse"
    assert connection["port"] == 5432
    assert (connection["login"], connection["password"], connection["schema"]) == (
        warehouse["POSTGRES_USER"], warehouse["POSTGRES_PASSWORD"], warehouse["POSTGRES_DB"]
    )
    metadata = environment("postgres")
    assert environment("airflow-scheduler")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"postgresql+psycopg2://{metadata['POSTGRES_USER']}:{metadata['POSTGRES_PASSWORD']}"
        f"@postgres/{metadata['POSTGRES_DB']}"
    )


def test_every_variable_the_dags_need_is_provided():
    """``var.value.NAME`` has no default and must be set; ``var.value.get('NAME', …)`` may be."""
    source = "\n".join(path.read_text() for path in (REPO / "dags").glob("*.py"))
    required = set(re.findall(r"var\.value\.(?!get\b)(\w+)", source))
    optional = set(re.findall(r"var\.value\.get\(['\"](\w+)['\"]", source))
    assert required == {"sparkify_source"} and "sparkify_log_layout" in optional
    env = environment("airflow-scheduler")
    for name in required:
        assert f"AIRFLOW_VAR_{name.upper()}" in env
    given = {key.removeprefix("AIRFLOW_VAR_").lower() for key in env if key.startswith("AIRFLOW_VAR_")}
    assert given <= required | optional, f"Variables no DAG reads: {given - required - optional}"
