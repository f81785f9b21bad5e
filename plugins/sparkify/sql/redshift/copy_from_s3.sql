-- Redshift: loads a catalog's new or changed JSON objects from S3 through a manifest into a temporary table,
-- then tags the rows with this run's batch. (Events go by staging unit: redshift/copy_manifest.sql.)
-- The temporary table holds the JSON columns only (COPY cannot fill object_key or batch_id). Its DISTSTYLE is explicit:
-- CTAS would pick one from the query plan (best effort with a LIMIT), and COPY into a table left to AUTO
-- distribution runs a COPY ANALYZE that STATUPDATE OFF does not stop.
{%- import 'redshift/authorization.sql' as copy %}
CREATE TEMP TABLE {{ incoming }} DISTSTYLE EVEN AS SELECT {{ columns }} FROM {{ table }} LIMIT 0;  -- noqa: AM09
-- FORMAT AS JSON with the JSONPaths file maps keys to columns by position: 'auto' matches key names
-- to column names and would leave the camelCase keys (firstName, userId...) NULL.
-- TIMEFORMAT 'epochmillisecs': how the app writes times. It governs TIMESTAMP columns only; ts
-- stays a BIGINT of epoch milliseconds, which the loads compare with the interval's bounds.
-- COMPUPDATE OFF and STATUPDATE OFF: the temporary table lives for one INSERT, so choosing its
-- encodings or its statistics is wasted work on every batch; the staging table is analyzed
-- once the whole batch is in (stage/analyze.sql).
-- MAXERROR: the operator's max_errors; the records the COPY rejects within it are kept in the quarantine.
-- compression: GZIP, BZIP2 or ZSTD when the objects are .gz, .bz2 or .zst (one for all the objects of a COPY).
COPY {{ incoming }} ({{ columns }})
FROM {{ s3_uri }}
{{ copy.authorization(iam_role, access_key_id, secret_access_key, session_token) }}
FORMAT AS JSON {{ jsonpaths_uri }}
TIMEFORMAT 'epochmillisecs'
MAXERROR {{ max_errors }}
{%- if compression %}
{{ compression }}
{%- endif %}
{%- if manifest %}
MANIFEST
{%- endif %}
{%- if region %}
REGION {{ region }}
{%- endif %}
COMPUPDATE OFF
STATUPDATE OFF;
{%- if max_errors %}
{% include 'redshift/quarantine_from_load_errors.sql' %}
{%- endif %}
INSERT INTO {{ table }} ({{ columns }}, batch_id) SELECT {{ columns }}, %(batch_id)s FROM {{ incoming }};
DROP TABLE {{ incoming }};
