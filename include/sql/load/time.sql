-- Selects the distinct songplay start times of the hours loaded (in time order, so the table's key
-- index grows at its end); replacing those hours drops the times of withdrawn plays.
SELECT DISTINCT
    sp.start_time,
    EXTRACT(HOUR FROM sp.start_time)::INTEGER AS hour,
    EXTRACT(DAY FROM sp.start_time)::INTEGER AS day,
    EXTRACT(WEEK FROM sp.start_time)::INTEGER AS week,
    EXTRACT(MONTH FROM sp.start_time)::INTEGER AS month,
    EXTRACT(YEAR FROM sp.start_time)::INTEGER AS year,
    EXTRACT(DOW FROM sp.start_time)::INTEGER AS weekday
FROM songplays AS sp
WHERE sp.start_time >= %(interval_start)s
    AND sp.start_time < %(interval_end)s
ORDER BY sp.start_time
