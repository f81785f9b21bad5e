-- PostgreSQL: streams parsed rows into the staging table.
COPY {{ table }} ({{ columns }}, batch_id) FROM STDIN;
