-- Lists every object version staged into a table (or refused as bad, with why), with the hours its rows cover.
SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, rejected_reason
FROM staged_objects
WHERE table_name = %(table_name)s;
