"""Run DAG runs with ``dag.test()`` in one process, for the fault and late-data tests.

    python -m tests.support.dag_runner --source URI --warehouse URI [--dag sparkify_dwh] [--late-minutes N]
        START[@TASK] ...

Unlike ``make backfill`` it takes no per-day lock, so several of these processes
run hours of the same day at once, as a scheduler with ``max_active_runs`` above
one does. Each START is an interval start (ISO, UTC); the run is a manual run
at START plus ``--late-minutes`` (less than the interval's length), which loads
the interval START falls in, so two processes given different minutes load the
same interval as two runs with their own run ids. ``@TASK``
re-runs one task of the run: ``dag.test()`` clears the run (as ``airflow tasks
clear`` does) and every other task is marked success, not run again.

Prints one ``RESULT {json}`` line per run: run id, state, and the try number of
every task that ran more than once. ``start_runner`` starts it from a test, ``runner_results``
and ``finish_runner`` read what it printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from tools import local_pg
from tools.airflow_env import airflow_environ
from tools.backfill import MetadataLocks, load_dags, migrate_if_needed, output_to, parse_hour


def start_runner(source: Path, warehouse: str, *runs: str, dag: str = "sparkify_dwh", late_minutes: int = 0,
                 env: dict | None = None):
    """This runner: dag.test() runs in a process of their own, without make backfill's day lock."""
    command = [sys.executable, "-m", "tests.support.dag_runner", "--source", source.as_uri(),
               "--warehouse", warehouse, "--dag", dag, "--late-minutes", str(late_minutes), *runs]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def runner_results(process: subprocess.Popen) -> list[dict]:
    """The runner's results, whatever their state."""
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stdout[-3000:] + stderr[-5000:]
    results = [json.loads(line.removeprefix("RESULT ")) for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert results, stdout[-3000:] + stderr[-5000:]
    return results


def finish_runner(process: subprocess.Popen) -> list[dict]:
    """The runner's results, each run checked to have succeeded."""
    results = runner_results(process)
    assert all(result["state"] == "success" for result in results), results
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--dag", default="sparkify_dwh", choices=["sparkify_dwh", "sparkify_dwh_daily"])
    parser.add_argument("--late-minutes", type=int, default=0)
    parser.add_argument("runs", nargs="+", metavar="START[@TASK]")
    args = parser.parse_args()
    os.environ.update(airflow_environ(args.warehouse, args.source))
    log_path = Path(os.environ["AIRFLOW_HOME"], "logs", "fault-tests", f"{os.getpid()}.log")
    with output_to(log_path) as console:
        with MetadataLocks(local_pg.database_uri("airflow"), console).hold("the metadata database setup"):
            migrate_if_needed()
        dag = load_dags(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])[args.dag]
        for spec in args.runs:
            start, _, task = spec.partition("@")
            logical_date = parse_hour(start) + timedelta(minutes=args.late_minutes)
            dag_run = dag.test(
                logical_date=logical_date,
                run_after=logical_date,
                mark_success_pattern=f"(?!{task}$).*" if task else None,
            )
            retried = {ti.task_id: ti.try_number for ti in dag_run.get_task_instances() if ti.try_number > 1}
            result = {"start": start, "task": task or None, "run_id": dag_run.run_id, "state": str(dag_run.state),
                      "batch_id": f"{dag_run.dag_id}/{dag_run.run_id}", "retried": retried}
            print("RESULT", json.dumps(result), file=console, flush=True)


if __name__ == "__main__":
    main()
