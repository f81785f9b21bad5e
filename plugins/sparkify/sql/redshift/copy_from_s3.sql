-- Redshift: loads JSON objects from S3 through a temporary table, then tags the rows with this run's batch
-- and, for one object, with its key, and records the object with the hours its rows cover.
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
-- MAXERROR: the operator's max_errors; the records a COPY rejects within it are kept in the
-- quarantine, and the run's total over its COPYs is checked against the same limit.
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
{%- if object_key %}
{%- if time_low is not none %}
-- Records whose time is missing or outside what the object may hold (its key's hours and the
-- plausibility window) would land in an hour no run of it loads: they are bad records, kept in the
-- quarantine without a line number (Redshift keeps none past the COPY) and counted against max_errors.
INSERT INTO quarantine (table_name, batch_id, object_uri, line_number, error, raw_line, recorded_at)
SELECT
    %(table_name)s, %(batch_id)s, {{ s3_uri }}, 0,
    'ts missing or outside {{ time_low }} to {{ time_high }} (the object''s hours)',
    NULL,
    %(staged_at)s
FROM {{ incoming }}
WHERE {{ time_column }} IS NULL
    OR {{ time_column }} < {{ time_low }}
    OR {{ time_column }} >= {{ time_high }};
DELETE FROM {{ incoming }}
WHERE {{ time_column }} IS NULL
    OR {{ time_column }} < {{ time_low }}
    OR {{ time_column }} >= {{ time_high }};
{%- endif %}
INSERT INTO {{ table }} ({{ columns }}, object_key, batch_id)
SELECT {{ columns }}, {{ object_key }}, %(batch_id)s FROM {{ incoming }};
INSERT INTO staged_objects (
    table_name, object_key, version, batch_id, staged_at, used_at, row_count, first_ts, last_ts, rejected_at
)
SELECT
    %(table_name)s, {{ object_key }}, {{ version }}, %(batch_id)s, %(staged_at)s, %(staged_at)s,
    COUNT(*), MIN({{ time_column }}), MAX({{ time_column }}), NULL
FROM {{ incoming }};
{%- else %}
INSERT INTO {{ table }} ({{ columns }}, batch_id) SELECT {{ columns }}, %(batch_id)s FROM {{ incoming }};
{%- endif %}
DROP TABLE {{ incoming }};
