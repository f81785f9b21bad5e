-- Redshift: the first and last time of the rows a staging unit holds now, as its members' records say.
SELECT MIN(first_ts), MAX(last_ts)
FROM staged_objects
WHERE table_name = %(table_name)s AND LEFT(object_key, {{ unit_length }}) = {{ unit_key }};
