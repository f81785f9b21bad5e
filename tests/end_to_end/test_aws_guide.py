"""The AWS path of docs/redshift.md, run: the guide's commands, as written, against a local AWS
(moto in server mode on 127.0.0.1, through ``AWS_ENDPOINT_URL`` and the AWS CLI that
requirements-dev.txt pins), then its ``make backfill`` of the first hour with the recording
warehouse (tests/support/redshift_backfill.py: ``tools/backfill.py`` unchanged, its Redshift driver
recording), S3 on moto and AWS credentials from the environment only (no ``aws_default``).

What the guide built is read back from moto (bucket, data, JSONPaths, roles and policies, cluster,
queue and notifications, SES identities), and every statement the first hour would send Redshift is
checked against it: each object a COPY reads exists and is readable by the role the guide made,
which COPY assumes; the manifests are written where Airflow's policy lets it write, and name
objects that exist. Blocks marked ``# Not checked here`` are the ones moto cannot answer (Redshift
Serverless, the Data API's queries, SES SMTP credentials) and the load itself, run here as said.

Also: the forms a warehouse may take (``tools/airflow_env.py``), and ``make backfill`` refusing a
Redshift warehouse without what it needs, in seconds.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import boto3
import pytest
import sqlglot

from tests.support.paths import REPO
from tools.airflow_env import WarehouseError, connection_json, masked, postgres_conninfo, warehouse_connection

GUIDE = REPO / "docs" / "redshift.md"
NOT_CHECKED = "# Not checked here"
#: A region the AWS CLI v1 does not pin SQS's endpoint for (its customization sends SQS calls of the
#: regions it lists to their legacy host, whatever AWS_ENDPOINT_URL says); moto serves any region.
REGION = "eu-central-2"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: Stands in for `make backfill` in the guide's shell: the same arguments, the recording warehouse.
MAKE_BACKFILL = r"""
make() {
    if [ "$1" != backfill ]; then command make "$@"; return; fi
    shift
    local from= to= source= warehouse=
    for argument; do
        case "$argument" in
            FROM=*) from=${argument#FROM=} ;; TO=*) to=${argument#TO=} ;;
            SOURCE=*) source=${argument#SOURCE=} ;; WAREHOUSE=*) warehouse=${argument#WAREHOUSE=} ;;
            *) echo "make backfill: unexpected $argument" >&2; return 2 ;;
        esac
    done
    python -m tests.support.redshift_backfill --from "$from" --to "$to" --source "$source" --warehouse "$warehouse"
}
"""


def guide_blocks() -> list[str]:
    """The ``bash`` blocks of the guide's section, in order."""
    text = GUIDE.read_text()
    section = text[text.index("## From an empty AWS account"):text.index("\n## ", text.index("## From an empty"))]
    return re.findall(r"```bash\n(.*?)```", section, re.DOTALL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def aws_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def aws_environ(endpoint: str, home: Path, recording: Path) -> dict[str, str]:
    """A shell of a user with AWS credentials in the environment and nothing configured for Airflow."""
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_", "AWS_"))}
    return {
        **environ, **CREDENTIALS,
        "PATH": f"{Path(sys.executable).parent}:{environ['PATH']}",
        "HOME": str(home),  # no ~/.aws of the machine's
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "SPARKIFY_DB_PASSWORD": "Guide-Passw0rd/with:odd@chars",
        "SPARKIFY_RECORDING": str(recording),
    }


def client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def guide_run(aws_endpoint, tmp_path_factory) -> dict:
    """The guide's checked blocks, and its `make backfill` with the recording warehouse, in one shell;
    what that shell ended with (its environment) and printed, and the statements recorded."""
    tmp = tmp_path_factory.mktemp("guide")
    blocks = guide_blocks()
    checked = [block for block in blocks if not block.startswith(NOT_CHECKED)]
    (backfill,) = [block for block in blocks if block.startswith(NOT_CHECKED) and "make backfill" in block]
    script = "\n".join(["set -euo pipefail", *checked, MAKE_BACKFILL, backfill, f'env -0 > "{tmp}/env"'])
    recording = tmp / "statements.json"
    result = subprocess.run(["bash", "-c", script], cwd=REPO, env=aws_environ(aws_endpoint, tmp, recording),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    environ = dict(item.split("=", 1) for item in (tmp / "env").read_text().split("\0") if "=" in item)
    return {"stdout": result.stdout, "env": environ, **json.loads(recording.read_text())}


def test_the_guide_marks_only_what_moto_cannot_answer_or_needs_redshift():
    skipped = [block.splitlines()[0] for block in guide_blocks() if block.startswith(NOT_CHECKED)]
    assert len(skipped) == 4, skipped
    reasons = " ".join(skipped)
    for what in ("Redshift Serverless", "needs Redshift", "Data API", "SMTP"):
        assert what in reasons, (what, skipped)
    assert len(guide_blocks()) >= 12


def test_the_guide_builds_the_bucket_data_and_jsonpaths(guide_run, aws_endpoint):
    s3, bucket = client("s3", aws_endpoint), guide_run["env"]["SPARKIFY_BUCKET"]
    assert bucket == f"sparkify-123456789012-{REGION}"
    assert guide_run["env"]["SPARKIFY_SOURCE"] == f"s3://{bucket}/raw"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()), block
    keys = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="raw/")
            for item in page.get("Contents", [])}
    sample = REPO / ".local" / "sample"
    assert {f"raw/{path.relative_to(sample).as_posix()}" for path in sample.rglob("*.json")} <= keys
    for name in ("log_events.json", "song_data.json"):
        uploaded = s3.get_object(Bucket=bucket, Key=f"raw/jsonpaths/{name}")["Body"].read()
        assert uploaded == (REPO / "include" / "jsonpaths" / name).read_bytes()


def test_the_guide_makes_the_copy_role_airflows_identity_and_the_cluster(guide_run, aws_endpoint):
    iam, env = client("iam", aws_endpoint), guide_run["env"]
    role = iam.get_role(RoleName="sparkify-copy")["Role"]
    assert role["Arn"] == env["SPARKIFY_COPY_ROLE_ARN"] == env["AIRFLOW_VAR_SPARKIFY_IAM_ROLE"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "redshift.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    attached = iam.list_attached_user_policies(UserName="sparkify-airflow")["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == [env["SPARKIFY_AIRFLOW_POLICY_ARN"]]
    assert iam.list_access_keys(UserName="sparkify-airflow")["AccessKeyMetadata"]

    (cluster,) = client("redshift", aws_endpoint).describe_clusters(ClusterIdentifier="sparkify")["Clusters"]
    assert [item["IamRoleArn"] for item in cluster["IamRoles"]] == [role["Arn"]]
    assert not cluster["PubliclyAccessible"]
    connection = warehouse_connection(env["SPARKIFY_WAREHOUSE"])
    assert (connection["conn_type"], connection["host"], connection["port"], connection["schema"]) == (
        "redshift", cluster["Endpoint"]["Address"], 5439, "dev")
    assert (connection["login"], connection["password"]) == ("awsuser", env["SPARKIFY_DB_PASSWORD"])
    assert env["AIRFLOW_VAR_SPARKIFY_MANIFEST_PREFIX"] == f"s3://{env['SPARKIFY_BUCKET']}/manifests"


def test_the_guide_announces_new_song_files_on_the_catalog_queue(guide_run, aws_endpoint):
    s3, sqs, env = client("s3", aws_endpoint), client("sqs", aws_endpoint), guide_run["env"]
    bucket, queue = env["SPARKIFY_BUCKET"], env["SPARKIFY_CATALOG_QUEUE"]
    (configuration,) = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert configuration["QueueArn"].endswith(":sparkify-catalog")
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket}"
    sqs.purge_queue(QueueUrl=queue)
    s3.put_object(Bucket=bucket, Key="raw/log_data/2018/11/ignored.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="raw/song_data/Z/Z/Z/TRZZZ000.json", Body=b"{}")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=5).get("Messages", [])
    keys = [unquote(record["s3"]["object"]["key"]) for message in messages
            for record in json.loads(message["Body"]).get("Records", [])]
    s3.delete_object(Bucket=bucket, Key="raw/song_data/Z/Z/Z/TRZZZ000.json")
    s3.delete_object(Bucket=bucket, Key="raw/log_data/2018/11/ignored.json")
    assert keys == ["raw/song_data/Z/Z/Z/TRZZZ000.json"], messages


def test_the_guide_verifies_the_alert_senders(guide_run, aws_endpoint):
    identities = client("ses", aws_endpoint).list_identities()["Identities"]
    assert {"airflow@example.com", "oncall@example.com"} <= set(identities)
    alerts = json.loads(guide_run["env"]["AIRFLOW_VAR_SPARKIFY_ALERTS"])
    assert {alerts["to"], alerts["from_email"]} <= set(identities)


def s3_uris(statement: str) -> list[str]:
    return re.findall(r"'(s3://[^']+)'", statement)


def listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def policy_allows(policy: dict, action: str, uri: str) -> bool:
    """Whether an identity policy allows ``action`` on the object ``s3://bucket/key`` (Allow statements,
    resources matched with IAM's ``*`` wildcard)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return any(statement["Effect"] == "Allow" and action in listed(statement["Action"])
               and any(fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/{key}", resource)
                       for resource in listed(statement["Resource"]))
               for statement in policy["Statement"])


def test_the_first_hour_sends_redshift_copies_of_what_the_guide_uploaded(guide_run, aws_endpoint):
    assert re.search(r"^1 of 1 runs succeeded", guide_run["stdout"], re.MULTILINE), guide_run["stdout"]
    statements, env = guide_run["statements"], guide_run["env"]
    bucket, role = env["SPARKIFY_BUCKET"], env["SPARKIFY_COPY_ROLE_ARN"]
    assert statements[0] == "SELECT 1"  # make backfill's check, before any run
    assert guide_run["rollbacks"] == 0 and guide_run["commits"] >= 10
    copies = [statement for statement in statements if statement.lstrip().startswith("COPY")]
    # The day file is a staging unit: one COPY of its manifest, under the prefix the guide set.
    events = [copy for copy in copies if "/manifests/staging_events/" in copy and "FORMAT AS JSON" in copy]
    assert len(events) == 1 and f"FORMAT AS JSON 's3://{bucket}/raw/jsonpaths/log_events.json'" in events[0]
    assert any(f"FORMAT AS JSON 's3://{bucket}/raw/jsonpaths/song_data.json'" in copy for copy in copies)
    s3, iam = client("s3", aws_endpoint), client("iam", aws_endpoint)
    role_policy = iam.get_role_policy(RoleName="sparkify-copy", PolicyName="read-the-source")["PolicyDocument"]
    airflow_policy = iam.get_policy_version(PolicyArn=env["SPARKIFY_AIRFLOW_POLICY_ARN"], VersionId="v1")
    written = {f"s3://{bucket}/{item['Key']}" for item in s3.list_objects_v2(Bucket=bucket, Prefix="manifests/")
               .get("Contents", [])}
    assert written, "no manifest written"
    for copy in copies:
        assert f"IAM_ROLE '{role}'" in copy and "ACCESS_KEY_ID" not in copy, copy
        for uri in s3_uris(copy):
            key = uri.removeprefix(f"s3://{bucket}/")
            s3.head_object(Bucket=bucket, Key=key)  # COPY finds it
            assert policy_allows(role_policy, "s3:GetObject", uri), f"the COPY role may not read {uri}"
    # Airflow wrote the manifests where its policy lets it write (the day file's and the song files'), and
    # they name objects that exist, which the COPY role may read.
    document = airflow_policy["PolicyVersion"]["Document"]
    document = json.loads(unquote(document)) if isinstance(document, str) else document
    assert all(policy_allows(document, "s3:PutObject", uri) for uri in written), written
    manifests = [uri for uri in written if uri.endswith(".manifest")]
    assert len(manifests) == 2 and sum("/staging_events/" in uri for uri in manifests) == 1, manifests
    for manifest in manifests:
        entries = json.loads(s3.get_object(Bucket=bucket, Key=manifest.removeprefix(f"s3://{bucket}/"))["Body"].read())
        assert entries["entries"], manifest
        for entry in entries["entries"]:
            s3.head_object(Bucket=bucket, Key=entry["url"].removeprefix(f"s3://{bucket}/"))
            assert policy_allows(role_policy, "s3:GetObject", entry["url"]), f"the COPY role may not read {entry}"


def test_the_first_hour_on_the_serverless_workgroup_goes_through_the_data_api(guide_run, tmp_path):
    """The guide's other warehouse, the Serverless workgroup through the Data API (its connection
    JSON as the guide builds it), with the same Variables and source: the same hour, in batches."""
    (block,) = [block for block in guide_blocks() if "create-workgroup" in block]
    export = re.search(r"^export SPARKIFY_WAREHOUSE=.*", block, re.MULTILINE | re.DOTALL).group(0)
    env = guide_run["env"]
    warehouse = subprocess.run(["bash", "-c", f'{export}\nprintf %s "$SPARKIFY_WAREHOUSE"'], env=env,
                               capture_output=True, text=True, check=True).stdout
    assert warehouse_connection(warehouse)["extra"] == {
        "use_data_api": True, "workgroup_name": "sparkify", "region_name": REGION}
    recording = tmp_path / "statements.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.redshift_backfill", "--from", "2018-11-01T00:00", "--to",
         "2018-11-01T00:00", "--source", env["SPARKIFY_SOURCE"], "--warehouse", warehouse],
        cwd=REPO, env={**env, "SPARKIFY_RECORDING": str(recording)}, capture_output=True, text=True, timeout=600,
    )
    assert re.search(r"^1 of 1 runs succeeded", result.stdout, re.MULTILINE), result.stdout + result.stderr[-3000:]
    recorded = json.loads(recording.read_text())
    assert recorded["statements"] == []  # nothing went to a driver: create_tables too is a batch
    assert recorded["queries"][0]["Sql"] == "SELECT 1"
    requests = recorded["queries"] + recorded["batches"]
    assert {(request["WorkgroupName"], request["Database"]) for request in requests} == {("sparkify", "dev")}
    assert all(len(batch["Sqls"]) <= 40 for batch in recorded["batches"])
    copies = [sql for batch in recorded["batches"] for sql in batch["Sqls"] if sql.lstrip().startswith("COPY")]
    assert copies and all(f"IAM_ROLE '{env['SPARKIFY_COPY_ROLE_ARN']}'" in copy for copy in copies)
    # The day file's unit, by its manifest, in a batch named for it (found again after a worker restart).
    named = [batch for batch in recorded["batches"] if batch.get("StatementName")]
    assert [batch["StatementName"].split(":")[2] for batch in named] == ["log_data/2018/11/2018-11-01-events.json"]
    assert any("/manifests/staging_events/" in copy and "MANIFEST" in copy for copy in named[0]["Sqls"]
               if copy.lstrip().startswith("COPY"))
    assert any("CREATE TABLE IF NOT EXISTS songplays" in " ".join(sql.split()) for batch in recorded["batches"]
               for sql in batch["Sqls"])


def test_the_guides_check_query_is_redshift_sql():
    (block,) = [block for block in guide_blocks() if "redshift-data execute-statement" in block]
    query = re.search(r'--sql "(.*?)"\)', block, re.DOTALL).group(1)
    parsed = sqlglot.parse_one(query, read="redshift")
    assert parsed.find(sqlglot.exp.Table).name == "songplays"


@pytest.mark.parametrize(("given", "expected"), [
    ("postgresql://loader:secret@db.example.com:5432/sparkify?sslmode=require",
     {"conn_type": "postgres", "host": "db.example.com", "port": 5432, "login": "loader", "password": "secret",
      "schema": "sparkify", "extra": {"connect_timeout": "10", "sslmode": "require"}}),
    ("postgresql://postgres:@/sparkify?host=/run/pg",
     {"conn_type": "postgres", "host": "/run/pg", "login": "postgres", "schema": "sparkify",
      "extra": {"connect_timeout": "10"}}),
    ("redshift://awsuser:p%40ss%2Fword@sparkify.abc.eu-central-2.redshift.amazonaws.com/dev",
     {"conn_type": "redshift", "host": "sparkify.abc.eu-central-2.redshift.amazonaws.com", "port": 5439,
      "login": "awsuser", "password": "p@ss/word", "schema": "dev"}),
    ("redshift://loader@sparkify.abc.eu-central-2.redshift.amazonaws.com:5440/dev?iam=true&cluster_identifier=sparkify",
     {"conn_type": "redshift", "host": "sparkify.abc.eu-central-2.redshift.amazonaws.com", "port": 5440,
      "login": "loader", "schema": "dev", "extra": {"iam": True, "cluster_identifier": "sparkify"}}),
    ('{"conn_type": "redshift", "schema": "dev", "extra": {"use_data_api": true, "workgroup_name": "sparkify"}}',
     {"conn_type": "redshift", "schema": "dev", "extra": {"use_data_api": True, "workgroup_name": "sparkify"}}),
    ('{"conn_type": "postgres", "host": "db", "schema": "dwh", "extra": {"connect_timeout": "3"}}',
     {"conn_type": "postgres", "host": "db", "schema": "dwh", "extra": {"connect_timeout": "3"}}),
], ids=["postgresql", "socket", "redshift-password", "redshift-iam", "data-api-json", "postgres-json"])
def test_a_warehouse_is_a_uri_or_connection_json(given, expected):
    assert warehouse_connection(given) == expected
    assert json.loads(connection_json(given)) == expected
    if expected.get("password"):
        assert expected["password"] not in masked(given) and "***" in masked(given)


def test_a_postgres_connection_gives_back_its_libpq_uri():
    from psycopg.conninfo import conninfo_to_dict

    given = "postgresql://loader:secret@db.example.com:5432/sparkify?sslmode=require"
    assert conninfo_to_dict(postgres_conninfo(warehouse_connection(given))) == {
        **conninfo_to_dict(given), "connect_timeout": "10"}


@pytest.mark.parametrize("given", ["mysql://x@y/z", '{"conn_type": "mysql"}', "{not json", "redshift:///dev"])
def test_a_warehouse_the_dag_cannot_use_is_refused(given):
    with pytest.raises(WarehouseError):
        warehouse_connection(given)


REDSHIFT = json.dumps({"conn_type": "redshift", "host": "sparkify.abc.eu-central-2.redshift.amazonaws.com",
                       "port": 5439, "login": "awsuser", "password": "never-printed", "schema": "dev"})


@pytest.mark.parametrize(("source", "variables", "refusal"), [
    ("s3://sparkify-nowhere/raw", {}, "sparkify_manifest_prefix must be an s3:// prefix"),
    ("file:///tmp", {"AIRFLOW_VAR_SPARKIFY_MANIFEST_PREFIX": "s3://b/m"}, "Redshift's COPY reads from S3"),
], ids=["no-manifest-prefix", "local-source"])
def test_make_backfill_refuses_a_redshift_warehouse_without_what_it_needs(tmp_path, aws_endpoint, source, variables,
                                                                         refusal):
    environ = {**aws_environ(aws_endpoint, tmp_path, tmp_path / "statements.json"), **variables}
    if source.startswith("s3://"):
        client("s3", aws_endpoint).create_bucket(Bucket="sparkify-nowhere",
                                                 CreateBucketConfiguration={"LocationConstraint": REGION})
        client("s3", aws_endpoint).put_object(Bucket="sparkify-nowhere", Key="raw/log_data/x.json", Body=b"{}")
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.redshift_backfill", "--from", "2018-11-01T00:00", "--to",
         "2018-11-01T00:00", "--source", source, "--warehouse", REDSHIFT],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0 and refusal in result.stderr, result.stdout[-2000:] + result.stderr[-3000:]
    assert "never-printed" not in result.stdout + result.stderr
    statements = json.loads((tmp_path / "statements.json").read_text())["statements"] if (
        tmp_path / "statements.json").exists() else []
    assert statements == []  # refused before anything reached the warehouse


def test_make_backfill_stops_at_once_when_redshift_does_not_answer(tmp_path, aws_endpoint):
    """The real driver (no recording) against a port nothing listens on: the check before the first run
    fails, naming the cause, the password nowhere."""
    s3 = client("s3", aws_endpoint)
    s3.create_bucket(Bucket="sparkify-closed", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="sparkify-closed", Key="raw/log_data/2018/11/2018-11-01-events.json", Body=b"{}")
    warehouse = f"redshift://awsuser:never-printed@127.0.0.1:{free_port()}/dev"
    environ = {**aws_environ(aws_endpoint, tmp_path, tmp_path / "unused.json"),
               "AIRFLOW_VAR_SPARKIFY_MANIFEST_PREFIX": "s3://sparkify-closed/manifests"}
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "backfill.py"), "--from", "2018-11-01T00:00", "--to",
         "2018-11-01T00:00", "--source", "s3://sparkify-closed/raw", "--warehouse", warehouse],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0, result.stdout[-2000:]
    assert "the Redshift warehouse does not answer SELECT 1" in result.stderr, result.stderr[-3000:]
    assert "awsuser:***@127.0.0.1" in result.stdout and "never-printed" not in result.stdout + result.stderr
    assert "note: no Variable sparkify_iam_role" in result.stdout
    assert not re.search(r"^\[1/1\]", result.stdout, re.MULTILINE)
