-- Fills in the song and artist of earlier songplays (within the look-back) whose song reached the
-- catalog only with this run's batch: song metadata may land after the plays that need it.
-- A smaller matching song_id also wins over a stored one, as in the first match, so the result
-- does not depend on the order in which song files arrive. Plays are found by start_time and id, the
-- key's order on PostgreSQL: the look-back's rows, never the whole table.
{%- import 'macros/songplays.sql' as play %}
UPDATE songplays
SET song_id = late.song_id, artist_id = late.artist_id
FROM (
    SELECT songplay_id, start_time, song_id, artist_id
    FROM (
        SELECT
            {{ play.songplay_id('e') }} AS songplay_id,
            {{ play.start_time('e') }} AS start_time,
            s.song_id,
            s.artist_id,
            ROW_NUMBER() OVER (
                {{ play.per_event('e') }}
                ORDER BY s.song_id
            ) AS match_rank
        FROM staging_songs AS s
        INNER JOIN staging_events AS e
            ON {{ play.matches_song('e', 's') }}
        WHERE s.batch_id = %(batch_id)s
            AND e.page = 'NextSong'
            AND e.ts >= %(start_ms)s - CAST(%(lookback_hours)s AS BIGINT) * 3600000
            AND e.ts < %(start_ms)s
    ) AS candidates
    WHERE match_rank = 1
) AS late
WHERE songplays.start_time = late.start_time
    AND songplays.songplay_id = late.songplay_id
    AND (songplays.song_id IS NULL OR late.song_id < songplays.song_id)
