-- Starts (or restarts, on a retry) this run's batch in a staging table: its earlier rows go first.
{%- import 'macros/dialect.sql' as d %}
{%- if incremental %}
{{ d.lock(dialect, 'staged_objects') }};
DELETE FROM staged_objects WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;
{%- endif %}
DELETE FROM {{ table }} WHERE batch_id = %(batch_id)s;
