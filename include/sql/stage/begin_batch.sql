-- Starts (or restarts, on a retry) this run's batch in a staging table: its earlier rows and
-- rejected records go first.
-- A full re-stage of an incremental table forgets every batch instead, and stages everything again.
{%- import 'macros/dialect.sql' as d %}
{%- if incremental %}
{{ d.lock(dialect, 'staged_objects') }};
{%- if restage %}
DELETE FROM staged_objects WHERE table_name = %(table_name)s;
DELETE FROM quarantine WHERE table_name = %(table_name)s;
DELETE FROM {{ table }};
{%- else %}
DELETE FROM staged_objects WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;
{%- endif %}
{%- endif %}
DELETE FROM {{ table }} WHERE batch_id = %(batch_id)s;
DELETE FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;
