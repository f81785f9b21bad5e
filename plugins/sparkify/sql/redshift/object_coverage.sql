-- Redshift: the hours the objects this run staged cover, as recorded from their rows.
SELECT object_key, first_ts, last_ts
FROM staged_objects
WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;
