-- Redshift: forgets what a staging unit left (an hour prefix, a day file), before it is staged again or once
-- its objects are gone: its rows, found by the unit's key and the hours its members' records say they cover
-- (the sort key's zone maps skip the rest), its members' rejected records and their staged_objects records.
-- A key matches its unit when it starts with the unit's key, so rows and records an earlier version tagged
-- with each object's own key (log_data/2018/11/01/00/part-0.json) go with their unit too.
DELETE FROM {{ table }}
WHERE LEFT(object_key, {{ unit_length }}) = {{ unit_key }}
    AND ({{ time_column }} BETWEEN %(first_ts)s AND %(last_ts)s OR {{ time_column }} IS NULL);
DELETE FROM quarantine WHERE table_name = %(table_name)s AND LEFT(object_uri, {{ unit_uri_length }}) = {{ unit_uri }};
DELETE FROM staged_objects WHERE table_name = %(table_name)s AND LEFT(object_key, {{ unit_length }}) = {{ unit_key }};
