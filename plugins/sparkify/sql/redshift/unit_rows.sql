-- Redshift: a staging unit's rows, once its COPYs filled the temporary table: those outside the unit's
-- hours go to the quarantine, the rest are tagged with the unit's key and this run's batch, and each member
-- is recorded (a CSV written beside the manifest) with the unit's row count and the hours its rows cover.
-- Records whose time is missing or outside what the unit may hold (its key's hours and the plausibility
-- window) would land in an hour no run of it loads: they are bad records, kept in the quarantine under the
-- unit without a line number (Redshift keeps none past the COPY) and counted against max_errors.
INSERT INTO quarantine (table_name, batch_id, object_uri, line_number, error, raw_line, recorded_at)
SELECT
    %(table_name)s, %(batch_id)s, {{ unit_uri }}, 0,
    'ts missing or outside {{ time_low }} to {{ time_high }} (the unit''s hours)',
    NULL,
    %(staged_at)s
FROM {{ incoming }}
WHERE {{ time_column }} IS NULL
    OR {{ time_column }} < {{ time_low }}
    OR {{ time_column }} >= {{ time_high }};
DELETE FROM {{ incoming }}
WHERE {{ time_column }} IS NULL
    OR {{ time_column }} < {{ time_low }}
    OR {{ time_column }} >= {{ time_high }};
INSERT INTO {{ table }} ({{ columns }}, object_key, batch_id)
SELECT {{ columns }}, {{ unit_key }}, %(batch_id)s FROM {{ incoming }};
{% with s3_uri = records_uri %}{% include 'redshift/record_objects_from_s3.sql' %}{% endwith %}
UPDATE staged_objects
SET row_count = unit_rows.row_count, first_ts = unit_rows.first_ts, last_ts = unit_rows.last_ts
FROM (
    SELECT
        COUNT(*) AS row_count,
        MIN({{ time_column }}) AS first_ts,
        MAX({{ time_column }}) AS last_ts
    FROM {{ incoming }}
) AS unit_rows
WHERE staged_objects.table_name = %(table_name)s
    AND LEFT(staged_objects.object_key, {{ unit_length }}) = {{ unit_key }};
DROP TABLE {{ incoming }};
