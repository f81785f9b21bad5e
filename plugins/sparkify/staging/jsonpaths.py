"""Redshift JSONPaths files: the source keys a staging table takes, in column order. Redshift's COPY
reads them from S3; the PostgreSQL path reads the same files (under ``include/``) to map keys to columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

from airflow.sdk.exceptions import AirflowFailException

from sparkify.warehouse.sql import INCLUDE_DIR

_JSONPATH = re.compile(r"""\$(?:\['([^']+)'\]|\.([A-Za-z_][A-Za-z0-9_]*))""")


def snake_case(key: str) -> str:
    """A JSON key as its column: ``firstName`` → ``first_name``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()


def read_jsonpaths(path: str | Path) -> list[str]:
    """The source keys named by a Redshift JSONPaths file, in column order."""
    document = json.loads((INCLUDE_DIR / path).read_text())
    keys = []
    for expression in document["jsonpaths"]:
        match = _JSONPATH.fullmatch(expression)
        if not match:
            raise AirflowFailException(f"{path}: only top-level JSONPaths are supported, got {expression!r}")
        keys.append(match.group(1) or match.group(2))
    return keys
