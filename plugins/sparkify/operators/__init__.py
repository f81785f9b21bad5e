"""The operators: staging the bucket into the warehouse, loading the star schema, checking it."""
