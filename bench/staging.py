"""Staging benchmark: the operator's PostgreSQL path against its baselines, measured in the same run.

    python bench/staging.py [--sizes 10000,100000,1000000] [--repeats 3] [--notebook-sample 2000]
                            [--memory-gb 0]

For each size the project's generator writes one day file of that many events;
then, each repeated and reported as median and range:

- ``operator``: StageToRedshiftOperator.execute, in a child process whose peak
  memory is recorded;
- ``csv_copy_1`` / ``csv_copy_2``: the same rows as ready-made CSV, loaded with
  COPY over one connection / two at once: the limit;
- ``notebook``: the original notebook's way, one INSERT per row in autocommit,
  timed on a sample and extrapolated: the floor.

For the operator and the CSV COPYs it also counts the CPU seconds the whole machine spent
(``/proc/stat``: client and server together), and from them the bound: the ratio the operator would
reach with every core busy from start to end, which no overlap of its threads can pass.

Results go to bench/results/staging.json and bench/results/staging.png.
``--memory-gb N`` also stages one N-GB file to show memory stays bounded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from tools import local_pg
from tools.airflow_env import connection_json
from tools.ddl import create_tables
from tools.generate_data import generate

REPO = Path(__file__).resolve().parents[1]

DATA = REPO / ".local" / "bench"
RESULTS = Path(__file__).resolve().parent / "results"
DAY = datetime(2018, 11, 1)
DAY_KEY = "log_data/2018/11/2018-11-01-events.json"
FIELDS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level", "location",
          "method", "page", "registration", "sessionId", "song", "status", "ts", "userAgent", "userId"]
COLUMNS = ("artist, auth, first_name, gender, item_in_session, last_name, length, level, location, method, page, "
           "registration, session_id, song, status, ts, user_agent, user_id, object_key, batch_id")


def source_for(events: int) -> Path:
    """One day file of about ``events`` events, generated once and reused."""
    folder = DATA / f"events-{events}"
    if not (folder / DAY_KEY).exists():
        generate(folder, DAY, DAY + timedelta(days=1), events_per_day=events, songs=1000, users=500, seed=1)
    return folder


def count_lines(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(1 for line in stream if line.strip())


def reset(uri: str) -> None:
    with psycopg.connect(uri, autocommit=True) as connection:
        connection.execute("TRUNCATE staging_events, staged_objects")  # staged once: forget it to stage again


def stage_with_operator(uri: str, folder: Path) -> dict:
    """Run the operator in a child process: its own time and peak memory, nothing else's."""
    child = subprocess.run(
        [sys.executable, __file__, "--child-stage", str(folder)],
        env={**os.environ, "AIRFLOW_CONN_SPARKIFY_WAREHOUSE": connection_json(uri)},
        capture_output=True, text=True, check=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every process: client and server)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def peak_memory_mb() -> float:
    """This process's own peak resident memory. (ru_maxrss would not do: Linux carries it
    over from the parent across exec, and the parent may have just generated gigabytes.)"""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def child_stage(folder: Path) -> None:
    from sparkify import StageToRedshiftOperator

    operator = StageToRedshiftOperator(
        task_id="bench", table="staging_events", source=folder.as_uri(), s3_key=DAY_KEY,
        jsonpaths="jsonpaths/log_events.json", time_field="ts",
    )
    start = DAY.replace(tzinfo=timezone.utc)
    context = {"run_id": "bench", "data_interval_start": start, "data_interval_end": start + timedelta(hours=1)}
    busy, began = busy_cpu_seconds(), time.perf_counter()
    result = operator.execute(context)
    seconds, cpu = time.perf_counter() - began, busy_cpu_seconds() - busy
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": result["rows_written"],
                      "peak_mb": peak_memory_mb()}))


def csv_files(folder: Path, streams: int) -> list[Path]:
    """The rows of the day file as CSV, split into ``streams`` files (made once, outside the timing)."""
    paths = [folder / f"keyed-rows-{part}-of-{streams}.csv" for part in range(streams)]
    if all(path.exists() for path in paths):
        return paths
    outputs = [open(path, "w", newline="") for path in paths]
    writers = [csv.writer(output) for output in outputs]
    with open(folder / DAY_KEY, "rb") as stream:
        for number, line in enumerate(line for line in stream if line.strip()):
            record = json.loads(line)
            writers[number % streams].writerow([record[field] for field in FIELDS] + [DAY_KEY, "bench"])
    for output in outputs:
        output.close()
    return paths


def copy_csv(uri: str, path: Path) -> None:
    with psycopg.connect(uri) as connection, open(path, "rb") as stream:
        with connection.cursor().copy(f"COPY staging_events ({COLUMNS}) FROM STDIN (FORMAT csv)") as copy:
            while chunk := stream.read(1 << 20):
                copy.write(chunk)


def csv_copy(uri: str, paths: list[Path]) -> tuple[float, float]:
    """Seconds, and busy CPU seconds of the machine, of one COPY per file, all at once."""
    threads = [threading.Thread(target=copy_csv, args=(uri, path)) for path in paths]
    busy, began = busy_cpu_seconds(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, busy_cpu_seconds() - busy


def notebook(uri: str, folder: Path, sample: int) -> float:
    """One INSERT per row, each committed on its own, over the first ``sample`` rows."""
    placeholders = ", ".join(["%s"] * (len(FIELDS) + 2))
    with psycopg.connect(uri, autocommit=True) as connection, open(folder / DAY_KEY, "rb") as stream:
        began = time.perf_counter()
        for number, line in enumerate(stream):
            if number == sample:
                break
            record = json.loads(line)
            connection.execute(f"INSERT INTO staging_events ({COLUMNS}) VALUES ({placeholders})",
                               [record[field] for field in FIELDS] + [DAY_KEY, "bench"])
        return time.perf_counter() - began


def summarize(rows: int, seconds: list[float]) -> dict:
    rates = sorted(rows / s for s in seconds)
    return {"rows": rows, "seconds": seconds, "median_rows_per_s": statistics.median(rates),
            "min_rows_per_s": rates[0], "max_rows_per_s": rates[-1]}


def measure(uri: str, events: int, repeats: int, notebook_sample: int) -> dict:
    folder = source_for(events)
    rows = count_lines(folder / DAY_KEY)
    results: dict = {"events": rows, "methods": {}}
    runs: dict[str, list[float]] = {"operator": [], "csv_copy_1": [], "csv_copy_2": [], "notebook": []}
    cpu: dict[str, list[float]] = {"operator": [], "csv_copy_1": [], "csv_copy_2": []}
    peaks = []
    one, two = csv_files(folder, 1), csv_files(folder, 2)
    sample = min(notebook_sample, rows)
    for _ in range(repeats):  # interleaved, so drift on a shared machine hits every method alike
        reset(uri)
        staged = stage_with_operator(uri, folder)
        runs["operator"].append(staged["seconds"])
        cpu["operator"].append(staged["cpu_seconds"])
        peaks.append(staged["peak_mb"])
        for method, files in (("csv_copy_1", one), ("csv_copy_2", two)):
            reset(uri)
            seconds, busy = csv_copy(uri, files)
            runs[method].append(seconds)
            cpu[method].append(busy)
        reset(uri)
        runs["notebook"].append(notebook(uri, folder, sample))
    for method, seconds in runs.items():
        results["methods"][method] = summarize(sample if method == "notebook" else rows, seconds)
    for method, seconds in cpu.items():
        results["methods"][method]["cpu_seconds"] = seconds
        results["methods"][method]["median_cpu_us_per_row"] = statistics.median(seconds) / rows * 1e6
    results["methods"]["notebook"]["extrapolated_from"] = sample
    results["operator_peak_mb"] = max(peaks)
    rate = {method: data["median_rows_per_s"] for method, data in results["methods"].items()}
    results["ratios"] = {
        "operator / csv_copy_2": rate["operator"] / rate["csv_copy_2"],
        "operator / csv_copy_1": rate["operator"] / rate["csv_copy_1"],
        "operator / notebook": rate["operator"] / rate["notebook"],
        # Every core busy throughout: the operator's CPU time spread over all of them.
        "bound: operator / csv_copy_2": rows / statistics.median(cpu["operator"]) * (os.cpu_count() or 1)
        / rate["csv_copy_2"],
    }
    return results


def memory_check(uri: str, gigabytes: float) -> dict:
    """Stage one file of about ``gigabytes`` GB: peak memory must not grow with it."""
    events = int(gigabytes * 1e9 / 470)  # a generated line is about 470 bytes
    folder = source_for(events)
    reset(uri)
    staged = stage_with_operator(uri, folder)
    reset(uri)
    return {"file_bytes": (folder / DAY_KEY).stat().st_size, **staged}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_method, by_size) = plt.subplots(1, 2, figsize=(12, 4.5))
    largest = report["sizes"][-1]
    names = ["notebook", "operator", "csv_copy_1", "csv_copy_2"]
    rates = [largest["methods"][name]["median_rows_per_s"] for name in names]
    by_method.barh(names, rates, color=["#b0b0b0", "#358140", "#6a8fc0", "#3d5f99"])
    by_method.set_xscale("log")
    by_method.set_xlabel("rows/s (median, log scale)")
    by_method.set_title(f"Staging {largest['events']:,} events")
    for name in names[1:]:
        by_size.plot([size["events"] for size in report["sizes"]],
                     [size["methods"][name]["median_rows_per_s"] for size in report["sizes"]], marker="o", label=name)
    by_size.set_xscale("log")
    by_size.set_xlabel("events in the file")
    by_size.set_ylabel("rows/s (median)")
    by_size.set_title("Throughput by size")
    by_size.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--notebook-sample", type=int, default=2000)
    parser.add_argument("--memory-gb", type=float, default=0)
    parser.add_argument("--child-stage", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_stage:
        child_stage(args.child_stage)
        return 0

    uri = local_pg.ensure_database("bench")
    create_tables(uri)
    report = {"machine": {"cpus": os.cpu_count()}, "repeats": args.repeats, "sizes": []}
    for events in (int(size) for size in args.sizes.split(",")):
        result = measure(uri, events, args.repeats, args.notebook_sample)
        report["sizes"].append(result)
        print(f"\n{result['events']:,} events, median (min–max) rows/s over {args.repeats} runs")
        for method, data in result["methods"].items():
            note = f"  (sample of {data['extrapolated_from']:,}, extrapolated)" if "extrapolated_from" in data else ""
            if "median_cpu_us_per_row" in data:
                note = f"  {data['median_cpu_us_per_row']:.2f} CPU µs a row (client and server)"
            print(f"  {method:<11} {data['median_rows_per_s']:>10,.0f}  "
                  f"({data['min_rows_per_s']:,.0f}–{data['max_rows_per_s']:,.0f}){note}")
        for name, ratio in result["ratios"].items():
            print(f"  {name:<29} {ratio:8.2f}x")
        print(f"  operator peak memory   {result['operator_peak_mb']:6.0f} MB")
    if args.memory_gb:
        report["memory"] = memory_check(uri, args.memory_gb)
        memory = report["memory"]
        print(f"\none {memory['file_bytes'] / 1e9:.2f} GB file: {memory['rows']:,} rows in {memory['seconds']:.1f} s, "
              f"operator peak memory {memory['peak_mb']:.0f} MB")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "staging.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, RESULTS / "staging.png")
    print(f"\nwrote {RESULTS / 'staging.json'} and {RESULTS / 'staging.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
