"""Where the project's parts are, for tests that read its files or run its tools."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SQL_DIR = REPO / "include" / "sql"
