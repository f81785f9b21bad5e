-- Redshift: the temporary table a staging unit's COPYs fill, holding the JSON columns only (COPY cannot
-- fill object_key or batch_id). Its DISTSTYLE is explicit: CTAS would pick one from the query plan (best
-- effort with a LIMIT), and COPY into a table left to AUTO distribution runs a COPY ANALYZE that STATUPDATE
-- OFF does not stop.
CREATE TEMP TABLE {{ incoming }} DISTSTYLE EVEN AS SELECT {{ columns }} FROM {{ table }} LIMIT 0;  -- noqa: AM09
