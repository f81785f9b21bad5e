"""The span arithmetic of restatement: which hours a run reloads besides its own."""

from __future__ import annotations

from datetime import datetime

from sparkify.staging.restatement import hours_between, intersect, load_spans, merge, overlaps, span_text
from sparkify.warehouse.run_parameters import epoch_ms


def h(hour: int, day: int = 15) -> datetime:
    return datetime(2018, 11, day, hour)


def test_merge_joins_overlapping_and_touching_spans_and_drops_empty_ones():
    assert merge([(h(5), h(7)), (h(0), h(2)), (h(2), h(3)), (h(6), h(9)), (h(4), h(4))]) == [
        (h(0), h(3)), (h(5), h(9))]
    assert merge([]) == []


def test_intersect_keeps_the_parts_inside_the_others():
    loaded = [(h(0), h(6)), (h(10), h(12)), (h(20), h(0, day=16))]
    assert intersect((h(3), h(21)), loaded) == [(h(3), h(6)), (h(10), h(12)), (h(20), h(21))]
    assert intersect((h(6), h(10)), loaded) == []  # the hours between loaded intervals: none of them
    assert intersect((h(0), h(6)), []) == []


def test_overlaps_needs_a_shared_hour_not_a_shared_boundary():
    assert overlaps((h(0), h(23)), [(h(22), h(23))])
    assert not overlaps((h(0), h(6)), [(h(6), h(7))])


def test_hours_between_covers_the_whole_hours_of_the_first_and_last_time():
    first, last = epoch_ms(datetime(2018, 11, 15, 3, 59, 59)), epoch_ms(datetime(2018, 11, 15, 7, 0, 0))
    assert hours_between(first, last) == (h(3), h(8))
    assert hours_between(None, last) is None


def test_load_spans_are_the_run_interval_and_the_restated_spans_each_with_its_bounds():
    run = {"batch_id": "b", "interval_start": h(12), "interval_end": h(13), "start_ms": 0, "end_ms": 0}
    spans = load_spans(run, [(h(0), h(6)), (h(9), h(12))])
    assert [(span["interval_start"], span["interval_end"]) for span in spans] == [(h(0), h(6)), (h(9), h(13))]
    assert [(span["start_ms"], span["end_ms"]) for span in spans] == [
        (epoch_ms(h(0)), epoch_ms(h(6))), (epoch_ms(h(9)), epoch_ms(h(13)))]
    assert all(span["batch_id"] == "b" for span in spans)
    assert load_spans(run, []) == [{**run, "start_ms": epoch_ms(h(12)), "end_ms": epoch_ms(h(13))}]
    assert span_text((h(0), h(6))) == "2018-11-15T00:00Z/2018-11-15T06:00Z"
