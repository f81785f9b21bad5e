"""SQL text: quoting what goes into it, and rendering the operators' statement templates.

SQL reaches the warehouse in two ways. The pipeline's SQL files, which an operator takes as
parameters (``include/sql/load/songplays.sql``…), are rendered by Airflow with the task context
and carry values as bound parameters (``%(batch_id)s``). The operators' own statement templates
that wrap them (``plugins/sparkify/sql/``: ``modes/upsert.sql``, ``redshift/copy_from_s3.sql``…)
are rendered here, with identifiers that passed :func:`quote_identifier`; both import the dialect
macros of ``include/sql/macros/dialect.sql``, which read ``dialect`` from the template's context.
"""

from __future__ import annotations

import re
import uuid
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    import jinja2

#: ``include/`` beside ``plugins/``: the SQL, JSONPaths and other non-code files.
INCLUDE_DIR = Path(__file__).resolve().parents[3] / "include"
SQL_DIR = INCLUDE_DIR / "sql"
#: The operators' statement templates: ``modes/``, ``audit/``, ``stage/`` (both warehouses),
#: ``postgres/`` and ``redshift/`` (one warehouse only).
TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "sql"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: A template's mark before each statement it names: ``-- name: insert``.
_STATEMENT_NAME = re.compile(r"^[ \t]*-- name: ([a-z_]+)[ \t]*$", re.MULTILINE)


def quote_identifier(name: str) -> str:
    """Quote a table or column name after checking it is a plain lower-case identifier.

    Names come from operator arguments, never from run input, and the check
    makes sure nothing else can slip into SQL text.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise AirflowFailException(f"not a valid SQL identifier: {name!r}")
    return f'"{name}"'


def quote_literal(value: str) -> str:
    """Quote a string constant for statements that take no bound parameters (Redshift COPY)."""
    if "\x00" in value:
        raise AirflowFailException("a SQL string constant cannot contain a NUL character")
    return "'" + value.replace("'", "''") + "'"


def temp_table_name(purpose: str) -> str:
    """A fresh temporary table name, so concurrent sessions never collide."""
    return quote_identifier(f"{purpose}_{uuid.uuid4().hex[:12]}")


@cache
def _template_environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([TEMPLATE_DIR, SQL_DIR]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_statements(template: str, **variables: Any) -> list[str]:
    """Render an operator's statement template (or a pipeline SQL file) and split it into statements."""
    return _split(_template_environment().get_template(template).render(**variables))


def _split(text: str) -> list[str]:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    return [statement for statement in DbApiHook.split_sql_string(text, strip_semicolon=True) if statement]


def render_named(template: str, **variables: Any) -> dict[str, str]:
    """Render a template whose statements are named (``-- name: …`` before each), in their order.

    Callers read results by name, not by position. A name whose statement a Jinja branch left
    out is absent; the marks are comments, so the statements sent are the same as unnamed ones.
    """
    text = _template_environment().get_template(template).render(**variables)
    preamble, *marked = _STATEMENT_NAME.split(text)
    if _split(preamble):
        raise ValueError(f"{template}: a statement before the first '-- name:'")
    named: dict[str, str] = {}
    for name, body in zip(marked[::2], marked[1::2], strict=True):
        statements = _split(body)
        if name in named or len(statements) > 1:
            raise ValueError(f"{template}: '-- name: {name}' must name one statement, once")
        if statements:
            named[name] = statements[0]
    return named
