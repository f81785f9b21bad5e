-- Lists which of the given tables (%(tables)s, a list of names) exist in the current schema.
SELECT table_name
FROM information_schema.tables
WHERE table_schema = CURRENT_SCHEMA()
    AND table_name = ANY(%(tables)s)
