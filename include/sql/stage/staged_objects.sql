-- Lists the source objects already staged into a table by any run.
SELECT object_key FROM staged_objects WHERE table_name = %(table_name)s;
