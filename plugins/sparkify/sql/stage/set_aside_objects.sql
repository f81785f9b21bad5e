-- Lists the objects of a table set aside as bad, and why: a catalog names them in every run until they change.
SELECT object_key, rejected_reason
FROM staged_objects
WHERE table_name = %(table_name)s AND rejected_at IS NOT NULL;
