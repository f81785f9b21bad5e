-- Records the run's interval as loaded, in its staging transaction (once per run, whatever its attempts):
-- from now on a change to the objects of these hours restates them.
DELETE FROM loaded_intervals WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;
INSERT INTO loaded_intervals (table_name, batch_id, interval_start, interval_end, recorded_at)
VALUES (%(table_name)s, %(batch_id)s, %(interval_start)s, %(interval_end)s, %(recorded_at)s);
