-- The hours this run's staging found changed so far, over every attempt of the run: a retry, or a
-- run cleared after it staged, still loads them.
SELECT hours_start, hours_end
FROM restatements
WHERE batch_id = %(batch_id)s AND table_name = %(table_name)s;
