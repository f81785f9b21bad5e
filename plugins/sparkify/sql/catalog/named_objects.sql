-- Reads the staged_objects records of the objects the run's notifications name, a chunk of keys at a
-- time: never the whole catalog's (stage/staged_objects.sql reads every record, for a full listing).
SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, rejected_reason
FROM staged_objects
WHERE table_name = %(table_name)s
    AND object_key IN (
        {%- for name in key_parameters %}
        %({{ name }})s{{ "," if not loop.last }}
        {%- endfor %}
    );
