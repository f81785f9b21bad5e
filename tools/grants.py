"""Print the grants of the warehouse's two roles (include/sql/grants/), for an administrator.

    python tools/grants.py loader --loader sparkify_loader [--schema public] [--dialect redshift
                                  --database dev --iam-role arn:aws:iam::…:role/sparkify-copy]
    python tools/grants.py reader --reader sparkify_reader [--schema public]

Role, schema and database names are checked like every identifier the operators use.
"""

from __future__ import annotations

import argparse
import sys

from sparkify.warehouse.sql import quote_identifier, quote_literal, render_text


def render_grants(part: str, *, dialect: str = "postgres", iam_role: str | None = None, **names: str) -> str:
    """The SQL of ``grants/<part>.sql`` with the given role, schema and database names quoted."""
    quoted = {key: quote_identifier(value) for key, value in names.items()}
    role = quote_literal(iam_role) if iam_role else None
    return render_text(f"grants/{part}.sql", dialect=dialect, iam_role=role, **quoted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["loader", "reader"])
    parser.add_argument("--dialect", choices=["postgres", "redshift"], default="postgres")
    parser.add_argument("--schema", default="public")
    parser.add_argument("--loader", default="sparkify_loader")
    parser.add_argument("--reader", default="sparkify_reader")
    parser.add_argument("--database", default="dev", help="Redshift: the database of the TEMP grant")
    parser.add_argument("--iam-role", default=None, help="Redshift: the ARN COPY assumes")
    args = parser.parse_args(argv)
    if args.part == "loader":
        names = {"loader": args.loader, "schema": args.schema, "database": args.database}
    else:
        names = {"reader": args.reader, "schema": args.schema}
    print(render_grants(args.part, dialect=args.dialect, iam_role=args.iam_role, **names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
