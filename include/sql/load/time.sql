-- Selects the songplay start times of the run's interval that the time table lacks
-- (in time order, so the table's key index grows at its end).
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
    AND NOT EXISTS (SELECT 1 FROM "time" AS t WHERE t.start_time = sp.start_time)
ORDER BY sp.start_time
