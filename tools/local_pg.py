"""The embedded PostgreSQL of local runs and tests (the ``pgserver`` package).

No server to install and no root needed: the server's files live in
``.local/pg`` (or ``$SPARKIFY_PGDATA``), it listens on a Unix socket only, and
it keeps running between commands until ``python tools/local_pg.py stop``.
It holds two databases: ``airflow`` (Airflow's metadata) and ``sparkify``
(the default warehouse).

    python tools/local_pg.py start | stop | status | uri [DATABASE]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# pgserver warns when XDG_RUNTIME_DIR is unset (it falls back to /tmp), and logs at
# interpreter exit, after pytest may have closed the streams: neither helps a user.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
logging.getLogger("pgserver").setLevel(logging.WARNING)


def data_dir() -> Path:
    return Path(os.environ.get("SPARKIFY_PGDATA", REPO / ".local" / "pg")).resolve()


@cache
def _server():
    """Start the server if it is not running (pgserver serialises this across processes)."""
    import pgserver

    path = data_dir()
    path.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(path, cleanup_mode=None)


def ensure_server() -> str:
    """Start the server if needed; the URI of its ``postgres`` database."""
    return _server().get_uri("postgres")


def database_uri(dbname: str) -> str:
    """A libpq URI for a database of the embedded server (``?host=`` names its socket folder)."""
    return _server().get_uri(dbname)


def ensure_database(dbname: str) -> str:
    """Create the database if it is missing (safe when two processes race); its URI."""
    import psycopg
    from psycopg import errors, sql

    with psycopg.connect(ensure_server(), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            try:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                pass  # another process created it first
    return database_uri(dbname)


def is_running() -> bool:
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir()) if (data_dir() / "PG_VERSION").exists() else None
    return info is not None and info.is_running()


def stop_server() -> bool:
    """Stop the server if it runs; whether it did."""
    if not is_running():
        return False
    from pgserver._commands import pg_ctl

    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    pg_ctl(["-w", "stop"], pgdata=data_dir(), user=user)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status", "uri"])
    parser.add_argument("database", nargs="?", default="sparkify")
    args = parser.parse_args(argv)
    if args.command == "start":
        ensure_database("airflow")
        ensure_database("sparkify")
        print(f"embedded PostgreSQL running in {data_dir()}")
    elif args.command == "stop":
        print("stopped" if stop_server() else "not running")
    elif args.command == "status":
        print(f"running in {data_dir()}" if is_running() else "not running")
        return 0 if is_running() else 3
    else:
        print(ensure_database(args.database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
