-- Counts a table's rows ({table} is filled in as a quoted identifier).
SELECT COUNT(*) FROM {table}
