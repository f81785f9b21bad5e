-- Runs an UPDATE of a fact table under the table lock, so it serialises with the interval loads.
{%- import 'macros/dialect.sql' as d %}
-- name: lock
{{ d.lock(dialect, table) }};
-- name: update
{{ select }};
