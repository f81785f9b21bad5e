-- Compares the songplays of the hours loaded with the distinct NextSong events staged for them, from
-- every object (zero and zero is a pass: an hour without plays is legitimate).
SELECT 'songplays minus staged NextSong events in the interval',
    (SELECT COUNT(*) FROM songplays
     WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s)
    - (SELECT COUNT(*) FROM (
        SELECT DISTINCT ts, session_id, item_in_session, user_id
        FROM staging_events
        WHERE page = 'NextSong'
            AND ts >= %(start_ms)s AND ts < %(end_ms)s
    ) AS events)
