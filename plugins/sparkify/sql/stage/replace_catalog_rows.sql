-- A catalog's rows staged by this run replace the rows staged before with the same key: a song file
-- rewritten in place, or a song moved to another file, leaves one staged row per song.
DELETE FROM {{ table }}
USING (SELECT DISTINCT {{ catalog_key }} AS restaged_key FROM {{ table }} WHERE batch_id = %(batch_id)s) AS restaged
WHERE {{ table }}.{{ catalog_key }} = restaged.restaged_key
    AND {{ table }}.batch_id <> %(batch_id)s;
