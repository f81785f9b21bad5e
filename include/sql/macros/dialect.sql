{#- Every difference between the PostgreSQL and the Redshift SQL inside a statement lives here
    (statements that exist on one warehouse only are files of their own, in the operators'
    plugins/sparkify/sql/postgres/ and redshift/ folders). Templates import this file with their
    context, `{% import 'macros/dialect.sql' as d with context %}`, whose `dialect` is "postgres"
    or "redshift" (the warehouse connection's conn_type). -#}

{#- Redshift places rows by DISTSTYLE/DISTKEY and orders blocks by SORTKEY;
    PostgreSQL has neither and uses the indexes below instead. -#}
{% macro table_layout(diststyle, distkey=none, sortkey=none) -%}
{%- if dialect == 'redshift' %}
DISTSTYLE {{ diststyle }}{% if distkey %} DISTKEY ({{ distkey }}){% endif %}{% if sortkey %} SORTKEY ({{ sortkey }}){% endif %}
{%- endif -%}
{%- endmacro %}

{#- Redshift has no secondary indexes: its SORTKEY does that job. On PostgreSQL
    CREATE INDEX IF NOT EXISTS locks its table (SHARE) before it finds the index,
    so create_tables would wait behind every load in flight and, holding the locks
    of the tables before, deadlock with a load that then writes load_audit: the
    index is looked up first and created only when missing. -#}
{% macro index(name, table, columns) -%}
{%- if dialect != 'redshift' -%}
DO $$ BEGIN
    IF to_regclass('{{ name }}') IS NULL THEN
        CREATE INDEX {{ name }} ON {{ table }} ({{ columns }});
    END IF;
END $$;
{%- endif -%}
{%- endmacro %}

{#- A table's primary key. Redshift only declares it (its planner trusts it; nothing enforces it).
    PostgreSQL enforces it with a B-tree index, whose columns are `leading` then `columns` when
    `leading` is given: one index then serves the key and the reads by `leading` (a range of time),
    where a key on `columns` alone would need a second index (inserting the big hour's 1.5 M plays:
    2.1 s with one index, 3.1 s with two; bench/README.md). `leading` must be determined by
    `columns` (songplays' start_time is its id's ts), so the key is exactly as unique either way. -#}
{% macro primary_key(columns, leading=none) -%}
{%- if dialect != 'redshift' and leading -%}
PRIMARY KEY ({{ leading }}, {{ columns }})
{%- else -%}
PRIMARY KEY ({{ columns }})
{%- endif -%}
{%- endmacro %}

{#- Serialises concurrent writers of one table until commit. Redshift's LOCK
    takes no mode (always exclusive); on PostgreSQL EXCLUSIVE still lets
    readers query the table while a load runs. -#}
{% macro lock(table) -%}
{%- if dialect == 'redshift' -%}
LOCK {{ table }}
{%- else -%}
LOCK TABLE {{ table }} IN EXCLUSIVE MODE
{%- endif -%}
{%- endmacro %}

{#- Concurrent CREATE TABLE IF NOT EXISTS can race on PostgreSQL's catalog;
    a transaction-scoped advisory lock makes the DDL one-at-a-time.
    Redshift serialises DDL itself. -#}
{% macro ddl_lock() -%}
{%- if dialect != 'redshift' -%}
SELECT pg_advisory_xact_lock(hashtext('sparkify_dwh.create_tables'));
{%- endif -%}
{%- endmacro %}

{#- Memory for one load's sorts and hashes, for its transaction only. Redshift
    sizes query memory through WLM instead. -#}
{% macro load_settings() -%}
{%- if dialect != 'redshift' -%}
SET LOCAL work_mem = '256MB';
{%- endif -%}
{%- endmacro %}

{#- Fresh planner statistics after a big load, so the next statements of the run
    plan for the rows that are there (PostgreSQL does not wait for autovacuum here).
    Redshift analyzes on its own after COPY and large inserts. -#}
{% macro analyze(table) -%}
{%- if dialect != 'redshift' -%}
ANALYZE {{ table }};
{%- endif -%}
{%- endmacro %}

{#- One staging task at a time per staging table, until commit: two runs that meet the same new
    object stage it once (the second finds it staged). PostgreSQL: an advisory lock, so loads
    still read the table meanwhile; Redshift: the table lock. -#}
{% macro staging_lock(table) -%}
{%- if dialect == 'redshift' -%}
LOCK {{ table }}
{%- else -%}
SELECT pg_advisory_xact_lock(hashtext('sparkify_dwh.staging.{{ table }}'))
{%- endif -%}
{%- endmacro %}

{#- A column added to a table after its first release: warehouses created before get it here.
    Looked up first, as an index is (ALTER TABLE locks its table before it finds the column).
    PostgreSQL only (Redshift's ADD COLUMN has no IF NOT EXISTS): on Redshift add it by hand once
    (docs/redshift.md, "Upgrading"). -#}
{% macro add_column(table, column, type) -%}
{%- if dialect != 'redshift' -%}
DO $$ BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = CURRENT_SCHEMA() AND table_name = '{{ table }}' AND column_name = '{{ column }}'
    ) THEN
        ALTER TABLE {{ table }} ADD COLUMN {{ column }} {{ type }};
    END IF;
END $$;
{%- endif -%}
{%- endmacro %}

{#- Staging tables of the earlier model (a batch of rows per run, staged_objects without versions)
    are dropped so they are built anew and staged again from the bucket; they hold nothing the
    bucket does not. PostgreSQL only: on Redshift drop them by hand once (docs/redshift.md, "Upgrading"). -#}
{% macro rebuild_batch_staging() -%}
{%- if dialect != 'redshift' -%}
DO $$ BEGIN
    IF to_regclass('staged_objects') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = CURRENT_SCHEMA() AND table_name = 'staged_objects' AND column_name = 'version'
    ) THEN
        DROP TABLE IF EXISTS staging_events, staging_songs, staged_objects;
    END IF;
END $$;
{%- endif -%}
{%- endmacro %}
