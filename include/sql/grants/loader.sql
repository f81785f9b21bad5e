-- Least privilege, part 1: what the login of the sparkify_warehouse connection (the loader)
-- needs, run once by an administrator before the first DAG run. The loader creates and owns
-- the warehouse tables (create_tables), so it may lock, analyze and load them; it gets no
-- other schema, no right to create databases or roles, and no superuser.
{%- if dialect == 'redshift' %}
-- Staging COPYs into a temporary table first.
GRANT TEMP ON DATABASE {{ database }} TO {{ loader }};
{%- if iam_role %}
-- Only the staging role may be assumed by the loader's COPY (after
-- REVOKE ASSUMEROLE ON ALL FROM PUBLIC FOR ALL, which an administrator runs once per cluster).
-- (sqlfluff's Redshift grammar lacks GRANT ASSUMEROLE, hence the noqa.)
GRANT ASSUMEROLE ON {{ iam_role }} TO {{ loader }} FOR COPY;  -- noqa: PRS
{%- endif %}
{%- endif %}
GRANT USAGE, CREATE ON SCHEMA {{ schema }} TO {{ loader }};
