{#- Every difference between the PostgreSQL and the Redshift SQL lives here.
    Templates import this file and call a macro with the warehouse dialect,
    "postgres" or "redshift" (the warehouse connection's conn_type). -#}

{#- Redshift places rows by DISTSTYLE/DISTKEY and orders blocks by SORTKEY;
    PostgreSQL has neither and uses the indexes below instead. -#}
{% macro table_layout(dialect, diststyle, distkey=none, sortkey=none) -%}
{%- if dialect == 'redshift' %}
DISTSTYLE {{ diststyle }}{% if distkey %} DISTKEY ({{ distkey }}){% endif %}{% if sortkey %} SORTKEY ({{ sortkey }}){% endif %}
{%- endif -%}
{%- endmacro %}

{#- Redshift has no secondary indexes: its SORTKEY does that job. On PostgreSQL
    CREATE INDEX IF NOT EXISTS locks its table (SHARE) before it finds the index,
    so create_tables would wait behind every load in flight and, holding the locks
    of the tables before, deadlock with a load that then writes load_audit: the
    index is looked up first and created only when missing. -#}
{% macro index(dialect, name, table, columns) -%}
{%- if dialect != 'redshift' -%}
DO $$ BEGIN
    IF to_regclass('{{ name }}') IS NULL THEN
        CREATE INDEX {{ name }} ON {{ table }} ({{ columns }});
    END IF;
END $$;
{%- endif -%}
{%- endmacro %}

{#- Serialises concurrent writers of one table until commit. Redshift's LOCK
    takes no mode (always exclusive); on PostgreSQL EXCLUSIVE still lets
    readers query the table while a load runs. -#}
{% macro lock(dialect, table) -%}
{%- if dialect == 'redshift' -%}
LOCK {{ table }}
{%- else -%}
LOCK TABLE {{ table }} IN EXCLUSIVE MODE
{%- endif -%}
{%- endmacro %}

{#- Concurrent CREATE TABLE IF NOT EXISTS can race on PostgreSQL's catalog;
    a transaction-scoped advisory lock makes the DDL one-at-a-time.
    Redshift serialises DDL itself. -#}
{% macro ddl_lock(dialect) -%}
{%- if dialect != 'redshift' -%}
SELECT pg_advisory_xact_lock(hashtext('sparkify_dwh.create_tables'));
{%- endif -%}
{%- endmacro %}

{#- Memory for one load's sorts and hashes, for its transaction only. Redshift
    sizes query memory through WLM instead. -#}
{% macro load_settings(dialect) -%}
{%- if dialect != 'redshift' -%}
SET LOCAL work_mem = '256MB';
{%- endif -%}
{%- endmacro %}

{#- Fresh planner statistics after a big load, so the next statements of the run
    plan for the rows that are there (PostgreSQL does not wait for autovacuum here).
    Redshift analyzes on its own after COPY and large inserts. -#}
{% macro analyze(dialect, table) -%}
{%- if dialect != 'redshift' -%}
ANALYZE {{ table }};
{%- endif -%}
{%- endmacro %}

{#- Keeps a retention purge of a staging table and the loads that read its batches apart until
    commit (PostgreSQL). The purge tries the lock exclusively and skips when it cannot have it
    (the next run purges): it never waits, so it cannot deadlock with a run restaging an old
    batch. A guarded load holds it shared, so no purge deletes its batch between the check and
    the load's read. Redshift needs none: a transaction reads one snapshot, and a conflicting
    purge fails with a serializable isolation error (and retries) instead. -#}
{% macro purge_lock(dialect, table, shared=false) -%}
{%- if dialect != 'redshift' -%}
{%- if shared -%}
SELECT pg_advisory_xact_lock_shared(hashtext('sparkify_dwh.purge.{{ table }}'));
{%- else -%}
SELECT pg_try_advisory_xact_lock(hashtext('sparkify_dwh.purge.{{ table }}'));
{%- endif -%}
{%- endif -%}
{%- endmacro %}
