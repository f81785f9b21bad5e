"""What a task cost: counted while it counts, summed over a run's tasks, shown on one line."""

from __future__ import annotations

import threading

import boto3

from sparkify import cost
from sparkify.warehouse.transactions import execute_statements


class Cursor:
    rowcount = 0

    def __init__(self) -> None:
        self.sent: list[str] = []

    def execute(self, statement: str, parameters=None) -> None:
        self.sent.append(statement)


def test_statements_and_copies_count_only_while_a_task_counts():
    cursor = Cursor()
    statements = ['COPY "incoming_0123" ("ts") FROM \'s3://b/m.manifest\'', "COPY staged_objects (a) FROM 's3://b/c'",
                  "DELETE FROM t", "SELECT 1"]
    execute_statements(cursor, statements, {})  # not counting
    with cost.counting() as spent:
        execute_statements(cursor, statements, {})
        cost.add("transactions")
        cost.count_read(2, [100, 23])
    execute_statements(cursor, statements, {})
    assert spent.figures() == {"objects_read": 2, "bytes_read": 123, "copies": 1, "bookkeeping_copies": 1,
                               "statements": 4, "transactions": 1, "data_api_batches": None,
                               "data_api_reads": None, "s3_requests": 0}
    assert len(cursor.sent) == 12


def test_a_size_not_known_makes_the_bytes_unknown():
    spent = cost.Cost()
    spent.read(1, [10])
    spent.read(2, [None, 5])
    spent.read(1, [7])
    assert (spent.objects_read, spent.bytes_read) == (4, None)


def test_s3_requests_are_counted_on_the_client_as_it_sends_them():
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with cost.counting() as spent:
        cost.watch_s3(client)
        cost.watch_s3(client)  # once per client and task
        for _ in range(3):
            client.meta.events.emit("before-send.s3.ListObjectsV2", request=None)
    client.meta.events.emit("before-send.s3.GetObject", request=None)  # after the task: its own count stops
    assert spent.s3_requests == 3


def test_counts_from_threads_add_up():
    with cost.counting() as spent:
        threads = [threading.Thread(target=lambda: [spent.add("s3_requests") for _ in range(1000)]) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert spent.s3_requests == 4000


def test_a_runs_cost_sums_its_tasks_and_reads_as_one_line():
    staging = {"objects_read": 60, "bytes_read": 2_400_000, "copies": 1, "bookkeeping_copies": 1, "statements": 17,
               "transactions": 3, "data_api_batches": None, "data_api_reads": None, "s3_requests": 29}
    songs = {**staging, "objects_read": 0, "bytes_read": 0, "copies": 0, "bookkeeping_copies": 0, "statements": 2,
             "transactions": 1, "s3_requests": 3}
    load = {"objects_read": 0, "bytes_read": 0, "copies": 0, "bookkeeping_copies": 0, "statements": 3,
            "transactions": 1, "data_api_batches": None, "data_api_reads": None, "s3_requests": 0}
    total = cost.total([staging, songs, load, None])
    assert total["statements"] == 22 and total["data_api_batches"] is None
    assert cost.summary_line(total) == ("- Cost: 60 objects read (2.4 MB), 1 COPY of data (+1 of records), "
                                        "22 statements in 5 transactions, 32 S3 requests")
    data_api = cost.total([{**staging, "data_api_batches": 2, "data_api_reads": 3, "bytes_read": None}, load])
    assert cost.summary_line(data_api) == ("- Cost: 60 objects read, 1 COPY of data (+1 of records), 20 statements "
                                           "in 2 Data API batches and 3 reads, 29 S3 requests")
    assert cost.summary_line(cost.total([{**load, "bytes_read": 812}])).startswith("- Cost: 0 objects read (812 bytes)")
