-- Redshift: records the objects a manifest COPY staged (listed in a CSV written beside the manifest): a catalog's
-- new or changed files, a staging unit's members.
{%- import 'redshift/authorization.sql' as copy %}
COPY staged_objects (table_name, object_key, version, batch_id, staged_at, used_at)
FROM {{ s3_uri }}
{{ copy.authorization(iam_role, access_key_id, secret_access_key, session_token) }}
FORMAT AS CSV
TIMEFORMAT 'auto'
{%- if region %}
REGION {{ region }}
{%- endif %};
