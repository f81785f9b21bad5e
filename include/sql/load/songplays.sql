-- Selects the songplays of the hours loaded: one row per NextSong event staged in them, whatever
-- object holds it, matched to the song catalog by title, artist name and duration (within a tolerance).
{%- import 'macros/songplays.sql' as play %}
SELECT songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent
FROM (
    SELECT
        {{ play.songplay_id('e') }} AS songplay_id,
        {{ play.start_time('e') }} AS start_time,
        NULLIF(e.user_id, '') AS user_id,
        e.level,
        s.song_id,
        s.artist_id,
        e.session_id,
        e.location,
        e.user_agent,
        -- A duplicated event (in one object or two), or a play matching several catalog songs,
        -- yields one row: the matching song with the smallest id, then the first object.
        ROW_NUMBER() OVER (
            {{ play.per_event('e') }}
            ORDER BY s.song_id, e.object_key, e.level, e.location, e.user_agent
        ) AS event_rank
    FROM staging_events AS e
    LEFT JOIN staging_songs AS s
        ON {{ play.matches_song('e', 's') }}
    WHERE e.page = 'NextSong'
        AND e.ts >= %(start_ms)s
        AND e.ts < %(end_ms)s
) AS plays
WHERE event_rank = 1
