-- Records hours a staging task found changed outside its run's interval, and the object that changed.
INSERT INTO restatements (batch_id, table_name, object_uri, change, hours_start, hours_end, recorded_at)
VALUES (%(batch_id)s, %(table_name)s, %(object_uri)s, %(change)s, %(hours_start)s, %(hours_end)s, %(recorded_at)s);
