-- PostgreSQL: the type of every column of a staging table, for the binary COPY and the record checks.
SELECT a.attname, format_type(a.atttypid, NULL), a.atttypid
FROM pg_attribute AS a
WHERE a.attrelid = %(table_name)s::regclass AND a.attnum > 0 AND NOT a.attisdropped;
