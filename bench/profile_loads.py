"""Where a big interval's time goes, statement by statement: EXPLAIN (ANALYZE, BUFFERS) of every load and check.

    python bench/profile_loads.py [--source DIR] [--start 2018-11-01T00:00] [--hours 1] [--out FILE]

Stages the interval's events and songs into a fresh warehouse (``bench_profile``) with the DAG's own
staging tasks, then runs each load and check task of the DAG as a run would, in order, with every
statement it sends that reads or writes rows run under ``EXPLAIN (ANALYZE, BUFFERS)`` (a SELECT is run
again, to give the task its rows; an INSERT, UPDATE or DELETE runs once, under EXPLAIN, which executes
it). Prints each task's seconds and each statement's, and writes the plans to ``--out`` (default
``.local/bench/profile.txt``). The default source is the big hour of ``bench/big_hour.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pipeline import DATA, fresh_warehouse, pipeline_tasks

#: Statements EXPLAIN ANALYZE can run; the first word decides.
EXPLAINED = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")
_CHILD_ROWS = re.compile(r"\(actual time=[0-9.]+\.\.[0-9.]+ rows=(\d+) loops=(\d+)\)")


class ExplainingCursor:
    """A cursor that runs each statement under EXPLAIN (ANALYZE, BUFFERS) and keeps the plans."""

    def __init__(self, cursor: Any, task_id: str, plans: list, explain: bool = True) -> None:
        self._cursor, self._task_id, self._plans, self._explain = cursor, task_id, plans, explain
        self.rowcount = -1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def execute(self, statement: str, parameters: Any = None) -> None:
        code = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
        verb = code.lstrip().split(None, 1)[0].upper() if code.strip() else ""
        began = time.perf_counter()
        if verb not in EXPLAINED or not self._explain:
            self._cursor.execute(statement, parameters)
            self.rowcount = self._cursor.rowcount
            self._plans.append((self._task_id, statement, time.perf_counter() - began, None))
            return
        self._cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = "\n".join(row[0] for row in self._cursor.fetchall())
        seconds = time.perf_counter() - began
        self._plans.append((self._task_id, statement, seconds, plan))
        if verb in ("SELECT", "WITH"):
            self._cursor.execute(statement, parameters)
            self.rowcount = self._cursor.rowcount
        else:  # the rows the modifying node got from its plan below it
            found = _CHILD_ROWS.findall(plan.split("\n", 2)[1] if plan.count("\n") else "")
            self.rowcount = int(found[0][0]) * int(found[0][1]) if found else -1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DATA / "big-hour")
    parser.add_argument("--start", default="2018-11-01T00:00")
    parser.add_argument("--hours", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DATA / "profile.txt")
    parser.add_argument("--no-explain", action="store_true", help="only time the statements, run as they are")
    args = parser.parse_args(argv)

    from airflow.sdk.execution_time.context import VariableAccessor

    import sparkify.operators.base as warehouse_operator

    start = datetime.fromisoformat(args.start).replace(tzinfo=timezone.utc)
    os.environ["AIRFLOW_VAR_SPARKIFY_SOURCE"] = args.source.resolve().as_uri()
    fresh_warehouse("bench_profile")
    tasks, environment, params = pipeline_tasks()
    end = start + timedelta(hours=args.hours)
    context = {"run_id": "profile", "data_interval_start": start, "data_interval_end": end, "params": params,
               "var": {"value": VariableAccessor(deserialize_json=False)}}
    plans: list = []
    plain = warehouse_operator.transaction
    current = {"task_id": ""}

    @contextmanager
    def explaining(hook: Any, dialect: str):
        with plain(hook, dialect) as cursor:
            yield ExplainingCursor(cursor, current["task_id"], plans, explain=not args.no_explain)

    warehouse_operator.transaction = explaining  # type: ignore[assignment]
    seconds = {}
    for task_id, task in tasks.items():
        current["task_id"] = task_id
        task.render_template_fields(context, environment)
        began = time.perf_counter()
        task.execute(context)
        seconds[task_id] = time.perf_counter() - began
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as out:
        for task_id, statement, took, plan in plans:
            out.write(f"==== {task_id}: {took:.3f} s\n{statement.strip()}\n")
            if plan:
                out.write(f"---- plan\n{plan}\n")
            out.write("\n")
    for task_id, took in seconds.items():
        print(f"{task_id:<20} {took:7.2f} s")
        for owner, statement, spent, _ in plans:
            if owner == task_id and spent >= 0.05:
                print(f"    {spent:7.2f} s  {' '.join(statement.split())[:100]}")
    print(f"plans in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
