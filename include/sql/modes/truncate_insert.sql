-- Rebuilds a table from the selected rows. DELETE, not TRUNCATE: on Redshift TRUNCATE commits
-- at once, which would let readers see an empty table and lose it if the insert fails.
{%- import 'macros/dialect.sql' as d %}
{{ d.lock(dialect, table) }};
DELETE FROM {{ table }};
INSERT INTO {{ table }}
{{ select }};
