LOCK "staging_songs";

SELECT object_key, version, first_ts, last_ts, rejected_at, batch_id, row_count, rejected_reason
FROM staged_objects
WHERE table_name = %(table_name)s;

CREATE TEMP TABLE "incoming" DISTSTYLE EVEN AS SELECT "num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name", "song_id", "title", "duration", "year" FROM "staging_songs" LIMIT 0;

COPY "incoming" ("num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name", "song_id", "title", "duration", "year")
FROM 's3://sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00.manifest'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS JSON 's3://sparkify-bucket/raw/jsonpaths/song_data.json'
TIMEFORMAT 'epochmillisecs'
MAXERROR 0
MANIFEST
REGION 'us-west-2'
COMPUPDATE OFF
STATUPDATE OFF;

INSERT INTO "staging_songs" ("num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name", "song_id", "title", "duration", "year", batch_id) SELECT "num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name", "song_id", "title", "duration", "year", %(batch_id)s FROM "incoming";

DROP TABLE "incoming";

COPY staged_objects (table_name, object_key, version, batch_id, staged_at, used_at)
FROM 's3://sparkify-work/manifests/staging_songs/scheduled__2018-11-01T00_00_00_00_00.objects.csv'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-copy'
FORMAT AS CSV
TIMEFORMAT 'auto'
REGION 'us-west-2';

DELETE FROM "staging_songs"
USING (SELECT DISTINCT "song_id" AS restaged_key FROM "staging_songs" WHERE batch_id = %(batch_id)s) AS restaged
WHERE "staging_songs"."song_id" = restaged.restaged_key
    AND "staging_songs".batch_id <> %(batch_id)s;

INSERT INTO catalog_listings (table_name, batch_id, listed_at, objects_listed, objects_staged, found_by_listing_only)
VALUES (
    %(table_name)s, %(batch_id)s, %(listed_at)s, %(objects_listed)s, %(objects_staged)s, %(found_by_listing_only)s
);

ANALYZE "staging_songs";

DELETE FROM load_audit WHERE batch_id = %(batch_id)s AND task_id = %(task_id)s AND table_name = %(table_name)s;

INSERT INTO load_audit (
    batch_id, task_id, table_name, interval_start, interval_end,
    rows_read, rows_written, rows_rejected, object_count, source_objects, recorded_at
) VALUES (
    %(batch_id)s, %(task_id)s, %(table_name)s, %(interval_start)s, %(interval_end)s,
    %(rows_read)s, %(rows_written)s, %(rows_rejected)s, %(object_count)s, %(source_objects)s, %(recorded_at)s
);

