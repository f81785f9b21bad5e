-- Counts rows beyond the first for each key (Redshift does not enforce primary keys).
SELECT 'songplays.songplay_id in the interval', COUNT(*) - COUNT(DISTINCT songplay_id)
FROM songplays
WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
UNION ALL
SELECT 'users.user_id', COUNT(*) - COUNT(DISTINCT user_id) FROM users
UNION ALL
SELECT 'songs.song_id', COUNT(*) - COUNT(DISTINCT song_id) FROM songs
UNION ALL
SELECT 'artists.artist_id', COUNT(*) - COUNT(DISTINCT artist_id) FROM artists
UNION ALL
SELECT 'time.start_time', COUNT(*) - COUNT(DISTINCT start_time) FROM "time"
