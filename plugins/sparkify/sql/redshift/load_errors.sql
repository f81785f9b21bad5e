-- Redshift: the records the last COPY of this session rejected, read after it failed on more of them
-- than its MAXERROR and its transaction was rolled back. Their objects are set aside, as on PostgreSQL:
-- the catalog's manifest COPY says only that it failed, these rows say which files. SYS_LOAD_ERROR_DETAIL
-- keeps them past the rollback, and PG_LAST_COPY_ID() names a COPY that failed on its data.
SELECT
    TRIM(file_name),
    line_number,
    TRIM(column_name),
    TRIM(error_message)
FROM sys_load_error_detail
WHERE query_id = PG_LAST_COPY_ID()
ORDER BY file_name, line_number;
