-- Selects the artists of the catalog files this run staged, one row per artist_id: taken from the
-- artist's song with the smallest song_id, ties (one song in two files) broken by the artist's fields,
-- so the row never depends on the plan.
SELECT artist_id, name, location, latitude, longitude
FROM (
    SELECT
        artist_id,
        artist_name AS name,
        artist_location AS location,
        artist_latitude AS latitude,
        artist_longitude AS longitude,
        ROW_NUMBER() OVER (
            PARTITION BY artist_id
            ORDER BY song_id, artist_name, artist_location, artist_latitude, artist_longitude
        ) AS song_rank
    FROM staging_songs
    WHERE batch_id = %(batch_id)s
        AND artist_id IS NOT NULL
) AS catalog
WHERE song_rank = 1
