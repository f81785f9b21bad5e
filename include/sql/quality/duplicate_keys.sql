-- Counts rows beyond the first for each key this run wrote (Redshift does not enforce
-- primary keys); scoped to the hours loaded and the songs staged by the run, so the check
-- costs the same on a year-old warehouse.
SELECT 'duplicate songplay_id among the songplays of the interval', COUNT(*) - COUNT(DISTINCT songplay_id)
FROM songplays
WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
UNION ALL
SELECT 'duplicate user_id among the users of the interval', COUNT(*) - COUNT(DISTINCT user_id)
FROM users
WHERE user_id IN (
    SELECT e.user_id FROM staging_events AS e
    WHERE e.ts >= %(start_ms)s AND e.ts < %(end_ms)s
)
UNION ALL
SELECT 'duplicate song_id among the songs of the batch', COUNT(*) - COUNT(DISTINCT song_id)
FROM songs
WHERE song_id IN (SELECT s.song_id FROM staging_songs AS s WHERE s.batch_id = %(batch_id)s)
UNION ALL
SELECT 'duplicate artist_id among the artists of the batch', COUNT(*) - COUNT(DISTINCT artist_id)
FROM artists
WHERE artist_id IN (SELECT s.artist_id FROM staging_songs AS s WHERE s.batch_id = %(batch_id)s)
UNION ALL
SELECT 'duplicate start_time among the time rows of the interval', COUNT(*) - COUNT(DISTINCT start_time)
FROM "time"
WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
