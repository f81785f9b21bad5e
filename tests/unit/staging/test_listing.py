"""What a run lists: the keys a pattern names for its hours, and the hours an object covers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sparkify.staging.listing import Listing, interval_keys
from sparkify.warehouse.run_parameters import epoch_ms

DAILY, HOURLY = "log_data/%Y/%m/%Y-%m-%d-events.json", "log_data/%Y/%m/%d/%H/"


def h(hour: int, day: int = 15) -> datetime:
    return datetime(2018, 11, day) + timedelta(hours=hour)


def test_a_daily_pattern_names_each_day_once_with_the_hours_that_name_it():
    assert interval_keys(DAILY, h(22), h(2, day=16)) == {
        "log_data/2018/11/2018-11-15-events.json": (h(22), h(24)),
        "log_data/2018/11/2018-11-16-events.json": (h(0, day=16), h(2, day=16)),
    }


def test_an_hourly_pattern_names_one_prefix_an_hour_and_a_key_without_codes_names_every_hour():
    assert list(interval_keys(HOURLY, h(0), h(3))) == [f"log_data/2018/11/15/{hour:02d}/" for hour in range(3)]
    assert interval_keys("song_data/", h(0), h(3)) == {"song_data/": (h(0), h(3))}
    assert interval_keys(HOURLY, h(3), h(3)) == {}


def test_an_object_covers_its_keys_hours_widened_by_the_spill_and_its_times_by_the_plausible_window():
    day = "log_data/2018/11/2018-11-15-events.json"
    listing = Listing({day: {day: "v1", day + ".gz": "v2"}}, {day: (h(0), h(24))}, spill=timedelta(hours=1))
    assert listing.objects == {day: "v1", day + ".gz": "v2"}
    assert listing.unit_of == {day: day, day + ".gz": day}
    assert listing.covers(day) == (h(-1), h(25))
    assert listing.time_bounds(day, timedelta(hours=24)) == (epoch_ms(h(-24)), epoch_ms(h(48)))
