"""What a staging run did, told: its log lines, its XCom (the run summary's and the UI's figures) and the
errors of a run whose objects are set aside as bad."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from sparkify.sources.objects import ObjectSource
from sparkify.staging import restatement
from sparkify.staging.listing import Listing
from sparkify.staging.restatement import Span, overlaps, span_text

#: The two ways on from an event object set aside as bad, on a line of its own in every error naming one
#: (the first line, which alerts and run summaries show, names the object and its first bad line).
WAYS_ON = ("Either re-publish a fixed object (the next runs stage it), or raise the Variable sparkify_max_errors "
           "to keep its bad records in the quarantine; then clear the failed runs of its hours.")


def refused_message(message: str, by_time: bool) -> str:
    """The error of a run whose objects were refused as bad: an event object fails every run of its hours."""
    if not by_time:
        return f"{message}\nIt is set aside: later runs stage the other objects and skip it until it changes."
    return f"{message}\nIt is set aside: every run of the hours it covers fails until it changes.\n{WAYS_ON}"


def block_restated_hours(source: ObjectSource, listing: Listing, skipped: dict[str, str | None],
                         restated: list[Span]) -> None:
    """Fail a run (after its staging committed) whose restated hours event objects set aside as bad cover: its
    own hours' objects set aside were tried again, and failed it already."""
    blocking = [f"{source.uri(key)} ({reason or 'set aside as bad'})" for key, reason in skipped.items()
                if overlaps(listing.covers(listing.unit_of[key]), restated)]
    if blocking:
        raise AirflowFailException(
            f"this run restates {', '.join(map(span_text, restated))}, which event objects set aside as bad cover: "
            f"{'; '.join(blocking)}\nNo run of those hours succeeds until they change.\n{WAYS_ON}"
        )


@dataclass(frozen=True)
class Copied:
    """What a warehouse engine's copy of some objects gave: its rows and rejected records (None: the warehouse
    does not say), the JSON keys it ignored, and per object key the first and last time of its rows."""

    rows: int | None = 0
    rejected: int | None = 0
    ignored: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)


@dataclass
class Staged:
    """What one staging run did, whichever way it staged."""

    audit: dict[str, Any]
    #: The objects staged (key → version), those gone, and those set aside that the run skipped, with why.
    to_stage: dict[str, str] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    skipped: dict[str, str | None] = field(default_factory=dict)
    rows: int | None = None
    rejected: int | None = 0
    ignored: dict[str, int] = field(default_factory=dict)
    purged: int = 0
    restated: list[dict[str, Any]] = field(default_factory=list)
    #: The hours the run restated over all its attempts.
    restated_before: list[Span] = field(default_factory=list)
    #: A catalog's files set aside as bad, named in every run until they change.
    set_aside: list[dict[str, Any]] = field(default_factory=list)
    #: The keys or prefixes whose objects were staged (OpenLineage's inputs).
    sources: list[str] = field(default_factory=list)
    #: Figures of the engine that staged (a catalog's discovery, Redshift's units).
    extra: dict[str, Any] = field(default_factory=dict)

    def log(self, log: Any, source: ObjectSource, table: str, jsonpaths: str, max_errors: int) -> None:
        """Tell the task log what the run staged, restated, withdrew and skipped."""
        log.info("Staged %s rows from %d objects into %s", "?" if self.rows is None else self.rows,
                 len(self.to_stage), table)
        for record in self.restated:
            log.warning("%s object %s: restating %s–%s", record["change"], record["object_uri"],
                        f"{record['hours_start']:%Y-%m-%d %H:%M}", f"{record['hours_end']:%Y-%m-%d %H:%M}")
        for key in self.gone:
            log.warning("%s is gone from the bucket: its events are withdrawn", source.uri(key))
        for key in self.skipped:
            log.warning("%s is set aside as bad (more bad records than max_errors): not staged until it changes",
                        source.uri(key))
        if self.rejected:
            log.warning("%d bad records (max_errors=%d) are in the quarantine table", self.rejected, max_errors)
        if self.ignored:
            log.warning("Keys not in %s were ignored: %s", jsonpaths, self.ignored)

    def result(self, parameters: dict[str, Any], objects_listed: int, by_time: bool) -> dict[str, Any]:
        """The task's XCom: its audit record and what the run's staging found (JSON-native, as the run summary
        and the UI read it back)."""
        start, end = parameters["interval_start"], parameters["interval_end"]
        return {
            **self.extra,
            **self.audit,
            "staged": "by time" if by_time else "catalog",
            "ignored_keys": self.ignored,
            "objects_listed": objects_listed,
            "objects_gone": len(self.gone),
            "objects_set_aside": len(self.set_aside),
            "set_aside": self.set_aside,
            "objects_purged": self.purged,
            "restated": [{**record, "hours_start": f"{record['hours_start']:%Y-%m-%dT%H:%M}",
                          "hours_end": f"{record['hours_end']:%Y-%m-%dT%H:%M}"} for record in self.restated],
            "hours_loaded": [span_text(span) for span in restatement.merge([(start, end), *self.restated_before])],
        }
