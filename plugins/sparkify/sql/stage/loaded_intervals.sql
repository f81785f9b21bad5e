-- Lists the intervals runs have loaded (recorded by their staging) that overlap some hours: a change to
-- an object restates only the hours loaded before.
SELECT interval_start, interval_end
FROM loaded_intervals
WHERE table_name = %(table_name)s
    AND interval_start < %(hours_end)s
    AND interval_end > %(hours_start)s;
