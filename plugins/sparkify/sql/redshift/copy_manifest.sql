-- Redshift: one COPY of every object a manifest lists into the temporary table: the members of a staging
-- unit that share a compression (one COPY reads one), loaded on every slice at once.
{%- import 'redshift/authorization.sql' as copy %}
-- FORMAT AS JSON with the JSONPaths file maps keys to columns by position: 'auto' matches key names
-- to column names and would leave the camelCase keys (firstName, userId...) NULL.
-- TIMEFORMAT 'epochmillisecs': how the app writes times. It governs TIMESTAMP columns only; ts
-- stays a BIGINT of epoch milliseconds, which the loads compare with the interval's bounds.
-- MAXERROR: the operator's max_errors; the records the COPY rejects within it are kept in the quarantine.
-- compression: GZIP, BZIP2 or ZSTD when the manifest's objects are .gz, .bz2 or .zst.
-- COMPUPDATE OFF and STATUPDATE OFF: the temporary table lives for one INSERT, so choosing its encodings
-- or its statistics is wasted work; the staging table is analyzed once the run is in (stage/analyze.sql).
COPY {{ incoming }} ({{ columns }})
FROM {{ manifest_uri }}
{{ copy.authorization(iam_role, access_key_id, secret_access_key, session_token) }}
FORMAT AS JSON {{ jsonpaths_uri }}
TIMEFORMAT 'epochmillisecs'
MAXERROR {{ max_errors }}
{%- if compression %}
{{ compression }}
{%- endif %}
MANIFEST
{%- if region %}
REGION {{ region }}
{%- endif %}
COMPUPDATE OFF
STATUPDATE OFF;
{%- if max_errors %}
{% include 'redshift/quarantine_from_load_errors.sql' %}
{%- endif %}
