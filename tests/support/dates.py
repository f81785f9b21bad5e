"""Dates the tests share."""

from __future__ import annotations

from datetime import datetime, timezone

#: The first day of the data the end-to-end, backfill, source and S3 tests generate.
START = datetime(2018, 11, 1, tzinfo=timezone.utc)
