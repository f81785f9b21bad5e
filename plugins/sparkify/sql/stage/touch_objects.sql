-- Marks the staged objects whose rows cover the hours this run listed as used now, so the retention
-- (stage/expired_objects.sql) never drops what a run is about to load.
UPDATE staged_objects
SET used_at = %(used_at)s
WHERE table_name = %(table_name)s
    AND last_ts >= %(window_start_ms)s
    AND first_ts < %(window_end_ms)s;
