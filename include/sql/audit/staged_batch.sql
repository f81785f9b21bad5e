-- Before a load replaces facts with the run's batch of a staging table: what its staging task recorded
-- for the batch (latest record first), and whether any row of the batch is still staged (a retention
-- purge deletes old batches; stage/purge_batches.sql). On PostgreSQL the purge lock is held shared
-- until the load commits, so no purge deletes the batch between this check and the load's read.
{%- import 'macros/dialect.sql' as d %}
{{ d.purge_lock(dialect, table, shared=true) }}
WITH staged AS (
    SELECT COUNT(*) AS row_count
    FROM (SELECT 1 AS present FROM {{ table }} WHERE batch_id = %(batch_id)s LIMIT 1) AS one_row  -- noqa: AM09
)

SELECT a.task_id, a.rows_written, a.object_count, a.recorded_at, staged.row_count
FROM load_audit AS a
CROSS JOIN staged
WHERE a.batch_id = %(batch_id)s AND a.table_name = %(table_name)s
ORDER BY a.recorded_at DESC;
