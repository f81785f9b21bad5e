-- Rebuilds a table from the selected rows. DELETE, not TRUNCATE: on Redshift TRUNCATE commits
-- at once, which would let readers see an empty table and lose it if the insert fails.
{%- import 'macros/dialect.sql' as d with context %}
-- name: lock
{{ d.lock(table) }};
-- name: delete
DELETE FROM {{ table }};
-- name: insert
INSERT INTO {{ table }}
{{ select }};
