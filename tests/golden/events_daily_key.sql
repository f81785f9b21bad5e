DELETE FROM "staging_events" WHERE batch_id = %(batch_id)s;

DELETE FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;

CREATE TEMP TABLE "incoming" DISTSTYLE EVEN AS SELECT "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id" FROM "staging_events" LIMIT 0;

COPY "incoming" ("artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id")
FROM 's3://sparkify-bucket/raw/log_data/2018/11/2018-11-01-events.json'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS JSON 's3://sparkify-bucket/raw/jsonpaths/log_events.json'
TIMEFORMAT 'epochmillisecs'
MAXERROR 0
REGION 'us-west-2'
COMPUPDATE OFF
STATUPDATE OFF;

INSERT INTO "staging_events" ("artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id", batch_id) SELECT "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id", %(batch_id)s FROM "incoming";

DROP TABLE "incoming";

SELECT a.batch_id, MAX(a.recorded_at) AS staged_at
FROM load_audit AS a
WHERE a.table_name = %(table_name)s
    AND a.batch_id <> %(batch_id)s
    AND EXISTS (SELECT 1 FROM "staging_events" AS s WHERE s.batch_id = a.batch_id)
GROUP BY a.batch_id
HAVING MAX(a.recorded_at) < %(purge_before)s
ORDER BY staged_at;

DELETE FROM "staging_events"
WHERE batch_id IN (
    SELECT batch_id FROM load_audit
    WHERE table_name = %(table_name)s AND batch_id <> %(batch_id)s
    GROUP BY batch_id
    HAVING MAX(recorded_at) < %(purge_before)s
);

ANALYZE "staging_events";

DELETE FROM load_audit WHERE batch_id = %(batch_id)s AND task_id = %(task_id)s AND table_name = %(table_name)s;

INSERT INTO load_audit (
    batch_id, task_id, table_name, interval_start, interval_end,
    rows_read, rows_written, rows_rejected, object_count, source_objects, recorded_at
) VALUES (
    %(batch_id)s, %(task_id)s, %(table_name)s, %(interval_start)s, %(interval_end)s,
    %(rows_read)s, %(rows_written)s, %(rows_rejected)s, %(object_count)s, %(source_objects)s, %(recorded_at)s
);

