-- PostgreSQL: records the object versions this run staged (or refused as bad), with the hours they cover.
COPY staged_objects (
    table_name, object_key, version, batch_id, staged_at, used_at, row_count, first_ts, last_ts, rejected_at
) FROM STDIN;
