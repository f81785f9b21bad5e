-- Redshift: the staged_objects records of a staging unit's members, read again under the staging lock before
-- the unit is replaced (through a driver): a run that staged the same unit meanwhile is not repeated.
SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, rejected_reason
FROM staged_objects
WHERE table_name = %(table_name)s AND LEFT(object_key, {{ unit_length }}) = {{ unit_key }};
