"""Operators: the four operators and their parts (sources, readings, Data API, lineage, security) run
directly against a real PostgreSQL or the recorded Redshift path."""
