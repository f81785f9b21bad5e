-- Replaces a table's rows of the hours loaded: delete them, then insert the selected rows (one transaction).
{%- import 'macros/dialect.sql' as d %}
{{ d.lock(dialect, table) }};
DELETE FROM {{ table }} WHERE {{ interval_column }} >= %(interval_start)s AND {{ interval_column }} < %(interval_end)s;
INSERT INTO {{ table }}
{{ select }};
{{ d.analyze(dialect, table) }}
