-- Appends the selected rows; the select itself leaves out rows the table already has.
{%- import 'macros/dialect.sql' as d %}
-- name: lock
{{ d.lock(dialect, table) }};
-- name: insert
INSERT INTO {{ table }}
{{ select }};
