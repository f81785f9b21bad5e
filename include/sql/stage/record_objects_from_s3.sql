-- Redshift: records the objects this run staged (listed in a CSV written beside the COPY manifest).
COPY staged_objects (table_name, object_key, batch_id, staged_at)
FROM {{ s3_uri }}
{% include 'stage/copy_authorization.sql' %}
FORMAT AS CSV
TIMEFORMAT 'auto'
{%- if region %}
REGION {{ region }}
{%- endif %};
