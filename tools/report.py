"""Print what landed in the warehouse: rows per table, top songs, plays per hour.

    python tools/report.py [--warehouse postgresql://…]

The queries are the files in include/sql/report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import local_pg  # noqa: E402

REPORT_SQL = Path(__file__).resolve().parents[1] / "include" / "sql" / "report"
TABLES = ["staging_events", "staging_songs", "staged_objects", "songplays", "users", "songs", "artists", "time"]
BAR_WIDTH = 40


def query(name: str) -> str:
    return (REPORT_SQL / name).read_text()


def report(connection: psycopg.Connection) -> str:
    existing = {row[0] for row in connection.execute(query("existing_tables.sql"))}
    lines = ["Rows per table"]
    for table in TABLES:
        if table in existing:
            count_sql = sql.SQL(query("count_rows.sql")).format(table=sql.Identifier(table))
            (count,) = connection.execute(count_sql).fetchone()
            lines.append(f"  {table:<16}{count:>10,}")
        else:
            lines.append(f"  {table:<16}{'missing':>10}")
    if "songplays" not in existing:
        return "\n".join(lines + ["", "No songplays table yet: run `make backfill` first."])

    lines += ["", "Top songs"]
    top = connection.execute(query("top_songs.sql")).fetchall()
    top_lines = [f"  {plays:>5}  {title} — {artist}" for title, artist, plays in top]
    lines += top_lines or ["  (no play matches the catalog)"]

    lines += ["", "Plays per hour (UTC), # matched to the catalog"]
    hours = connection.execute(query("plays_per_hour.sql")).fetchall()
    busiest = max((plays for _, plays, _ in hours), default=0)
    for hour, plays, matched in hours:
        width = round(BAR_WIDTH * plays / busiest) if busiest else 0
        matched_width = round(BAR_WIDTH * matched / busiest) if busiest else 0
        bar = "#" * matched_width + "." * (width - matched_width)
        lines.append(f"  {hour:02d}:00 {bar:<{BAR_WIDTH}} {plays:>6} {matched:>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", default="", help="postgresql:// URI (default: the embedded PostgreSQL)")
    args = parser.parse_args(argv)
    with psycopg.connect(args.warehouse or local_pg.ensure_database("sparkify")) as connection:
        print(report(connection))
    return 0


if __name__ == "__main__":
    sys.exit(main())
