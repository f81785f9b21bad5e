"""sqlfluff on include/sql, as `make lint` runs it: ``python tools/lint_sql.py lint include/sql``.

The SQL files are rendered twice before they run: Jinja first (by Airflow or by
the operators), then the driver binds the ``%(name)s`` parameters. sqlfluff's
jinja templater does the first step only, and its lexer cannot read a
``%(name)s``. This wrapper registers the jinja templater extended by the
second step: each placeholder becomes a same-length string constant in a
templated (never fixed) slice, so the statement around it is parsed and linted
as the warehouse receives it. The settings, sample variables included, are in
``.sqlfluff``; any sqlfluff command line works (``lint``, ``fix``, ``parse``).
"""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace
from typing import Any

from sqlfluff.cli.commands import cli
from sqlfluff.core.plugin import hookimpl
from sqlfluff.core.plugin.host import get_plugin_manager
from sqlfluff.core.templaters.base import RawFileSlice, TemplatedFileSlice
from sqlfluff.core.templaters.jinja import JinjaTemplater

#: A bound parameter, ``%(name)s``, or a ``{name}`` that str.format fills with a quoted identifier.
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def _bind(placeholder: str) -> str:
    """The same-length text a placeholder stands for: ``%(batch_id)s`` → ``'(batch_id)'`` (a value),
    ``{table}`` → ``"table"`` (an identifier)."""
    if placeholder.startswith("{"):
        return '"' + placeholder[1:-1] + '"'
    return "'" + placeholder[1:-1] + "'"


def _split(text: str, start: int) -> list[tuple[str, int, int]]:
    """Pieces of a literal slice: (kind, start, end) with the placeholders made templated."""
    pieces, position = [], 0
    for match in PLACEHOLDER.finditer(text):
        if match.start() > position:
            pieces.append(("literal", start + position, start + match.start()))
        pieces.append(("templated", start + match.start(), start + match.end()))
        position = match.end()
    if position < len(text) or not pieces:
        pieces.append(("literal", start + position, start + len(text)))
    return pieces


class BoundParameterJinjaTemplater(JinjaTemplater):
    """The jinja templater, then the driver's parameter binding (see the module docstring)."""

    name = "jinja"

    def get_context(self, fname: str | None, config: Any) -> dict[str, Any]:
        """The sample variables of .sqlfluff, plus the Airflow context objects create_tables reads."""
        context = super().get_context(fname, config)
        dialect = context.get("dialect", "redshift")
        context["conn"] = SimpleNamespace(get=lambda conn_id: SimpleNamespace(conn_type=dialect))
        context["task"] = SimpleNamespace(conn_id="sparkify_warehouse")
        return context

    def slice_file(self, raw_str: str, *args: Any, **kwargs: Any):
        raw_sliced, sliced_file, templated = super().slice_file(raw_str, *args, **kwargs)
        raw_out = []
        for raw in raw_sliced:
            if raw.slice_type != "literal":
                raw_out.append(raw)
                continue
            for kind, start, end in _split(raw.raw, raw.source_idx):
                raw_out.append(RawFileSlice(raw_str[start:end], kind, start, raw.block_idx))
        sliced_out = []
        for piece in sliced_file:
            if piece.slice_type != "literal":
                sliced_out.append(piece)
                continue
            shift = piece.source_slice.start - piece.templated_slice.start
            text = templated[piece.templated_slice]
            for kind, start, end in _split(text, piece.templated_slice.start):
                sliced_out.append(TemplatedFileSlice(kind, slice(start + shift, end + shift), slice(start, end)))
        return raw_out, sliced_out, PLACEHOLDER.sub(lambda match: _bind(match.group(0)), templated)


class _Plugin:
    # trylast: called after sqlfluff's own hook, so this "jinja" replaces the built-in one.
    @staticmethod
    @hookimpl(trylast=True)
    def get_templaters() -> list[type[JinjaTemplater]]:
        return [BoundParameterJinjaTemplater]


if __name__ == "__main__":
    get_plugin_manager().register(_Plugin, name="sparkify_bound_parameters")
    sys.exit(cli())
