-- Retention of an append-only staging table (staging_events): deletes the batches staged longer ago
-- than the retention, by the time their staging task recorded them in load_audit, not by their data
-- interval, so a backfill of old hours keeps what it has just staged. Never the run's own batch;
-- load_audit and quarantine keep their history. Runs in the staging task's transaction, after its
-- batch is in. The operator runs the statements one by one, in this order: (PostgreSQL) the purge
-- lock, whose refusal skips the purge; the batches to purge, with their staging time; their deletion.
{%- import 'macros/dialect.sql' as d %}
{{ d.purge_lock(dialect, table) }}
SELECT a.batch_id, MAX(a.recorded_at) AS staged_at
FROM load_audit AS a
WHERE a.table_name = %(table_name)s
    AND a.batch_id <> %(batch_id)s
    AND EXISTS (SELECT 1 FROM {{ table }} AS s WHERE s.batch_id = a.batch_id)
GROUP BY a.batch_id
HAVING MAX(a.recorded_at) < %(purge_before)s
ORDER BY staged_at;
DELETE FROM {{ table }}
WHERE batch_id IN (
    SELECT batch_id FROM load_audit
    WHERE table_name = %(table_name)s AND batch_id <> %(batch_id)s
    GROUP BY batch_id
    HAVING MAX(recorded_at) < %(purge_before)s
);
