-- Selects the songs of the catalog files this run staged, one row per song_id.
SELECT song_id, title, artist_id, year, duration
FROM (
    SELECT
        song_id, title, artist_id, year, duration,
        ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY title, artist_id) AS copy_rank
    FROM staging_songs
    WHERE batch_id = %(batch_id)s
        AND song_id IS NOT NULL
) AS catalog
WHERE copy_rank = 1
