-- Counts NULL keys: the fact rows of the run's interval, and every dimension row.
SELECT 'songplays of the interval with a NULL songplay_id', COUNT(*)
FROM songplays
WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
    AND songplay_id IS NULL
UNION ALL
SELECT 'users rows with a NULL user_id', COUNT(*) FROM users WHERE user_id IS NULL
UNION ALL
SELECT 'songs rows with a NULL song_id', COUNT(*) FROM songs WHERE song_id IS NULL
UNION ALL
SELECT 'artists rows with a NULL artist_id', COUNT(*) FROM artists WHERE artist_id IS NULL
UNION ALL
SELECT 'time rows with a NULL start_time', COUNT(*) FROM "time" WHERE start_time IS NULL
