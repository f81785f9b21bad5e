"""Every SQL file, and every statement the operators send on Redshift, parsed by sqlglot.

Each file in include/sql is rendered for both warehouses with representative variables, split
into statements as the operators split them, its ``%(name)s`` parameters made ``$n`` as the
driver sends them, and parsed with sqlglot's ``redshift`` or ``postgres`` dialect. The operators
then run against the recording Redshift connection (tests/support/redshift_recording.py) and
every statement they send is parsed the same way.

sqlglot is lenient in two places, handled here statement kind by statement kind, never skipped:

* ``LOCK``: sqlglot has no grammar for it and falls back to an opaque ``Command``. The text is
  checked against each warehouse's LOCK syntax instead (Redshift: ``LOCK [TABLE] name [, ...]``,
  no lock mode; PostgreSQL: an optional ``IN <mode> MODE``). Any other statement that falls back
  to a ``Command`` fails.
* Redshift ``GRANT ASSUMEROLE``: no sqlglot grammar either; matched against its syntax
  (``GRANT ASSUMEROLE ON '<role ARN>' TO <user> FOR COPY``).
* PostgreSQL ``DO`` blocks: the index macro wraps ``CREATE INDEX`` in a ``DO`` block that creates
  it only when missing (PL/pgSQL, which sqlglot does not read). The block's shape is matched and the
  ``CREATE INDEX`` inside it is parsed.
* Redshift ``COPY`` options: sqlglot parses the head (target, columns, source, IAM_ROLE) but reads
  the options as loose ``NAME value`` pairs: a flag without a value (``MANIFEST``) swallows the
  next keyword, and a misspelt option passes. The head is taken from sqlglot's tree; the options
  are checked against the Redshift COPY parameters the operator uses, each with the value it takes.
"""

from __future__ import annotations

import re
from datetime import datetime
from types import SimpleNamespace

import pytest
import redshift_connector.core
import sqlglot
from sqlglot import exp

from sparkify import DataQualityOperator, LoadDimensionOperator, LoadFactOperator, StageToRedshiftOperator
from sparkify.warehouse.sql import TEMPLATE_DIR, render_named, render_statements
from tests.support.paths import SQL_DIR
from tests.support.redshift_recording import HOUR, IAM_ROLE, SOURCE
from tests.support.tasks import run_context, sql_file
from tests.support.warehouse_state import AnsweringConnection, WarehouseState

DIALECTS = ("redshift", "postgres")
#: Every SQL file, the pipeline's and the operators' templates, but the macros, which render to
#: nothing on their own (the Redshift COPY's authorization macro included).
SQL_FILES = sorted(
    str(path.relative_to(folder)) for folder in (SQL_DIR, TEMPLATE_DIR) for path in folder.rglob("*.sql")
    if path.parts[-2] != "macros" and path.name != "authorization.sql"
)
#: Files one warehouse never receives: the operators' templates of the other one (their folder says
#: which), and the local report.
ONLY = {
    **{name: name.split("/")[0] for name in SQL_FILES if name.split("/")[0] in DIALECTS},
    # tools/report.py runs these through psycopg on the local PostgreSQL (= ANY of an array parameter).
    "report/count_rows.sql": "postgres",
    "report/existing_tables.sql": "postgres",
    "report/plays_per_hour.sql": "postgres",
    "report/top_songs.sql": "postgres",
}

#: Representative variables for the templates, in the form the operators pass them (quoted identifiers
#: and literals); each variant switches the optional branches one way.
VARIANTS = [
    {"time_column": '"ts"', "catalog_key": None, "restage": False, "manifest": False, "region": None,
     "version_column": None, "max_errors": 0, "object_key": "'log_data/2018/11/2018-11-01-events.json'",
     "version": "'etag-1'", "time_low": 1540944000000, "time_high": 1541203200000,
     "compression": None},
    {"time_column": None, "catalog_key": '"song_id"', "restage": False, "manifest": True, "region": "'us-west-2'",
     "version_column": '"last_seen_at"', "max_errors": 10, "object_key": None, "time_low": None, "time_high": None,
     "compression": "GZIP"},
    {"time_column": None, "catalog_key": '"song_id"', "restage": True, "manifest": True, "region": "'eu-west-1'",
     "version_column": None, "max_errors": 1, "object_key": None, "time_low": None, "time_high": None,
     "compression": "ZSTD"},
]
COMMON = {
    "table": '"staging_events"',
    "columns": '"artist", "ts", "user_id"',
    "incoming": '"incoming_0123456789ab"',
    "select": "SELECT user_id, first_name, last_name, gender, level, last_seen_at FROM users",
    "key": '"user_id"',
    "interval_column": '"start_time"',
    "s3_uri": "'s3://sparkify-bucket/raw/log_data/2018/11/2018-11-01-events.json'",
    "iam_role": f"'{IAM_ROLE}'",
    "jsonpaths_uri": "'s3://sparkify-bucket/raw/jsonpaths/log_events.json'",
    "access_key_id": None,
    "secret_access_key": None,
    "session_token": None,
    "loader": '"sparkify_loader"',
    "reader": '"sparkify_reader"',
    "schema": '"public"',
    "database": '"dev"',
    "task": SimpleNamespace(conn_id="sparkify_warehouse"),
    "key_parameters": ["key_0", "key_1"],
    # A staging unit (events on Redshift): an hour prefix, its URI, its manifest and records beside it.
    "unit_key": "'log_data/2018/11/01/00/'",
    "unit_length": 23,
    "unit_uri": "'s3://sparkify-bucket/raw/log_data/2018/11/01/00/'",
    "unit_uri_length": 49,
    "manifest_uri": "'s3://sparkify-work/manifests/staging_events/run/log_data_2018_11_01_00-0123456789ab.manifest'",
    "records_uri": "'s3://sparkify-work/manifests/staging_events/run/log_data_2018_11_01_00-0123456789ab.objects.csv'",
}
#: Templates only events use (staging units on Redshift): whatever the variant, they have a time column.
EVENTS_ONLY = {"redshift/forget_unit.sql", "redshift/unit_rows.sql", "redshift/unit_coverage.sql",
               "redshift/unit_records.sql", "redshift/unit_load_errors.sql", "redshift/copy_manifest.sql",
               "redshift/unit_incoming.sql"}

# LOCK syntax per warehouse (sqlglot falls back to a Command for it).
_NAME = r'(?:"[a-z_][a-z0-9_]*"|[a-z_][a-z0-9_]*)'
LOCK_SYNTAX = {
    "redshift": re.compile(rf"LOCK (?:TABLE )?{_NAME}(?:, {_NAME})*", re.IGNORECASE),
    "postgres": re.compile(
        rf"LOCK (?:TABLE )?(?:ONLY )?{_NAME}(?:, {_NAME})*(?: IN (?:ACCESS SHARE|ROW SHARE|ROW EXCLUSIVE|"
        r"SHARE UPDATE EXCLUSIVE|SHARE|SHARE ROW EXCLUSIVE|EXCLUSIVE|ACCESS EXCLUSIVE) MODE)?(?: NOWAIT)?",
        re.IGNORECASE,
    ),
}

# The Redshift COPY parameters the operator may send, and the value each takes (None: a flag).
_STRING = r"'(?:[^']|'')*'"
COPY_OPTIONS = {
    "IAM_ROLE": _STRING,
    "FORMAT AS JSON": _STRING,
    "FORMAT AS CSV": None,
    "TIMEFORMAT": r"'(?:epochmillisecs|epochsecs|auto)'",
    "MANIFEST": None,
    "REGION": r"'[a-z]{2}(?:-[a-z]+)+-\d'",
    "MAXERROR": r"\d+",
    # The file compression options (Redshift reads LZOP too; the operator sends these three).
    "GZIP": None,
    "BZIP2": None,
    "ZSTD": None,
    "COMPUPDATE": r"(?:ON|OFF|TRUE|FALSE|PRESET)",
    "STATUPDATE": r"(?:ON|OFF|TRUE|FALSE)",
}
_COPY_OPTION = re.compile(
    "|".join(rf"(?P<o{i}>{re.escape(name)}){f' (?P<v{i}>{value})' if value else ''}"
             for i, (name, value) in enumerate(COPY_OPTIONS.items()))
)
_COPY_HEAD = re.compile(rf"COPY (?P<table>{_NAME}) \((?P<columns>[^)]*)\) FROM (?P<source>{_STRING}) ")


def as_sent(statement: str) -> str:
    """The statement as the driver sends it: ``%(name)s`` parameters become ``$n``."""
    if re.search(r"%\(\w+\)s", statement):
        return redshift_connector.core.convert_paramstyle("pyformat", statement)[0]
    return statement


def check_copy_options(statement: str) -> list[str]:
    """The options of a Redshift COPY from S3, each known, with a valid value, at most once."""
    text = " ".join(statement.split())
    head = _COPY_HEAD.match(text)
    assert head, f"not a COPY <table> (<columns>) FROM '<uri>': {text[:120]}"
    rest, names = text[head.end():], []
    while rest:
        match = _COPY_OPTION.match(rest)
        assert match, f"unknown or malformed COPY option at: {rest[:60]!r}"
        names.append(next(value for key, value in match.groupdict().items() if key.startswith("o") and value))
        rest = rest[match.end():].lstrip()
    assert len(names) == len(set(names)), f"a COPY option given twice: {names}"
    assert "IAM_ROLE" in names, "COPY from S3 without IAM_ROLE"
    return names


_ASSUMEROLE = re.compile(rf"GRANT ASSUMEROLE ON 'arn:aws:iam::\d{{12}}:role/[\w+=,.@/-]+' TO {_NAME} FOR COPY")
#: The staging rebuild of create_tables.sql: a DROP behind a catalog lookup, in a DO block.
_REBUILD_IF_OLD = re.compile(
    r"DO \$\$ BEGIN IF to_regclass\('staged_objects'\) IS NOT NULL AND NOT EXISTS \( (SELECT .+?) \) THEN "
    r"(DROP TABLE .+?); END IF; END \$\$",
    re.IGNORECASE,
)
#: A column added after a table's first release (dialect.sql's add_column): an ALTER behind a catalog lookup.
_COLUMN_IF_MISSING = re.compile(
    r"DO \$\$ BEGIN IF NOT EXISTS \( (SELECT .+? AND table_name = '(\w+)' AND column_name = '(\w+)') \) THEN "
    r"(ALTER TABLE \2 ADD COLUMN \3 .+?); END IF; END \$\$",
    re.IGNORECASE,
)
_INDEX_IF_MISSING = re.compile(
    r"DO \$\$ BEGIN IF to_regclass\('(\w+)'\) IS NULL THEN (CREATE INDEX \1 ON .+?); END IF; END \$\$",
    re.IGNORECASE,
)


def parse(statement: str, dialect: str) -> exp.Expr:
    """Parse one statement as its warehouse receives it; fail on anything not understood."""
    sent = as_sent(statement)
    if dialect == "postgres" and (block := _INDEX_IF_MISSING.fullmatch(" ".join(sent.split()))):
        tree = parse(block.group(2), dialect)
        assert isinstance(tree, exp.Create) and tree.kind == "INDEX", sent
        return tree
    if dialect == "postgres" and (block := _REBUILD_IF_OLD.fullmatch(" ".join(sent.split()))):
        assert isinstance(parse(block.group(1), dialect), exp.Select), sent
        tree = parse(block.group(2), dialect)
        assert isinstance(tree, exp.Drop), sent
        return tree
    if dialect == "postgres" and (block := _COLUMN_IF_MISSING.fullmatch(" ".join(sent.split()))):
        assert isinstance(parse(block.group(1), dialect), exp.Select), sent
        tree = parse(block.group(4), dialect)
        assert isinstance(tree, exp.Alter), sent
        return tree
    trees = [tree for tree in sqlglot.parse(sent, read=dialect) if tree is not None]
    assert len(trees) == 1, f"expected one statement, got {len(trees)}: {sent[:120]}"
    tree = trees[0]
    if isinstance(tree, exp.Command) and dialect == "redshift" and tree.name.upper() == "GRANT":
        assert _ASSUMEROLE.fullmatch(" ".join(sent.split())), f"not Redshift GRANT ASSUMEROLE syntax: {sent}"
        return tree
    if isinstance(tree, exp.Command):
        assert tree.name.upper() == "LOCK", f"sqlglot could not parse ({dialect}): {sent[:160]}"
        assert LOCK_SYNTAX[dialect].fullmatch(" ".join(sent.split())), f"not {dialect} LOCK syntax: {sent}"
    if isinstance(tree, exp.Copy) and dialect == "redshift" and "FROM STDIN" not in sent.upper():
        check_copy_options(sent)
        credentials = tree.args.get("credentials")
        assert credentials is not None and credentials.args.get("iam_role") is not None, sent
    return tree


def render(template: str, dialect: str, variant: dict) -> list[str]:
    """A file's statements as they reach the warehouse, with the variables operators or Airflow give."""
    conn = SimpleNamespace(get=lambda conn_id: SimpleNamespace(conn_type=dialect))
    if template in EVENTS_ONLY:
        variant = {**variant, "time_column": '"ts"', "time_low": 1540944000000, "time_high": 1541120400000}
    statements = render_statements(template, **COMMON, **variant, dialect=dialect, conn=conn)
    if template == "report/count_rows.sql":  # filled by str.format with a quoted identifier (tools/report.py)
        statements = [statement.format(table='"songplays"') for statement in statements]
    return statements


@pytest.mark.parametrize(("template", "dialect"), [
    (template, dialect) for template in SQL_FILES for dialect in DIALECTS if ONLY.get(template, dialect) == dialect
])
def test_every_sql_file_parses(template, dialect):
    kinds = set()
    for variant in VARIANTS:
        for statement in render(template, dialect, variant):
            kinds.add(type(parse(statement, dialect)).__name__)
    # Only the transaction's PostgreSQL settings are nothing at all on Redshift.
    assert bool(kinds) != ((template, dialect) == ("modes/session.sql", "redshift")), (template, dialect, kinds)


def test_the_files_limited_to_one_warehouse_exist():
    """A renamed file would silently drop out of the exceptions above."""
    assert set(ONLY) <= set(SQL_FILES) and EVENTS_ONLY <= set(SQL_FILES)


def test_every_compression_renders_into_the_manifest_copy():
    """The unit's COPY with each compression it may take (and none): each parses as Redshift COPY with that
    option, after MAXERROR and before MANIFEST."""
    for compression in (None, "GZIP", "BZIP2", "ZSTD"):
        (copy,) = render("redshift/copy_manifest.sql", "redshift", {**VARIANTS[0], "compression": compression})
        options = check_copy_options(as_sent(copy))
        assert options[options.index("MAXERROR") + 1] == (compression or "MANIFEST")
        assert isinstance(parse(copy, "redshift"), exp.Copy)


def _create_tables(dialect: str) -> dict[str, exp.Create]:
    trees = [parse(statement, dialect) for statement in render("create/create_tables.sql", dialect, VARIANTS[0])]
    return {tree.this.this.name: tree for tree in trees if isinstance(tree, exp.Create) and tree.kind == "TABLE"}


def _layout(create: exp.Create) -> dict[str, object]:
    properties = create.args.get("properties")
    found = {}
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.DistStyleProperty):
            found["diststyle"] = prop.this.name.upper()
        elif isinstance(prop, exp.DistKeyProperty):
            found["distkey"] = prop.this.name
        elif isinstance(prop, exp.SortKeyProperty):
            found["sortkey"] = [column.name for column in prop.this]
    return found


def test_redshift_table_layouts_are_valid_and_as_designed():
    tables = _create_tables("redshift")
    for name, create in tables.items():
        layout = _layout(create)
        columns = {column.name for column in create.this.expressions if isinstance(column, exp.ColumnDef)}
        # Every table says how it is distributed (no AUTO by omission) with a valid style.
        assert layout.get("diststyle") in {"EVEN", "KEY", "ALL"}, f"{name}: {layout}"
        assert ("distkey" in layout) == (layout["diststyle"] == "KEY"), f"{name}: DISTKEY goes with DISTSTYLE KEY"
        assert {layout.get("distkey", next(iter(columns)))} | set(layout.get("sortkey", [])) <= columns, name
    star = {name: _layout(tables[name]) for name in ("songplays", "users", "songs", "artists", "time")}
    assert star == {
        "songplays": {"diststyle": "KEY", "distkey": "start_time", "sortkey": ["start_time"]},
        "users": {"diststyle": "ALL", "sortkey": ["user_id"]},
        "songs": {"diststyle": "KEY", "distkey": "song_id", "sortkey": ["song_id"]},
        "artists": {"diststyle": "ALL", "sortkey": ["artist_id"]},
        "time": {"diststyle": "KEY", "distkey": "start_time", "sortkey": ["start_time"]},
    }


def test_postgres_tables_have_no_redshift_layout():
    tables = _create_tables("postgres")
    assert set(tables) >= {"songplays", "users", "songs", "artists", "time", "staging_events", "staging_songs"}
    assert not any(_layout(create) for create in tables.values())


def test_the_checks_catch_what_sqlglot_lets_through():
    """The per-kind checks above are not decoration: each rejects a real mistake."""
    copy = ("COPY \"t\" (\"a\") FROM 's3://b/k' IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS JSON 's3://b/j' "
            "{} COMPUPDATE OFF STATUPDATE OFF")
    assert check_copy_options(copy.format("MANIFEST REGION 'us-west-2'"))[-2:] == ["COMPUPDATE", "STATUPDATE"]
    for mistake in ("MANIFST", "REGION us-west-2", "TIMEFORMAT 'YYYY'", "MAXERROR ten", "MANIFEST MANIFEST"):
        sqlglot.parse_one(copy.format(mistake), read="redshift")  # sqlglot alone accepts each
        with pytest.raises(AssertionError):
            parse(copy.format(mistake), "redshift")
    with pytest.raises(AssertionError):  # PostgreSQL's lock mode is not Redshift syntax
        parse('LOCK TABLE "songs" IN EXCLUSIVE MODE', "redshift")
    with pytest.raises(AssertionError):  # any other statement sqlglot cannot parse
        parse("VACUUM SORT ONLY songplays", "redshift")
    with pytest.raises(sqlglot.errors.ParseError):
        parse("SELECT a FROM (SELECT 1", "redshift")


# The operators, configured as the DAG configures them, on the recording Redshift connection.
EVENTS = {"table": "staging_events", "jsonpaths": "jsonpaths/log_events.json", "time_field": "ts",
          "jsonpaths_uri": f"{SOURCE}/jsonpaths/log_events.json", "manifest_prefix": "s3://sparkify-work/manifests"}
SONGS = {"table": "staging_songs", "s3_key": "song_data/", "jsonpaths": "jsonpaths/song_data.json",
         "jsonpaths_uri": f"{SOURCE}/jsonpaths/song_data.json", "catalog_key": "song_id",
         "manifest_prefix": "s3://sparkify-work/manifests"}
QUALITY = ["quality/null_keys.sql", "quality/duplicate_keys.sql", "quality/songplays_match_staged_events.sql",
           "quality/songplays_have_dimensions.sql"]


#: What the recording connection answers the reads of the catalog's staging task, in order.
STAGED_BEFORE = [("song_data/A/A/A/TRAAAAA128F429D538.json", "an-older-etag", None, None, None, "earlier", None)]


def events_staged_before(state: WarehouseState) -> None:
    """The warehouse the event stagings meet: the day file staged in an older version (one of its events
    misfiled from the hour before, which is loaded: restated), and a day file of October unused for long."""
    state.record("log_data/2018/11/2018-11-01-events.json", "an-older-etag", 1541028600000, 1541036000000)
    state.loaded.append((datetime(2018, 10, 31, 23), datetime(2018, 11, 1)))
    state.expired.append(("log_data/2018/10/2018-10-01-events.json", 1538352000000, 1538438399000))


def operators() -> list[tuple[object, int, list]]:
    """Each operator and mode the DAG uses (with the hours of its run and the rows its reads get)."""
    stage = {"source": SOURCE, "iam_role": IAM_ROLE}
    return [
        (StageToRedshiftOperator(task_id="daily", s3_key="log_data/%Y/%m/%Y-%m-%d-events.json", spill_hours=1,
                                 region="us-west-2", retention_hours="72", **stage, **EVENTS), 1, []),
        (StageToRedshiftOperator(task_id="hourly", s3_key="log_data/%Y/%m/%d/%H/", max_errors=3, **stage, **EVENTS),
         24, []),
        (StageToRedshiftOperator(task_id="songs", **stage, **SONGS), 1, [STAGED_BEFORE]),
        (StageToRedshiftOperator(task_id="restage", restage=True, **stage, **SONGS), 1, []),
        (LoadFactOperator(task_id="fact", table="songplays", sql=sql_file("load/songplays.sql"),
                          parameters={"duration_tolerance": 0.5}), 1, []),
        (LoadFactOperator(task_id="late", table="songplays", mode="update",
                          sql=sql_file("load/songplays_late_songs.sql"),
                          parameters={"duration_tolerance": 0.5, "lookback_hours": "168"}), 1, []),
        (LoadDimensionOperator(task_id="users", table="users", sql=sql_file("load/users.sql"), mode="upsert",
                               key="user_id", version_column="last_seen_at"), 1, []),
        (LoadDimensionOperator(task_id="songs_dim", table="songs", sql=sql_file("load/songs.sql"), mode="upsert",
                               key="song_id"), 1, []),
        (LoadDimensionOperator(task_id="artists", table="artists", sql=sql_file("load/artists.sql"),
                               mode="truncate-insert"), 1, []),
        (LoadDimensionOperator(task_id="time", table="time", sql=sql_file("load/time.sql"), mode="replace-interval",
                               interval_column="start_time"), 1, []),
        (DataQualityOperator(task_id="quality", checks=[{"sql": sql_file(name), "expected": 0} for name in QUALITY]),
         1, [[(f"check {number}", 0)] for number in range(len(QUALITY))]),
    ]


def test_every_statement_the_operators_send_on_redshift_parses(redshift, s3, monkeypatch):
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    state = WarehouseState()
    events_staged_before(state)
    answering = AnsweringConnection(state)
    monkeypatch.setattr(RedshiftSQLHook, "get_conn", lambda self: answering)
    redshift = answering
    # An hour of gzip objects (Firehose), and an hour mixing a plain object with a bzip2 one.
    s3["keys"] += ["raw/log_data/2018/11/01/00/part-0.json.gz", "raw/log_data/2018/11/01/00/part-1.json.gz",
                   "raw/log_data/2018/11/01/05/part-0.json", "raw/log_data/2018/11/01/05/part-1.json.bz2"]
    kinds = set()
    for operator, hours, results in operators():
        redshift.results[:] = results
        before = len(redshift.statements)
        operator.execute(run_context(HOUR, "scheduled__2018-11-01T00:00:00+00:00", hours=hours))
        sent = redshift.statements[before:]
        assert sent, f"{operator.task_id} sent nothing"
        for statement in sent:
            kinds.add(type(parse(statement, "redshift")).__name__)
    # What the pipeline does on Redshift, kind by kind: nothing went unparsed unnoticed.
    assert kinds == {"Analyze", "Command", "Copy", "Create", "Delete", "Drop", "Insert", "Select", "Union", "Update"}
    copies = [s for s in redshift.statements if s.startswith("COPY") and "incoming" in s]
    # The day file's unit, hour 00 (gzip), hour 05 (plain and bzip2: two), the two catalog manifests.
    assert len(copies) == 6
    assert all(check_copy_options(copy)[:3] == ["IAM_ROLE", "FORMAT AS JSON", "TIMEFORMAT"] for copy in copies)
    assert [next((kind for kind in ("GZIP", "BZIP2", "ZSTD") if f" {kind} " in " ".join(copy.split())), None)
            for copy in copies[:4]] == [None, "GZIP", None, "BZIP2"]
    assert any(s.startswith("INSERT INTO restatements") for s in redshift.statements)
    records = [s for s in redshift.statements if s.startswith("COPY staged_objects")]
    assert len(records) == 5 and all(check_copy_options(record) == ["IAM_ROLE", "FORMAT AS CSV", "TIMEFORMAT"]
                                     or check_copy_options(record) == ["IAM_ROLE", "FORMAT AS CSV", "TIMEFORMAT",
                                                                       "REGION"] for record in records)


def source_text(name: str) -> str:
    return next(folder / name for folder in (TEMPLATE_DIR, SQL_DIR) if (folder / name).exists()).read_text()


@pytest.mark.parametrize("template", [name for name in SQL_FILES if "-- name:" in source_text(name)])
@pytest.mark.parametrize("dialect", ["postgres", "redshift"])
def test_named_statements_are_the_statements_sent(template, dialect):
    """The names are comments: reading a template by name sends exactly what reading it whole would."""
    variables = {"dialect": dialect, "table": '"t"', "select": "SELECT 1", "key": '"k"', "version_column": '"v"',
                 "interval_column": '"c"', "incoming": '"i"'}
    named = render_named(template, **variables)
    assert named and list(named.values()) == render_statements(template, **variables)


def test_a_statement_named_twice_or_not_named_is_refused(tmp_path, monkeypatch):
    import jinja2

    from sparkify.warehouse import sql

    templates = {"twice.sql": "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n",
                 "two_under_one.sql": "-- name: a\nSELECT 1;\nSELECT 2;\n",
                 "unnamed.sql": "SELECT 0;\n-- name: a\nSELECT 1;\n"}
    environment = jinja2.Environment(loader=jinja2.DictLoader(templates), undefined=jinja2.StrictUndefined)
    monkeypatch.setattr(sql, "_template_environment", lambda: environment)
    for template in templates:
        with pytest.raises(ValueError, match=template):
            render_named(template)
