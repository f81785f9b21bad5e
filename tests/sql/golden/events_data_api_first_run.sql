-- ExecuteStatement
-- parameters: table_name="staging_events"
SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, rejected_reason
FROM staged_objects
WHERE table_name = :table_name;

-- ExecuteStatement
-- parameters: table_name="staging_events", hours_end="2018-11-01 01:00:00", hours_start="2018-11-01 00:00:00"
SELECT interval_start, interval_end
FROM loaded_intervals
WHERE table_name = :table_name
    AND interval_start < :hours_end
    AND interval_end > :hours_start;

-- ListStatements sparkify:staging_events:log_data/2018/11/01/00/:37bce66880b725a06c939b6c

-- BatchExecuteStatement sparkify:staging_events:log_data/2018/11/01/00/:37bce66880b725a06c939b6c
-- parameters: table_name="staging_events", batch_id="scheduled__2018-11-01T01:00:00+00:00", staged_at=<now>
LOCK "staging_events";
CREATE TEMP TABLE "incoming" DISTSTYLE EVEN AS SELECT "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id" FROM "staging_events" LIMIT 0;
COPY "incoming" ("artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id")
FROM 's3://sparkify-work/manifests/staging_events/scheduled__2018-11-01T01_00_00_00_00/log_data_2018_11_01_00-37bce66880b7.manifest'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS JSON 's3://sparkify-bucket/raw/jsonpaths/log_events.json'
TIMEFORMAT 'epochmillisecs'
MAXERROR 0
GZIP
MANIFEST
COMPUPDATE OFF
STATUPDATE OFF;
INSERT INTO quarantine (table_name, batch_id, object_uri, line_number, error, raw_line, recorded_at)
SELECT
    :table_name, :batch_id, 's3://sparkify-bucket/raw/log_data/2018/11/01/00/', 0,
    'ts missing or outside 1540944000000 to 1541120400000 (the unit''s hours)',
    NULL,
    :staged_at
FROM "incoming"
WHERE "ts" IS NULL
    OR "ts" < 1540944000000
    OR "ts" >= 1541120400000;
DELETE FROM "incoming"
WHERE "ts" IS NULL
    OR "ts" < 1540944000000
    OR "ts" >= 1541120400000;
INSERT INTO "staging_events" ("artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id", object_key, batch_id)
SELECT "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id", 'log_data/2018/11/01/00/', :batch_id FROM "incoming";
COPY staged_objects (table_name, object_key, version, batch_id, staged_at, used_at)
FROM 's3://sparkify-work/manifests/staging_events/scheduled__2018-11-01T01_00_00_00_00/log_data_2018_11_01_00-37bce66880b7.objects.csv'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS CSV
TIMEFORMAT 'auto';
UPDATE staged_objects
SET row_count = unit_rows.row_count, first_ts = unit_rows.first_ts, last_ts = unit_rows.last_ts
FROM (
    SELECT
        COUNT(*) AS row_count,
        MIN("ts") AS first_ts,
        MAX("ts") AS last_ts
    FROM "incoming"
) AS unit_rows
WHERE staged_objects.table_name = :table_name
    AND LEFT(staged_objects.object_key, 23) = 'log_data/2018/11/01/00/';
DROP TABLE "incoming";

-- ListStatements sparkify:staging_events:log_data/2018/11/01/01/:3ddae28187d6d44a79e1bdc2

-- BatchExecuteStatement sparkify:staging_events:log_data/2018/11/01/01/:3ddae28187d6d44a79e1bdc2
-- parameters: table_name="staging_events", batch_id="scheduled__2018-11-01T01:00:00+00:00", staged_at=<now>
LOCK "staging_events";
CREATE TEMP TABLE "incoming" DISTSTYLE EVEN AS SELECT "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id" FROM "staging_events" LIMIT 0;
COPY "incoming" ("artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id")
FROM 's3://sparkify-work/manifests/staging_events/scheduled__2018-11-01T01_00_00_00_00/log_data_2018_11_01_01-3ddae28187d6.manifest'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS JSON 's3://sparkify-bucket/raw/jsonpaths/log_events.json'
TIMEFORMAT 'epochmillisecs'
MAXERROR 0
GZIP
MANIFEST
COMPUPDATE OFF
STATUPDATE OFF;
INSERT INTO quarantine (table_name, batch_id, object_uri, line_number, error, raw_line, recorded_at)
SELECT
    :table_name, :batch_id, 's3://sparkify-bucket/raw/log_data/2018/11/01/01/', 0,
    'ts missing or outside 1540947600000 to 1541124000000 (the unit''s hours)',
    NULL,
    :staged_at
FROM "incoming"
WHERE "ts" IS NULL
    OR "ts" < 1540947600000
    OR "ts" >= 1541124000000;
DELETE FROM "incoming"
WHERE "ts" IS NULL
    OR "ts" < 1540947600000
    OR "ts" >= 1541124000000;
INSERT INTO "staging_events" ("artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id", object_key, batch_id)
SELECT "artist", "auth", "first_name", "gender", "item_in_session", "last_name", "length", "level", "location", "method", "page", "registration", "session_id", "song", "status", "ts", "user_agent", "user_id", 'log_data/2018/11/01/01/', :batch_id FROM "incoming";
COPY staged_objects (table_name, object_key, version, batch_id, staged_at, used_at)
FROM 's3://sparkify-work/manifests/staging_events/scheduled__2018-11-01T01_00_00_00_00/log_data_2018_11_01_01-3ddae28187d6.objects.csv'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS CSV
TIMEFORMAT 'auto';
UPDATE staged_objects
SET row_count = unit_rows.row_count, first_ts = unit_rows.first_ts, last_ts = unit_rows.last_ts
FROM (
    SELECT
        COUNT(*) AS row_count,
        MIN("ts") AS first_ts,
        MAX("ts") AS last_ts
    FROM "incoming"
) AS unit_rows
WHERE staged_objects.table_name = :table_name
    AND LEFT(staged_objects.object_key, 23) = 'log_data/2018/11/01/01/';
DROP TABLE "incoming";

-- ExecuteStatement
-- parameters: batch_id="scheduled__2018-11-01T01:00:00+00:00", table_name="staging_events"
SELECT hours_start, hours_end
FROM restatements
WHERE batch_id = :batch_id AND table_name = :table_name;

-- BatchExecuteStatement
-- parameters: table_name="staging_events", batch_id="scheduled__2018-11-01T01:00:00+00:00", interval_start="2018-11-01 01:00:00", interval_end="2018-11-01 02:00:00", recorded_at=<now>, used_at=<now>, window_start_ms="1540947600000", window_end_ms="1541037600000", task_id="stage", object_count="3", source_objects="s3://sparkify-bucket/raw/log_data/2018/11/01/00/part-0.json.gz\ns3://sparkify-bucket/raw/log_data/2018/11/01/00/part-1.json.gz\ns3://sparkify-bucket/raw/log_data/2018/11/01/01/part-0.json.gz", recorded_at_2=<now>
LOCK "staging_events";
DELETE FROM loaded_intervals WHERE table_name = :table_name AND batch_id = :batch_id;
INSERT INTO loaded_intervals (table_name, batch_id, interval_start, interval_end, recorded_at)
VALUES (:table_name, :batch_id, :interval_start, :interval_end, :recorded_at);
UPDATE staged_objects
SET used_at = :used_at
WHERE table_name = :table_name
    AND last_ts >= :window_start_ms
    AND first_ts < :window_end_ms;
ANALYZE "staging_events";
DELETE FROM load_audit WHERE batch_id = :batch_id AND task_id = :task_id AND table_name = :table_name;
INSERT INTO load_audit (
    batch_id, task_id, table_name, interval_start, interval_end,
    rows_read, rows_written, rows_rejected, object_count, source_objects, recorded_at
) VALUES (
    :batch_id, :task_id, :table_name, :interval_start, :interval_end,
    NULL, NULL, NULL, :object_count, :source_objects, :recorded_at_2
);

