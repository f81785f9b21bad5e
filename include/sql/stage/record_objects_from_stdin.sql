-- PostgreSQL: records the objects this run staged, so later runs skip them.
-- sqlfluff:dialect:postgres
COPY staged_objects (table_name, object_key, batch_id, staged_at) FROM STDIN;
