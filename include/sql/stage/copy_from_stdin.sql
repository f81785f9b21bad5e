-- PostgreSQL: streams parsed rows into the staging table, in binary (no text to parse on the server).
-- sqlfluff:dialect:postgres
-- (sqlfluff's PostgreSQL grammar has no option list after FROM STDIN, hence the noqa.)
COPY {{ table }} ({{ columns }}, batch_id) FROM STDIN WITH (FORMAT BINARY);  -- noqa: PRS
