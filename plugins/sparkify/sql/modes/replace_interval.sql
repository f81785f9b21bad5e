-- Replaces a table's rows of the hours loaded: delete them, then insert the selected rows (one transaction).
{%- import 'macros/dialect.sql' as d with context %}
-- name: lock
{{ d.lock(table) }};
-- name: delete
DELETE FROM {{ table }} WHERE {{ interval_column }} >= %(interval_start)s AND {{ interval_column }} < %(interval_end)s;
-- name: insert
INSERT INTO {{ table }}
{{ select }};
-- name: analyze
{{ d.analyze(table) }}
