-- Redshift through the Data API: the records a staging unit's COPY rejected, read after its batch failed on
-- more of them than MAXERROR (PG_LAST_COPY_ID() is the session's, and each Data API call has its own): the
-- load errors of the unit's objects since the batch was received. Their objects are set aside, as a driver's.
SELECT
    TRIM(file_name),
    line_number,
    TRIM(column_name),
    TRIM(error_message)
FROM sys_load_error_detail
WHERE start_time >= %(batch_received_at)s
    AND LEFT(TRIM(file_name), {{ unit_uri_length }}) = {{ unit_uri }}
ORDER BY file_name, line_number;
