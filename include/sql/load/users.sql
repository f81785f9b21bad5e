-- Selects each user seen in the run's interval as of their latest event there; the upsert
-- keeps whichever of this row and the stored one has the later last_seen_at.
-- The latest ts per user is found by aggregation; only events at that ts are then ranked.
SELECT user_id, first_name, last_name, gender, level, last_seen_at
FROM (
    SELECT
        e.user_id,
        e.first_name,
        e.last_name,
        e.gender,
        e.level,
        TIMESTAMP 'epoch' + e.ts * INTERVAL '1 millisecond' AS last_seen_at,
        ROW_NUMBER() OVER (
            PARTITION BY e.user_id
            ORDER BY e.session_id DESC, e.item_in_session DESC
        ) AS recency
    FROM staging_events AS e
    INNER JOIN (
        SELECT user_id, MAX(ts) AS ts
        FROM staging_events
        WHERE batch_id = %(batch_id)s
            AND user_id <> ''
            AND ts >= %(start_ms)s
            AND ts < %(end_ms)s
        GROUP BY user_id
    ) AS latest
        ON latest.user_id = e.user_id
        AND latest.ts = e.ts
    WHERE e.batch_id = %(batch_id)s
) AS seen
WHERE recency = 1
