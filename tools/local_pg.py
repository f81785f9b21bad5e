"""The embedded PostgreSQL of local runs and tests (the ``pgserver`` package).

No server to install: the server's files live in ``.local/pg`` (or
``$SPARKIFY_PGDATA``), it listens on a Unix socket only (no port to clash
with), and it keeps running between commands until ``stop``. Run as root,
pgserver runs it as a ``pgserver`` system user it creates. It holds the
databases ``airflow`` (Airflow's metadata) and ``sparkify`` (the default
warehouse); tests add their own.

Starting and creating databases take a file lock beside the data folder, so
processes that start at once (two backfills, a test run and a backfill) get
one server and one copy of each database.

    python tools/local_pg.py start | stop | status | uri [DATABASE]
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import sys
import warnings
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The databases ``start`` creates.
DATABASES = ("airflow", "sparkify")
# pgserver warns when XDG_RUNTIME_DIR is unset (it falls back to /tmp), and logs at
# interpreter exit, after pytest may have closed the streams: neither helps a user.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
logging.getLogger("pgserver").setLevel(logging.WARNING)


def data_dir() -> Path:
    return Path(os.environ.get("SPARKIFY_PGDATA", REPO / ".local" / "pg")).resolve()


@contextmanager
def _locked() -> Generator[None, None, None]:
    """Hold the server's lock file (``<data dir>.lock``) until the block ends."""
    lock_path = data_dir().with_name(data_dir().name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def _postmaster(ready: bool = True):
    """The server's ``postmaster.pid`` record if a postgres process owns it (and, by default,
    reports itself ready), else None.

    pgserver trusts any live process with the recorded pid; after a reboot that
    pid may belong to something else, so the process must also be a postgres.
    """
    import psutil
    from pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(data_dir())
    except (AssertionError, ValueError):  # postgres is still writing the file
        return None
    try:
        alive = info is not None and info.is_running() and info.process.name() == "postgres"
    except psutil.Error:  # the process ended while we looked
        alive = False
    return info if alive and (info.status == "ready" or not ready) else None


def ensure_server() -> str:
    """Start the server unless it runs; the URI of its ``postgres`` maintenance database."""
    info = _postmaster()
    if info is None:
        import pgserver
        from pgserver.postgres_server import PostgresServer

        with _locked():
            info = _postmaster()
            if info is None:
                if _postmaster(ready=False) is None:
                    # A record left by a server that no longer runs: pgserver would believe it.
                    (data_dir() / "postmaster.pid").unlink(missing_ok=True)
                data_dir().mkdir(parents=True, exist_ok=True)
                # pgserver keeps one handle per data folder for the life of the process and hands it
                # back without starting anything: a server stopped since (a restart) needs a new one.
                PostgresServer._instances.pop(data_dir(), None)
                pgserver.get_server(data_dir(), cleanup_mode=None)
                info = _postmaster()
    if info is None:
        raise RuntimeError(f"the embedded PostgreSQL in {data_dir()} did not start: see {data_dir() / 'log'}")
    return info.get_uri(database="postgres")


def database_uri(dbname: str) -> str:
    """A libpq URI for a database of the running server (``?host=`` names its socket folder)."""
    info = _postmaster()
    if info is None:
        raise RuntimeError(f"the embedded PostgreSQL in {data_dir()} is not running")
    return info.get_uri(database=dbname)


def ensure_database(dbname: str) -> str:
    """Start the server and create the database if either is missing; its URI."""
    import psycopg
    from psycopg import sql

    admin_uri = ensure_server()
    with _locked(), psycopg.connect(admin_uri, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return database_uri(dbname)


def stop_server() -> bool:
    """Stop the server if it runs (fast shutdown: open sessions are ended); whether it did."""
    from pgserver._commands import pg_ctl

    with _locked():
        if _postmaster() is None:
            return False
        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir(), user=user)
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status", "uri"])
    parser.add_argument("database", nargs="?", default="sparkify", help="for uri (default: sparkify)")
    args = parser.parse_args(argv)
    if args.command == "start":
        for database in DATABASES:
            ensure_database(database)
        print(f"embedded PostgreSQL running in {data_dir()}: {ensure_server()}")
    elif args.command == "stop":
        print("stopped" if stop_server() else "not running")
    elif args.command == "status":
        info = _postmaster()
        print(f"running (pid {info.pid}) in {data_dir()}: {info.get_uri()}" if info else "not running")
        return 0 if info else 3
    else:
        print(ensure_database(args.database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
