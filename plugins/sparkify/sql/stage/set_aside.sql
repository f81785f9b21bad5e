-- Records an object version refused as bad (more bad records than max_errors) and why: runs skip it, or
-- fail on it, until it changes. The rows of the version staged before, if any, stay as they were recorded.
DELETE FROM staged_objects WHERE table_name = %(table_name)s AND object_key = %(object_key)s;
INSERT INTO staged_objects (
    table_name, object_key, version, batch_id, staged_at, used_at, row_count, first_ts, last_ts, rejected_at,
    rejected_reason
) VALUES (
    %(table_name)s, %(object_key)s, %(version)s, %(batch_id)s, %(rejected_at)s, %(rejected_at)s,
    %(row_count)s, %(first_ts)s, %(last_ts)s, %(rejected_at)s, %(rejected_reason)s
);
