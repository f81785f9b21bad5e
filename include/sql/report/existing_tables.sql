-- Lists which of the warehouse's tables exist in the current schema.
SELECT table_name
FROM information_schema.tables
WHERE table_schema = current_schema()
    AND table_name IN ('staging_events', 'staging_songs', 'staged_objects', 'songplays', 'users', 'songs', 'artists', 'time')
