-- Starts a staging transaction: one staging task per table at a time, until commit, so two runs
-- that meet the same new object stage it once. A full re-stage of a catalog forgets every staged
-- object of the table first, and stages everything again.
{%- import 'macros/dialect.sql' as d with context %}
{{ d.staging_lock(table) }};
{%- if restage %}
DELETE FROM staged_objects WHERE table_name = %(table_name)s;
DELETE FROM quarantine WHERE table_name = %(table_name)s;
DELETE FROM {{ table }};
{%- endif %}
