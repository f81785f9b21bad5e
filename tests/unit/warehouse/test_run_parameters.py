"""The run's bound parameters and the checks of the numbers and flags an operator is given."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sparkify.warehouse.run_parameters import batch_id, epoch_ms, flag, run_parameters, whole_number


def test_the_parameters_are_the_batch_and_the_interval_in_naive_utc_and_epoch_milliseconds():
    start = datetime(2018, 11, 15, 10, tzinfo=timezone(timedelta(hours=2)))  # 08:00 UTC
    context = {"run_id": "manual__x", "dag_run": SimpleNamespace(dag_id="sparkify_dwh"),
               "data_interval_start": start, "data_interval_end": start + timedelta(hours=1)}
    assert run_parameters(context) == {
        "batch_id": "sparkify_dwh/manual__x", "interval_start": datetime(2018, 11, 15, 8),
        "interval_end": datetime(2018, 11, 15, 9), "start_ms": epoch_ms(datetime(2018, 11, 15, 8)),
        "end_ms": epoch_ms(datetime(2018, 11, 15, 9)),
    }
    with pytest.raises(AirflowFailException, match="no data interval"):
        run_parameters({**context, "data_interval_start": None})
    assert batch_id({"run_id": "outside_a_run"}) == "outside_a_run"


@pytest.mark.parametrize(("given", "expected"), [(0, 0), ("24", 24), (" 7 ", 7)])
def test_a_whole_number_may_arrive_rendered(given, expected):
    assert whole_number(given, "hours") == expected


@pytest.mark.parametrize("given", ["-1", "1.5", "5; DROP TABLE songplays", "", "None"])
def test_anything_else_is_refused_by_name(given):
    with pytest.raises(AirflowFailException, match="hours must be a whole number >= 0"):
        whole_number(given, "hours")


def test_a_flag_is_a_bool_or_its_rendered_text():
    assert (flag(True, "x"), flag("False", "x"), flag(" true ", "x")) == (True, False, True)
    with pytest.raises(AirflowFailException, match="restage must be true or false"):
        flag("yes", "restage")
