-- Counts songplays per hour of the day (UTC, all days together), and how many of them matched a catalog song.
SELECT EXTRACT(HOUR FROM start_time)::INTEGER AS hour, COUNT(*) AS plays, COUNT(song_id) AS matched
FROM songplays
GROUP BY 1
ORDER BY 1
