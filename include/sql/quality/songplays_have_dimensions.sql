-- Counts songplays of the interval whose user or time row is missing. The time rows looked up are
-- the interval's own (a play's time row has its start_time), so the check reads the hours loaded,
-- not the whole time table, however old the warehouse.
SELECT 'songplays without a users row', COUNT(*)
FROM songplays AS sp
WHERE sp.start_time >= %(interval_start)s AND sp.start_time < %(interval_end)s
    AND sp.user_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM users AS u WHERE u.user_id = sp.user_id)
UNION ALL
SELECT 'songplays without a time row', COUNT(*)
FROM songplays AS sp
WHERE sp.start_time >= %(interval_start)s AND sp.start_time < %(interval_end)s
    AND NOT EXISTS (
        SELECT 1 FROM "time" AS t
        WHERE t.start_time = sp.start_time
            AND t.start_time >= %(interval_start)s AND t.start_time < %(interval_end)s
    )
