-- Lists the source objects already staged into a table by any other run (this run's own batch
-- is being replaced; on the Redshift Data API this read runs before the batch deletes it).
SELECT object_key FROM staged_objects WHERE table_name = %(table_name)s AND batch_id <> %(batch_id)s;
