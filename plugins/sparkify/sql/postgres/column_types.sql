-- PostgreSQL: the type of every column of a staging table, for the binary COPY and the record checks.
SELECT a.attname, FORMAT_TYPE(a.atttypid, NULL), a.atttypid
FROM pg_attribute AS a
WHERE a.attrelid = %(table_name)s::REGCLASS AND a.attnum > 0 AND NOT a.attisdropped;
