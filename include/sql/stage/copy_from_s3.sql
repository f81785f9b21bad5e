-- Redshift: loads JSON objects from S3 through a temporary table, then tags the rows with this run's batch.
CREATE TEMP TABLE {{ incoming }} AS SELECT {{ columns }} FROM {{ table }} LIMIT 0;
COPY {{ incoming }} ({{ columns }})
FROM {{ s3_uri }}
{% include 'stage/copy_authorization.sql' %}
FORMAT AS JSON {{ jsonpaths_uri }}
MAXERROR {{ max_errors }}
{%- if manifest %}
MANIFEST
{%- endif %}
{%- if region %}
REGION {{ region }}
{%- endif %}
COMPUPDATE OFF
STATUPDATE OFF;
{%- if max_errors %}
{% include 'stage/quarantine_from_load_errors.sql' %}
{%- endif %}
INSERT INTO {{ table }} ({{ columns }}, batch_id) SELECT {{ columns }}, %(batch_id)s FROM {{ incoming }};
DROP TABLE {{ incoming }};
