-- Forgets one staged object version, before its new version is staged or once it is gone: its rows
-- (found through the hours its record says they cover, so the time index serves), its rejected
-- records and its record. A catalog's rows are replaced by key instead (stage/replace_catalog_rows.sql).
{%- if time_column %}
DELETE FROM {{ table }}
WHERE object_key = %(object_key)s
    AND ({{ time_column }} BETWEEN %(first_ts)s AND %(last_ts)s OR {{ time_column }} IS NULL);
{%- endif %}
DELETE FROM quarantine WHERE table_name = %(table_name)s AND object_uri = %(object_uri)s;
DELETE FROM staged_objects WHERE table_name = %(table_name)s AND object_key = %(object_key)s;
