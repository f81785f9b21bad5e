-- The time of a catalog's last full listing that committed: with the notification queue set, a run
-- lists the catalog again (a reconciliation) once this is older than the reconciliation cadence.
SELECT MAX(listed_at)
FROM catalog_listings
WHERE table_name = %(table_name)s;
