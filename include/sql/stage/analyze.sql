-- Refreshes the staging table's planner statistics once the batch is in (PostgreSQL only).
{%- import 'macros/dialect.sql' as d %}
{{ d.analyze(dialect, table) }}
