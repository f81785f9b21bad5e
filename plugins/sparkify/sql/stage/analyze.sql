-- Refreshes the staging table's planner statistics once the batch is in, on both warehouses: the run's
-- loads filter and join it next, and on Redshift its COPY ran with STATUPDATE OFF. Redshift skips the
-- ANALYZE when fewer rows than analyze_threshold_percent (10 % by default) changed since the last one,
-- so it costs something only while the table is young or after a big batch (a full catalog re-stage).
ANALYZE {{ table }};
