"""End to end: the real DAG run by `make backfill`'s tool (and `dag.test()` runners) over generated data,
compared with the independent reference; faults, late data, alerts, the generator and the report."""
