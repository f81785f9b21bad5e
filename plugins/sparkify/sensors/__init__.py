"""Sensors: waiting for what a run needs without holding a worker slot."""
