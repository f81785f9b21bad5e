-- Redshift: how many records this run's COPYs rejected into the quarantine.
SELECT COUNT(*) FROM quarantine WHERE table_name = %(table_name)s AND batch_id = %(batch_id)s;
