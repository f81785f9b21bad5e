-- Inserts the selected rows, replacing stored rows with the same key. With a version column a stored
-- row newer than the incoming one wins, so loads may arrive in any order, unless its version lies in
-- the hours loaded: the select re-derives those, and a stored row versioned there that the select no
-- longer returns is deleted (the events it came from were withdrawn).
{%- import 'macros/dialect.sql' as d with context %}
-- name: lock
{{ d.lock(table) }};
-- name: create_incoming
CREATE TEMP TABLE {{ incoming }} (LIKE {{ table }});
-- name: fill_incoming
INSERT INTO {{ incoming }}
{{ select }};
{%- if version_column %}
-- name: drop_older_incoming
DELETE FROM {{ incoming }} USING {{ table }} AS stored
WHERE {{ incoming }}.{{ key }} = stored.{{ key }}
    AND stored.{{ version_column }} > {{ incoming }}.{{ version_column }}
    AND NOT (stored.{{ version_column }} >= %(interval_start)s AND stored.{{ version_column }} < %(interval_end)s);
-- name: delete_withdrawn
DELETE FROM {{ table }}
WHERE {{ version_column }} >= %(interval_start)s AND {{ version_column }} < %(interval_end)s
    AND {{ key }} NOT IN (SELECT {{ key }} FROM {{ incoming }});
{%- endif %}
-- name: delete_replaced
DELETE FROM {{ table }} USING {{ incoming }}
WHERE {{ table }}.{{ key }} = {{ incoming }}.{{ key }};
-- name: insert
INSERT INTO {{ table }} SELECT * FROM {{ incoming }};
-- name: drop_incoming
DROP TABLE {{ incoming }};
