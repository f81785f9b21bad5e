"""Staging units on Redshift: which units a run's listing stages, and the names and keys they go by."""

from __future__ import annotations

from datetime import datetime

import pytest

from sparkify.staging.bookkeeping import StagedObject
from sparkify.staging.units import Unit, belongs, plan_units, safe_name, statement_name, unit_of

HOUR_0, HOUR_1 = "log_data/2018/11/01/00/", "log_data/2018/11/01/01/"
RUN = "scheduled__2018-11-01T01:00:00+00:00"
SET_ASIDE = datetime(2018, 11, 1, 0, 30)


def record(version: str, first: int | None = 1, last: int | None = 2, rejected: bool = False,
           batch: str = "earlier") -> StagedObject:
    return StagedObject(version, first, last, SET_ASIDE if rejected else None, batch, None,
                        "line 3: bad" if rejected else None)


def plan(listed, staged, covers=()):
    return plan_units(listed, staged, RUN, lambda unit: unit in covers)


def test_a_unit_is_staged_whole_when_any_member_is_new_changed_or_gone():
    staged = {f"{HOUR_0}a.json": record("1"), f"{HOUR_0}b.json": record("1"), f"{HOUR_1}a.json": record("1")}
    unchanged = {f"{HOUR_0}a.json": "1", f"{HOUR_0}b.json": "1"}
    assert plan({HOUR_0: unchanged}, staged).to_stage == []
    for members in ({**unchanged, f"{HOUR_0}c.json": "1"},  # new
                    {**unchanged, f"{HOUR_0}b.json": "2"},  # rewritten
                    {f"{HOUR_0}a.json": "1"}):  # gone
        (unit,) = plan({HOUR_0: members}, staged).to_stage
        assert unit.members == members and set(unit.records) == {f"{HOUR_0}a.json", f"{HOUR_0}b.json"}
    (gone,) = plan({HOUR_0: {f"{HOUR_0}a.json": "1"}}, staged).to_stage
    assert gone.gone == [f"{HOUR_0}b.json"] and gone.change == "changed"


def test_what_a_unit_restates_is_named_by_its_change():
    assert Unit(HOUR_0, {f"{HOUR_0}a.json": "1"}, {}).change == "late"
    assert Unit(HOUR_0, {}, {f"{HOUR_0}a.json": record("1")}).change == "gone"
    assert Unit(HOUR_0, {f"{HOUR_0}a.json": "2"}, {f"{HOUR_0}a.json": record("1")}).change == "changed"
    assert plan({HOUR_0: {}}, {}).to_stage == []  # an empty hour never staged: nothing


def test_a_units_old_rows_are_found_between_its_members_first_and_last_times():
    unit = Unit(HOUR_0, {}, {"a": record("1", 10, 20), "b": record("1", 5, 15), "c": record("1", None, None)})
    assert unit.old_bounds() == (5, 20)
    assert Unit(HOUR_0, {}, {"c": record("1", None, None)}).old_bounds() == (None, None)


def test_a_member_set_aside_holds_its_unit_back_but_for_the_runs_of_its_hours_and_the_run_that_set_it_aside():
    staged = {f"{HOUR_0}bad.json": record("1", rejected=True), f"{HOUR_0}a.json": record("1")}
    listed = {HOUR_0: {f"{HOUR_0}bad.json": "1", f"{HOUR_0}a.json": "1", f"{HOUR_0}new.json": "1"}}
    skipped = plan(listed, staged)
    assert skipped.to_stage == [] and skipped.skipped_rejected == [f"{HOUR_0}bad.json"]
    assert [unit.key for unit in plan(listed, staged, covers={HOUR_0}).to_stage] == [HOUR_0]
    retried = {**staged, f"{HOUR_0}bad.json": record("1", rejected=True, batch=RUN)}
    assert [unit.key for unit in plan(listed, retried).to_stage] == [HOUR_0]
    # Changed (re-published) or gone, it no longer holds the unit back: the unit is staged again.
    assert plan({HOUR_0: {**listed[HOUR_0], f"{HOUR_0}bad.json": "2"}}, staged).skipped_rejected == []
    assert len(plan({HOUR_0: {f"{HOUR_0}a.json": "1"}}, staged).to_stage) == 1


def test_records_belong_to_the_unit_whose_key_starts_theirs():
    assert belongs(HOUR_0, f"{HOUR_0}part-0.json") and not belongs(HOUR_0, f"{HOUR_1}part-0.json")
    day = "log_data/2018/11/2018-11-01-events.json"
    assert belongs(day, day) and belongs(day, day + ".gz")
    assert not belongs(day, "log_data/2018/11/2018-11-02-events.json")


@pytest.mark.parametrize(("pattern", "key", "unit"), [
    ("log_data/%Y/%m/%d/%H/", f"{HOUR_0}part-0.json.gz", HOUR_0),
    ("log_data/%Y/%m/%Y-%m-%d-events.json", "log_data/2018/11/2018-11-01-events.json.gz",
     "log_data/2018/11/2018-11-01-events.json"),
    # Staged under the other layout: its own unit.
    ("log_data/%Y/%m/%Y-%m-%d-events.json", f"{HOUR_0}part-0.json", f"{HOUR_0}part-0.json"),
    ("raw.events/%Y%%/%H/", "raw.events/2018%/05/x.json", "raw.events/2018%/05/"),
])
def test_the_unit_of_a_key_comes_from_the_pattern(pattern, key, unit):
    assert unit_of(pattern, key) == unit


def test_a_pattern_with_other_codes_is_refused():
    with pytest.raises(ValueError, match="only"):
        unit_of("log_data/%j/", "log_data/305/")


def test_a_batch_name_follows_what_the_batch_does():
    unit = Unit(HOUR_0, {f"{HOUR_0}a.json": "1"}, {f"{HOUR_0}a.json": record("0")})
    name = statement_name("staging_events", RUN, unit, 0)
    assert name.startswith(f"sparkify:staging_events:{HOUR_0}:") and len(name) < 2048
    assert statement_name("staging_events", RUN, unit, 0) == name  # an attempt after a restart finds it
    others = [
        statement_name("staging_events", "another run", unit, 0),
        statement_name("staging_events", RUN, unit, 5),
        statement_name("staging_events", RUN, Unit(HOUR_0, {f"{HOUR_0}a.json": "2"}, unit.records), 0),
        statement_name("staging_events", RUN, Unit(HOUR_0, unit.members, {}), 0),
        statement_name("staging_events", RUN, Unit(HOUR_0, unit.members, {
            f"{HOUR_0}a.json": record("0", rejected=True)}), 0),
    ]
    assert len({name, *others}) == 6


def test_a_unit_key_is_safe_in_a_file_name():
    assert safe_name(HOUR_0) == "log_data_2018_11_01_00"
    assert safe_name("log_data/2018/11/2018-11-01-events.json") == "log_data_2018_11_2018-11-01-events.json"


def test_a_gone_only_unit_is_staged_to_be_forgotten():
    staged = {f"{HOUR_0}a.json": record("1")}
    (unit,) = plan({HOUR_0: {}}, staged).to_stage
    assert (unit.members, unit.gone, unit.change) == ({}, [f"{HOUR_0}a.json"], "gone")
