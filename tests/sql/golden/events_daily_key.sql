SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, rejected_reason
FROM staged_objects
WHERE table_name = %(table_name)s;

LOCK "staging_events";

SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, rejected_reason
FROM staged_objects
WHERE table_name = %(table_name)s AND LEFT(object_key, 39) = 'log_data/2018/11/2018-11-01-events.json';

DELETE FROM "staging_events"
WHERE LEFT(object_key, 39) = 'log_data/2018/11/2018-11-01-events.json'
    AND ("ts" BETWEEN %(first_ts)s AND %(last_ts)s OR "ts" IS NULL);

DELETE FROM quarantine WHERE table_name = %(table_name)s AND LEFT(object_uri, 64) = 's3://sparkify-bucket/raw/log_data/2018/11/2018-11-01-events.json';

DELETE FROM staged_objects WHERE table_name = %(table_name)s AND LEFT(object_key, 39) = 'log_data/2018/11/2018-11-01-events.json';

CREATE TEMP TABLE "incoming" DISTSTYLE EVEN AS SELECT "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id" FROM "staging_events" LIMIT 0;

COPY "incoming" ("artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id")
FROM 's3://sparkify-work/manifests/staging_events/scheduled__2018-11-01T00_00_00_00_00/log_data_2018_11_2018-11-01-events.json-e6c05db1257b.manifest'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS JSON 's3://sparkify-bucket/raw/jsonpaths/log_events.json'
TIMEFORMAT 'epochmillisecs'
MAXERROR 0
MANIFEST
REGION 'us-west-2'
COMPUPDATE OFF
STATUPDATE OFF;

INSERT INTO quarantine (table_name, batch_id, object_uri, line_number, error, raw_line, recorded_at)
SELECT
    %(table_name)s, %(batch_id)s, 's3://sparkify-bucket/raw/log_data/2018/11/2018-11-01-events.json', 0,
    'ts missing or outside 1540944000000 to 1541203200000 (the unit''s hours)',
    NULL,
    %(staged_at)s
FROM "incoming"
WHERE "ts" IS NULL
    OR "ts" < 1540944000000
    OR "ts" >= 1541203200000;

DELETE FROM "incoming"
WHERE "ts" IS NULL
    OR "ts" < 1540944000000
    OR "ts" >= 1541203200000;

INSERT INTO "staging_events" ("artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id", object_key, batch_id)
SELECT "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id", 'log_data/2018/11/2018-11-01-events.json', %(batch_id)s FROM "incoming";

COPY staged_objects (table_name, object_key, version, batch_id, staged_at, used_at)
FROM 's3://sparkify-work/manifests/staging_events/scheduled__2018-11-01T00_00_00_00_00/log_data_2018_11_2018-11-01-events.json-e6c05db1257b.objects.csv'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS CSV
TIMEFORMAT 'auto'
REGION 'us-west-2';

UPDATE staged_objects
SET row_count = unit_rows.row_count, first_ts = unit_rows.first_ts, last_ts = unit_rows.last_ts
FROM (
    SELECT
        COUNT(*) AS row_count,
        MIN("ts") AS first_ts,
        MAX("ts") AS last_ts
    FROM "incoming"
) AS unit_rows
WHERE staged_objects.table_name = %(table_name)s
    AND LEFT(staged_objects.object_key, 39) = 'log_data/2018/11/2018-11-01-events.json';

DROP TABLE "incoming";

SELECT COUNT(*) FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;

SELECT MIN(first_ts), MAX(last_ts)
FROM staged_objects
WHERE table_name = %(table_name)s AND LEFT(object_key, 39) = 'log_data/2018/11/2018-11-01-events.json';

LOCK "staging_events";

DELETE FROM loaded_intervals WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;

INSERT INTO loaded_intervals (table_name, batch_id, interval_start, interval_end, recorded_at)
VALUES (%(table_name)s, %(batch_id)s, %(interval_start)s, %(interval_end)s, %(recorded_at)s);

UPDATE staged_objects
SET used_at = %(used_at)s
WHERE table_name = %(table_name)s
    AND last_ts >= %(window_start_ms)s
    AND first_ts < %(window_end_ms)s;

SELECT object_key, first_ts, last_ts
FROM staged_objects
WHERE table_name = %(table_name)s AND used_at < %(purge_before)s
ORDER BY used_at
LIMIT 10;

DELETE FROM "staging_events"
WHERE LEFT(object_key, 39) = 'log_data/2018/10/2018-10-01-events.json'
    AND ("ts" BETWEEN %(first_ts)s AND %(last_ts)s OR "ts" IS NULL);

DELETE FROM quarantine WHERE table_name = %(table_name)s AND LEFT(object_uri, 64) = 's3://sparkify-bucket/raw/log_data/2018/10/2018-10-01-events.json';

DELETE FROM staged_objects WHERE table_name = %(table_name)s AND LEFT(object_key, 39) = 'log_data/2018/10/2018-10-01-events.json';

SELECT hours_start, hours_end
FROM restatements
WHERE batch_id = %(batch_id)s AND table_name = %(table_name)s;

ANALYZE "staging_events";

DELETE FROM load_audit WHERE batch_id = %(batch_id)s AND task_id = %(task_id)s AND table_name = %(table_name)s;

INSERT INTO load_audit (
    batch_id, task_id, table_name, interval_start, interval_end,
    rows_read, rows_written, rows_rejected, object_count, source_objects, recorded_at
) VALUES (
    %(batch_id)s, %(task_id)s, %(table_name)s, %(interval_start)s, %(interval_end)s,
    %(rows_read)s, %(rows_written)s, %(rows_rejected)s, %(object_count)s, %(source_objects)s, %(recorded_at)s
);

-- s3://sparkify-work/manifests/staging_events/scheduled__2018-11-01T00_00_00_00_00/log_data_2018_11_2018-11-01-events.json-e6c05db1257b.manifest:
-- {"entries": [{"url": "s3://sparkify-bucket/raw/log_data/2018/11/2018-11-01-events.json", "mandatory": true}]}
