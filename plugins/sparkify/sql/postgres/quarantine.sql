-- PostgreSQL: keeps one rejected record of this run's batch.
INSERT INTO quarantine (table_name, batch_id, object_uri, line_number, error, raw_line, recorded_at)
VALUES (
    %(table_name)s, %(batch_id)s, %(object_uri)s, %(line_number)s, %(error)s, %(raw_line)s, %(recorded_at)s
);
