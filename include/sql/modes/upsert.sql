-- Inserts the selected rows, replacing stored rows with the same key. With a version column
-- a stored row that is newer than the incoming one wins, so loads may arrive in any order.
{%- import 'macros/dialect.sql' as d %}
{{ d.lock(dialect, table) }};
CREATE TEMP TABLE {{ incoming }} (LIKE {{ table }});
INSERT INTO {{ incoming }}
{{ select }};
{%- if version_column %}
DELETE FROM {{ incoming }} USING {{ table }} AS stored
WHERE {{ incoming }}.{{ key }} = stored.{{ key }}
    AND stored.{{ version_column }} > {{ incoming }}.{{ version_column }};
{%- endif %}
DELETE FROM {{ table }} USING {{ incoming }}
WHERE {{ table }}.{{ key }} = {{ incoming }}.{{ key }};
INSERT INTO {{ table }} SELECT * FROM {{ incoming }};
DROP TABLE {{ incoming }};
