"""Print what landed in the warehouse: rows per table, the top songs, plays per hour.

    python tools/report.py [--warehouse postgresql://…]

The warehouse defaults to the embedded PostgreSQL's ``sparkify`` database. The
queries are the files in ``include/sql/report``. A table that does not exist
yet is reported as missing, not as an error: the report is also how to see
that a backfill has not run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from tools import local_pg
from tools.airflow_env import masked

REPORT_SQL = Path(__file__).resolve().parents[1] / "include" / "sql" / "report"
TABLES = ["songplays", "users", "songs", "artists", "time", "staging_events", "staging_songs"]
BAR_WIDTH = 40


def query(name: str) -> str:
    return (REPORT_SQL / name).read_text()


def report(connection: psycopg.Connection) -> str:
    """The report's text, from an open connection to the warehouse."""
    existing = {name for (name,) in connection.execute(query("existing_tables.sql"), {"tables": TABLES})}
    lines = ["Rows per table"]
    for table in TABLES:
        if table in existing:
            count_sql = sql.SQL(query("count_rows.sql")).format(table=sql.Identifier(table))
            (count,) = connection.execute(count_sql).fetchone()
            lines.append(f"  {table:<16}{count:>10,}")
        else:
            lines.append(f"  {table:<16}{'missing':>10}")
    if "songplays" not in existing:
        return "\n".join([*lines, "", "No songplays table yet: run `make backfill` (or `make demo`) first."])

    lines += ["", "Top songs"]
    if {"songs", "artists"} <= existing:
        top = connection.execute(query("top_songs.sql")).fetchall()
        lines += [f"  {plays:>5}  {title} — {artist or '(unknown artist)'}" for title, artist, plays in top]
        lines += [] if top else ["  (no play matches a catalog song yet)"]
    else:
        lines.append("  (no songs or artists table yet)")

    lines += ["", "Plays per hour (UTC, all days), # matched to the catalog, . not matched",
              f"  {'hour':<5} {'':<{BAR_WIDTH}} {'plays':>6} {'matched':>7}"]
    hours = connection.execute(query("plays_per_hour.sql")).fetchall()
    busiest = max((plays for _, plays, _ in hours), default=0)
    for hour, plays, matched in hours:
        width, matched_width = round(BAR_WIDTH * plays / busiest), round(BAR_WIDTH * matched / busiest)
        bar = "#" * matched_width + "." * (width - matched_width)
        lines.append(f"  {hour:02d}:00 {bar:<{BAR_WIDTH}} {plays:>6} {matched:>7}")
    lines += [] if hours else ["  (no songplays yet)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", default="", help="postgresql:// URI (default: the embedded PostgreSQL)")
    args = parser.parse_args(argv)
    warehouse = args.warehouse or local_pg.ensure_database("sparkify")
    try:
        connection = psycopg.connect(warehouse)
    except psycopg.OperationalError as error:
        print(f"cannot connect to the warehouse {masked(warehouse)}: {error}", file=sys.stderr)
        return 1
    with connection:
        print(f"Warehouse {masked(warehouse)}\n")
        print(report(connection))
    return 0


if __name__ == "__main__":
    sys.exit(main())
