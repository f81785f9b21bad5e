-- Selects the distinct songplay start times of the hours loaded (in time order, so the table's key
-- index grows at its end); replacing those hours drops the times of withdrawn plays. The times are
-- made distinct first, then broken down, so each part is computed once per time.
SELECT
    plays.start_time,
    EXTRACT(HOUR FROM plays.start_time)::INTEGER AS hour,
    EXTRACT(DAY FROM plays.start_time)::INTEGER AS day,
    EXTRACT(WEEK FROM plays.start_time)::INTEGER AS week,
    EXTRACT(MONTH FROM plays.start_time)::INTEGER AS month,
    EXTRACT(YEAR FROM plays.start_time)::INTEGER AS year,
    EXTRACT(DOW FROM plays.start_time)::INTEGER AS weekday
FROM (
    SELECT DISTINCT sp.start_time
    FROM songplays AS sp
    WHERE sp.start_time >= %(interval_start)s
        AND sp.start_time < %(interval_end)s
) AS plays
ORDER BY plays.start_time
