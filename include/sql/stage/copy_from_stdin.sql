-- PostgreSQL: streams parsed rows into the staging table, in binary (no text to parse on the server).
COPY {{ table }} ({{ columns }}, batch_id) FROM STDIN (FORMAT BINARY);
