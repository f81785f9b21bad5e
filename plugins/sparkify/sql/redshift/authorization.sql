{#- How a Redshift COPY reads S3: the IAM role when one is configured (no secret in the SQL),
    else the AWS connection's keys, which the operator masks in every log and error. -#}
{% macro authorization(iam_role, access_key_id, secret_access_key, session_token) -%}
{%- if iam_role -%}
IAM_ROLE {{ iam_role }}
{%- else -%}
ACCESS_KEY_ID {{ access_key_id }}
SECRET_ACCESS_KEY {{ secret_access_key }}
{%- if session_token %}
SESSION_TOKEN {{ session_token }}
{%- endif %}
{%- endif %}
{%- endmacro %}
