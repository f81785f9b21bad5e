-- PostgreSQL: streams parsed rows into the staging table.
-- sqlfluff:dialect:postgres
COPY {{ table }} ({{ columns }}, batch_id) FROM STDIN;
