"""SQL text: quoting what goes into it, and the one renderer of SQL files outside Airflow's.

The pipeline's SQL files an operator takes as parameters (``include/sql/load/songplays.sql``…) are
rendered by Airflow with the task context; everything else (the operators' statement templates in
``plugins/sparkify/sql/``, and any file rendered outside a task) by :func:`render_text`, with
``StrictUndefined`` as in the DAGs. Which file, which renderer, which variables: docs/development.md,
"Rendering SQL".
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


def render_text(template: str, **variables: Any) -> str:
    """Render a SQL file of either tree (``plugins/sparkify/sql`` first, then ``include/sql``) with the given
    variables: a name the file uses and is not given fails (StrictUndefined), as in the DAGs."""
    return _template_environment().get_template(template).render(**variables)


def render_statements(template: str, **variables: Any) -> list[str]:
    """Render an operator's statement template (or a pipeline SQL file) and split it into statements."""
    return _split(render_text(template, **variables))


def _split(text: str) -> list[str]:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    return [statement for statement in DbApiHook.split_sql_string(text, strip_semicolon=True) if statement]


def render_named(template: str, **variables: Any) -> dict[str, str]:
    """Render a template whose statements are named (``-- name: …`` before each), in their order.

    Callers read results by name, not by position. A name whose statement a Jinja branch left
    out is absent; the marks are comments, so the statements sent are the same as unnamed ones.
    """
    text = render_text(template, **variables)
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
