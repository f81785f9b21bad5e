-- Redshift: records the catalog objects this run staged (listed in a CSV written beside the COPY manifest).
{%- import 'redshift/authorization.sql' as copy %}
COPY staged_objects (table_name, object_key, version, batch_id, staged_at, used_at)
FROM {{ s3_uri }}
{{ copy.authorization(iam_role, access_key_id, secret_access_key, session_token) }}
FORMAT AS CSV
TIMEFORMAT 'auto'
{%- if region %}
REGION {{ region }}
{%- endif %};
