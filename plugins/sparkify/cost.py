"""What a task cost, counted as it runs: the objects and bytes it had read, the COPYs, statements,
transactions (Data API batches) it sent, and the S3 requests it made.

A task counts inside :func:`counting`; the places that do the work report to the count of the task
(a context variable, so nothing is passed through every call):
:func:`sparkify.warehouse.transactions.execute_statements` counts each statement,
:func:`sparkify.warehouse.transactions.transaction` each transaction, the Data API each batch and read,
and an S3 client given to :func:`watch_s3` each request it sends (a botocore
``before-send`` hook: every HTTP request, retries included, as S3 bills them). Outside
:func:`counting` nothing is counted. The figures are the task's XCom (``cost``), its run summary line
and its asset events.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

#: The figures, in the order the run summary names them.
FIGURES = ("objects_read", "bytes_read", "copies", "bookkeeping_copies", "statements", "transactions",
           "data_api_batches", "data_api_reads", "s3_requests")


@dataclass
class Cost:
    """One task's cost. ``bytes_read`` is None when a size was not known; the Data API figures are
    None on a driver connection (nothing went through it)."""

    objects_read: int = 0
    bytes_read: int | None = 0
    #: COPY statements that read source objects (events, song files).
    copies: int = 0
    #: COPY statements that read what the operator wrote itself (the staged_objects records of a manifest).
    bookkeeping_copies: int = 0
    #: SQL statements sent, reads and COPYs included (a Data API batch counts its statements).
    statements: int = 0
    #: Transactions opened (on the Data API: each batch is one).
    transactions: int = 0
    data_api_batches: int | None = None
    data_api_reads: int | None = None
    s3_requests: int = 0
    #: Whether the task still counts: a client watched keeps its hook, but counts nothing after the task.
    counting: bool = field(default=True, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, count: int = 1) -> None:
        """Add to a figure (thread-safe: S3 reads run in a pool)."""
        with self._lock:
            setattr(self, name, (getattr(self, name) or 0) + count)

    def read(self, objects: int, sizes: Iterable[int | None]) -> None:
        """Objects read (by COPY or by the operator), with their sizes (None: not known)."""
        sizes = list(sizes)
        with self._lock:
            self.objects_read += objects
            if self.bytes_read is not None:
                self.bytes_read = None if None in sizes else self.bytes_read + sum(s for s in sizes if s is not None)

    def figures(self) -> dict[str, int | None]:
        """JSON-native, for the XCom and the asset events."""
        with self._lock:
            return {name: getattr(self, name) for name in FIGURES}


_CURRENT: ContextVar[Cost | None] = ContextVar("sparkify_cost", default=None)


@contextmanager
def counting() -> Generator[Cost]:
    """Count what the block costs (see the module docstring)."""
    cost = Cost()
    token = _CURRENT.set(cost)
    try:
        yield cost
    finally:
        cost.counting = False
        _CURRENT.reset(token)


def current() -> Cost | None:
    """The count of the task running, if it counts."""
    return _CURRENT.get()


def add(name: str, count: int = 1) -> None:
    """Add to a figure of the task running (nothing outside :func:`counting`)."""
    cost = _CURRENT.get()
    if cost is not None:
        cost.add(name, count)


def count_read(objects: int, sizes: Iterable[int | None]) -> None:
    """Objects read by the task running (by its COPYs, or by itself), with their sizes (None: not known)."""
    cost = _CURRENT.get()
    if cost is not None:
        cost.read(objects, sizes)


def count_statement(statement: str) -> None:
    """One SQL statement sent; a COPY counted apart, as one of data or of the operator's bookkeeping
    (``COPY staged_objects``, the records written beside a manifest)."""
    cost = _CURRENT.get()
    if cost is None:
        return
    cost.add("statements")
    words = statement.split(None, 2)
    if words and words[0].upper() == "COPY":
        cost.add("bookkeeping_copies" if len(words) > 1 and words[1] == "staged_objects" else "copies")


def watch_s3(client: Any) -> None:
    """Count the S3 requests a boto3 client sends while the task counts (once per client)."""
    cost = _CURRENT.get()
    if cost is None or getattr(client, "_sparkify_counted", None) is cost:
        return

    def sent(**_: Any) -> None:  # returns None: botocore sends the request as it is
        if cost.counting:  # (S3 reads run in a thread pool, where the task's context is not set)
            cost.add("s3_requests")

    client.meta.events.register("before-send.s3", sent)
    client._sparkify_counted = cost


def total(costs: Iterable[dict[str, Any] | None]) -> dict[str, int | None]:
    """The sum of several tasks' figures: a figure unknown in one (None) is unknown in the sum, but the
    Data API's, which are None where no task used it."""
    found = [entry for entry in costs if entry]
    summed: dict[str, int | None] = {}
    for name in FIGURES:
        values = [entry.get(name) for entry in found]
        if name.startswith("data_api_"):
            known = [value for value in values if value is not None]
            summed[name] = sum(known) if known else None
        else:
            summed[name] = None if None in values else sum(value or 0 for value in values)
    return summed


def summary_line(cost: dict[str, Any]) -> str:
    """The run summary's line: ``- Cost: 60 objects read (2.4 MB), 1 COPY of data (1 of records), …``."""

    def count(value: Any, one: str, many: str | None = None) -> str:
        if value is None:
            return f"? {many or one + 's'}"
        return f"{value:,} {one if value == 1 else many or one + 's'}"

    size = cost.get("bytes_read")
    read = count(cost.get("objects_read"), "object") + " read" + ("" if size is None else f" ({_bytes(size)})")
    copies = count(cost.get("copies"), "COPY", "COPYs") + " of data"
    if cost.get("bookkeeping_copies"):
        copies += f" (+{cost['bookkeeping_copies']:,} of records)"
    statements = count(cost.get("statements"), "statement")
    if cost.get("data_api_batches") is not None:
        statements += (f" in {count(cost['data_api_batches'], 'Data API batch', 'Data API batches')} and "
                       f"{count(cost.get('data_api_reads'), 'read')}")
    else:
        statements += f" in {count(cost.get('transactions'), 'transaction')}"
    return f"- Cost: {read}, {copies}, {statements}, {count(cost.get('s3_requests'), 'S3 request')}"


def _bytes(size: int) -> str:
    """A size as people read it: ``812 bytes``, ``2.4 MB``."""
    if size < 1000:
        return f"{size:,} bytes"
    value, unit = float(size), "bytes"
    for unit in ("KB", "MB", "GB"):  # noqa: B007  (the unit the loop stops at is the one shown)
        value /= 1000
        if value < 1000:
            break
    return f"{value:,.1f} {unit}"
