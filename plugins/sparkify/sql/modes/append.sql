-- Appends the selected rows; the select itself leaves out rows the table already has.
{%- import 'macros/dialect.sql' as d with context %}
-- name: lock
{{ d.lock(table) }};
-- name: insert
INSERT INTO {{ table }}
{{ select }};
