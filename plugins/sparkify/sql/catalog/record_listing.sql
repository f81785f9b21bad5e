-- Records a full listing of a catalog, committed with what it staged. found_by_listing_only: the files
-- it staged that no notification of the run named (NULL without a queue): lost or late notifications.
INSERT INTO catalog_listings (table_name, batch_id, listed_at, objects_listed, objects_staged, found_by_listing_only)
VALUES (
    %(table_name)s, %(batch_id)s, %(listed_at)s, %(objects_listed)s, %(objects_staged)s, %(found_by_listing_only)s
);
