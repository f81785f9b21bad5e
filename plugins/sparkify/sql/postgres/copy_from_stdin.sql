-- PostgreSQL: streams parsed rows into the staging table, in binary (no text to parse on the server);
-- a table staged by time gets each row's object key too.
-- (sqlfluff's PostgreSQL grammar has no option list after FROM STDIN, hence the noqa.)
COPY {{ table }} ({{ columns }}{% if time_column %}, object_key{% endif %}, batch_id) FROM STDIN WITH (FORMAT BINARY);  -- noqa: PRS
