-- Selects, for each user seen in the hours loaded or whose stored row came from them, their latest
-- staged event before the end of those hours, whatever object holds it. The upsert keeps a stored
-- row that is later, unless that row came from the hours loaded: this select re-derives those.
-- The latest ts per user is found by aggregation; only events at that ts are then ranked. A user
-- seen in the hours has their latest event there, so one pass over the hours finds it; only a user
-- whose stored row came from the hours and who has no event left in them (it was withdrawn) is
-- looked up in the staged events before.
SELECT user_id, first_name, last_name, gender, level, last_seen_at
FROM (
    SELECT
        e.user_id,
        e.first_name,
        e.last_name,
        e.gender,
        e.level,
        TIMESTAMP 'epoch' + e.ts * INTERVAL '1 millisecond' AS last_seen_at,
        -- The same event staged from two objects, or two at one ts: the last in the session wins.
        ROW_NUMBER() OVER (
            PARTITION BY e.user_id
            ORDER BY e.session_id DESC, e.item_in_session DESC, e.level ASC, e.first_name ASC, e.last_name ASC,
                e.gender ASC
        ) AS recency
    FROM staging_events AS e
    INNER JOIN (
        SELECT seen.user_id, seen.ts
        FROM (
            SELECT user_id, MAX(ts) AS ts
            FROM staging_events
            WHERE user_id <> '' AND ts >= %(start_ms)s AND ts < %(end_ms)s
            GROUP BY user_id
        ) AS seen
        UNION ALL
        SELECT s.user_id, MAX(s.ts) AS ts
        FROM staging_events AS s
        INNER JOIN users AS withdrawn
            ON withdrawn.user_id = s.user_id
        WHERE withdrawn.last_seen_at >= %(interval_start)s AND withdrawn.last_seen_at < %(interval_end)s
            AND s.ts < %(start_ms)s
            AND NOT EXISTS (
                SELECT 1 FROM staging_events AS still
                WHERE still.user_id = withdrawn.user_id AND still.ts >= %(start_ms)s AND still.ts < %(end_ms)s
            )
        GROUP BY s.user_id
    ) AS latest
        ON latest.user_id = e.user_id
        AND latest.ts = e.ts
) AS users_seen
WHERE recency = 1
