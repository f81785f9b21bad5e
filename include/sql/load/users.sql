-- Selects each user seen in the run's interval as of their latest event there; the upsert
-- keeps whichever of this row and the stored one has the later last_seen_at.
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
            ORDER BY e.ts DESC, e.session_id DESC, e.item_in_session DESC
        ) AS recency
    FROM staging_events AS e
    WHERE e.batch_id = %(batch_id)s
        AND e.user_id <> ''
        AND e.ts >= %(start_ms)s
        AND e.ts < %(end_ms)s
) AS seen
WHERE recency = 1
