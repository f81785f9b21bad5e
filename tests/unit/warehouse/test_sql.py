"""SQL text: identifiers checked before they are quoted, literals escaped, templates rendered strictly."""

from __future__ import annotations

import jinja2
import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify.warehouse.sql import quote_identifier, quote_literal, render_named, render_statements


def test_only_plain_lower_case_identifiers_are_quoted():
    assert quote_identifier("staging_events") == '"staging_events"'
    for name in ["Songs", "a-b", 'x"; DROP TABLE songs; --', "", "1st", "a" * 64]:
        with pytest.raises(AirflowFailException, match="not a valid SQL identifier"):
            quote_identifier(name)


def test_a_literal_doubles_its_quotes_and_refuses_nul():
    assert quote_literal("s3://x/it's.json") == "'s3://x/it''s.json'"
    with pytest.raises(AirflowFailException, match="NUL"):
        quote_literal("a\x00b")


def test_a_template_variable_not_given_fails_instead_of_rendering_as_nothing():
    with pytest.raises(jinja2.UndefinedError, match="'table' is undefined"):
        render_statements("stage/analyze.sql")


def test_named_statements_come_back_by_name_in_their_order():
    statements = render_named("modes/replace_interval.sql", dialect="postgres", table='"songplays"',
                              interval_column='"start_time"', select="SELECT 1")
    assert list(statements) == ["lock", "delete", "insert", "analyze"]
    assert statements["insert"] == 'INSERT INTO "songplays"\nSELECT 1'
    assert "analyze" not in render_named("modes/replace_interval.sql", dialect="redshift", table='"songplays"',
                                         interval_column='"start_time"', select="SELECT 1")
