-- Runs an UPDATE of a fact table under the table lock, so it serialises with the interval loads.
{%- import 'macros/dialect.sql' as d with context %}
-- name: lock
{{ d.lock(table) }};
-- name: update
{{ select }};
