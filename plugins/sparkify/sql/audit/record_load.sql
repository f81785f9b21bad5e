-- Records what one task did for one run and table, replacing the record of an earlier attempt
-- (runs in the task's own transaction, so the record and the data commit together).
DELETE FROM load_audit WHERE batch_id = %(batch_id)s AND task_id = %(task_id)s AND table_name = %(table_name)s;
INSERT INTO load_audit (
    batch_id, task_id, table_name, interval_start, interval_end,
    rows_read, rows_written, rows_rejected, object_count, source_objects, recorded_at
) VALUES (
    %(batch_id)s, %(task_id)s, %(table_name)s, %(interval_start)s, %(interval_end)s,
    %(rows_read)s, %(rows_written)s, %(rows_rejected)s, %(object_count)s, %(source_objects)s, %(recorded_at)s
);
