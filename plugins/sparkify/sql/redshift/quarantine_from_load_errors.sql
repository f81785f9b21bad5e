-- Redshift: keeps the records the last COPY rejected (at most its MAXERROR) with this run's batch.
-- SYS_LOAD_ERROR_DETAIL serves provisioned clusters and Serverless alike; it has no raw text.
INSERT INTO quarantine (table_name, batch_id, object_uri, line_number, error, raw_line, recorded_at)
SELECT
    %(table_name)s,
    %(batch_id)s,
    TRIM(file_name),
    line_number,
    LEFT(TRIM(column_name) || ': ' || TRIM(error_message), 1024),
    NULL,
    GETDATE()
FROM sys_load_error_detail
WHERE query_id = PG_LAST_COPY_ID();
