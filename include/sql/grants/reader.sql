-- Least privilege, part 2: analysts and dashboards (the reader) read the star schema, and
-- nothing else: not staging (raw events), not the quarantine (raw bad lines), not the
-- bookkeeping tables. Run by the loader (the tables' owner) once the tables exist.
GRANT USAGE ON SCHEMA {{ schema }} TO {{ reader }};
GRANT SELECT ON {{ schema }}.songplays TO {{ reader }};
GRANT SELECT ON {{ schema }}.users TO {{ reader }};
GRANT SELECT ON {{ schema }}.songs TO {{ reader }};
GRANT SELECT ON {{ schema }}.artists TO {{ reader }};
GRANT SELECT ON {{ schema }}."time" TO {{ reader }};
