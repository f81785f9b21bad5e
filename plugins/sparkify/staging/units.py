"""Staging units: how event objects are grouped on Redshift, and what a run's listing means for each group.

A *unit* is one key the ``s3_key`` pattern names for the hours listed (:func:`sparkify.staging.listing.
interval_keys`): the hour prefix ``log_data/YYYY/MM/DD/HH/`` in the hourly layout, the day file (with its
compressed forms) in the daily one. Its *members* are the objects listed under it. A unit is staged whole,
through one manifest COPY of all its members, its rows tagged with the unit's key; it is staged again,
whole, as soon as any member is new, rewritten or gone. Each member keeps its own ``staged_objects`` record
(its version), carrying the unit's row count and the hours its rows cover.

A staged record belongs to the unit whose key starts its own (``log_data/2018/11/01/00/part-0.json`` to
``log_data/2018/11/01/00/``, ``…-events.json.gz`` to ``…-events.json``): the SQL that forgets a unit
(``redshift/forget_unit.sql``) matches the same way, so rows and records tagged per object by an earlier
version go with their unit too.

Set-aside keeps its meaning per member: a member whose version is set aside as bad holds its whole unit
back. The unit is tried again (and the run fails on it) by the run that set it aside and by every run whose
hours it covers; other runs skip the unit, as they would skip the object, until the member changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sparkify.staging.bookkeeping import StagedObject
from sparkify.staging.restatement import Span, hours_between


@dataclass(frozen=True)
class Unit:
    """One unit a run stages: its key, the members listed (key → version) and the records of its members
    staged before (key → record; those no longer listed are gone)."""

    key: str
    members: dict[str, str]
    records: dict[str, StagedObject]

    @property
    def gone(self) -> list[str]:
        """Members staged before and no longer in the bucket."""
        return sorted(self.records.keys() - self.members.keys())

    @property
    def change(self) -> str:
        """What the restatement records: ``late`` (nothing of it staged before), ``gone`` (no member left),
        ``changed``."""
        if not self.records:
            return "late"
        return "gone" if not self.members else "changed"

    def old_hours(self) -> list[Span]:
        """The hours its rows staged before cover, by its members' records."""
        found = [hours_between(record.first_ts, record.last_ts) for record in self.records.values()]
        return [span for span in found if span]

    def old_bounds(self) -> tuple[int | None, int | None]:
        """The first and last time (epoch ms) of its rows staged before: where forgetting them looks."""
        firsts = [record.first_ts for record in self.records.values() if record.first_ts is not None]
        lasts = [record.last_ts for record in self.records.values() if record.last_ts is not None]
        return (min(firsts), max(lasts)) if firsts and lasts else (None, None)


@dataclass
class UnitPlan:
    """What a run's listing means, unit by unit."""

    to_stage: list[Unit] = field(default_factory=list)
    #: Members set aside as bad whose units this run skips (their hours are not the run's).
    skipped_rejected: list[str] = field(default_factory=list)


def belongs(unit_key: str, key: str) -> bool:
    """Whether a staged key is a member of the unit (see the module docstring)."""
    return key.startswith(unit_key)


def plan_units(listed: dict[str, dict[str, str]], staged: dict[str, StagedObject], batch: str,
               covers_run: Callable[[str], bool]) -> UnitPlan:
    """Which units to stage (in the listing's order: by time), and which set-aside members hold theirs back.

    ``listed``: unit key → its members listed (key → version). A unit is staged when a member is new, its
    version changed or it is gone, or when a member set aside as bad is to be tried again: by the run that
    set it aside (``batch``) or by a run whose hours the unit covers (``covers_run``). A unit with a
    member set aside is skipped by the other runs, changed or not."""
    plan = UnitPlan()
    for unit_key, members in listed.items():
        records = {key: record for key, record in staged.items() if belongs(unit_key, key)}
        aside = [key for key, record in records.items()
                 if record.rejected_at is not None and members.get(key) == record.version]
        changed = records.keys() != members.keys() or any(
            records[key].version != version for key, version in members.items())
        unit = Unit(unit_key, dict(members), records)
        if aside:
            if any(records[key].batch_id == batch for key in aside) or covers_run(unit_key):
                plan.to_stage.append(unit)
            else:
                plan.skipped_rejected += sorted(aside)
        elif changed:
            plan.to_stage.append(unit)
    return plan


def statement_name(table: str, batch_id: str, unit: Unit, max_errors: int) -> str:
    """The Data API StatementName of a unit's batch: the table and unit in clear, and a digest of what
    the batch does (the run, the members listed, the records it replaces, the bad-record limit).

    An attempt of the run that finds a batch of this name running or finished (a worker restarted
    mid-staging) waits for it or takes it as done instead of sending it again; a batch that does
    anything else (another listing, another state before it, another limit) has another name."""
    digest = hashlib.sha256("\n".join([
        table, batch_id, unit.key, str(max_errors),
        *(f"+{key} {version}" for key, version in sorted(unit.members.items())),
        *(f"-{key} {record.version} {record.rejected_at is not None}" for key, record in sorted(unit.records.items())),
    ]).encode()).hexdigest()[:24]
    return f"sparkify:{table}:{unit.key}:{digest}"


#: strftime codes a key pattern may use, and what each matches in a key.
_CODES = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%H": r"\d{2}", "%%": "%"}


def unit_of(pattern: str, key: str) -> str:
    """The unit a staged key belongs to, from the ``s3_key`` pattern alone (for staged objects no listing
    names any more, which the retention drops): the start of the key the pattern matches. A key the
    pattern does not match (staged under another layout) is its own unit."""
    parts = re.split(r"(%.)", pattern)
    regex = ""
    for part in parts:
        if part in _CODES:
            regex += _CODES[part]
        elif part.startswith("%") and len(part) == 2:
            raise ValueError(f"{pattern!r}: only {', '.join(_CODES)} are supported in a key pattern")
        else:
            regex += re.escape(part)
    found = re.match(regex, key)
    return found.group(0) if found else key


def unit_text(unit_key: str, members: int) -> str:
    """A unit as logs name it: ``log_data/2018/11/01/00/ (60 objects)``."""
    return f"{unit_key} ({members} object{'' if members == 1 else 's'})"


def safe_name(unit_key: str) -> str:
    """A unit key as part of a file name under the manifest prefix."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", unit_key).strip("_") or "unit"
