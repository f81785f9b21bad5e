-- Lists the staged objects no run has listed for longer than the retention, oldest first, a few at a
-- time (each costs three statements, and a Data API transaction takes forty).
SELECT object_key, first_ts, last_ts
FROM staged_objects
WHERE table_name = %(table_name)s AND used_at < %(purge_before)s
ORDER BY used_at
LIMIT 10;
