"""The plan a listing makes against what is staged: what to stage, what is gone, what stays set aside."""

from __future__ import annotations

from datetime import datetime

from sparkify.staging.bookkeeping import StagedObject, plan_listing

RUN = "sparkify_dwh/scheduled__2018-11-15T10:00:00+00:00"
DAY = "log_data/2018/11/2018-11-15-events.json"
PREFIX = "log_data/2018/11/15/10/"


def staged(version: str, rejected: bool = False, batch: str = "earlier") -> StagedObject:
    return StagedObject(version, 1, 2, datetime(2018, 11, 15, 10, 30) if rejected else None, batch, 10,
                        "line 100: not valid JSON" if rejected else None)


def test_new_and_changed_versions_are_staged_and_unchanged_ones_are_not_read():
    plan = plan_listing({DAY: {DAY: "v2"}, PREFIX: {PREFIX + "a": "v1", PREFIX + "b": "v1"}},
                        {DAY: "v2", PREFIX + "a": "v1", PREFIX + "b": "v1"},
                        {DAY: staged("v1"), PREFIX + "a": staged("v1")}, RUN, by_time=True)
    assert plan.to_stage == {DAY: "v2", PREFIX + "b": "v1"} and plan.gone == [] and plan.skipped_rejected == []


def test_an_event_object_no_longer_listed_under_its_key_or_prefix_is_gone_a_catalog_file_is_not():
    records = {PREFIX + "a": staged("v1"), PREFIX + "b": staged("v1"), "log_data/2018/11/15/09/c": staged("v1")}
    listed = {PREFIX: {PREFIX + "a": "v1"}}
    assert plan_listing(listed, listed[PREFIX], records, RUN, by_time=True).gone == [PREFIX + "b"]
    assert plan_listing(listed, listed[PREFIX], records, RUN, by_time=False).gone == []


def test_a_version_set_aside_is_tried_again_by_its_own_run_and_by_runs_it_covers_and_skipped_by_the_others():
    records = {DAY: staged("v2", rejected=True)}
    listed = {DAY: {DAY: "v2"}}
    assert plan_listing(listed, listed[DAY], records, RUN, by_time=True).skipped_rejected == [DAY]
    assert plan_listing(listed, listed[DAY], {DAY: staged("v2", rejected=True, batch=RUN)}, RUN,
                        by_time=True).to_stage == {DAY: "v2"}
    assert plan_listing(listed, listed[DAY], records, RUN, by_time=True,
                        covers_run=lambda key: key == DAY).to_stage == {DAY: "v2"}
    assert plan_listing(listed, listed[DAY], records, RUN, by_time=True,
                        covers_run=lambda key: False).to_stage == {}
    assert plan_listing(listed, {DAY: "v3"}, records, RUN, by_time=True).to_stage == {DAY: "v3"}  # it changed
