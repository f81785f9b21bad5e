"""ObjectsLandedSensor: "not there yet" is not "empty"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

from sparkify.sources.objects import open_source
from sparkify.staging.listing import interval_keys
from sparkify.warehouse.run_parameters import whole_number

if TYPE_CHECKING:
    from airflow.sdk import Context

POLICIES = ("fail", "empty")


class ObjectsLandedSensor(BaseSensorOperator):
    """
    Wait for the objects of the run's own interval, without holding a worker slot.

    A run whose interval ended less than ``wait_seconds`` ago and whose keys name no
    object yet waits for them (reschedule mode: the slot is free between pokes). Once
    the interval ended longer ago than that (at once for an hour long past, as in a
    backfill), an interval still without objects follows ``policy``: ``fail`` fails
    the task naming the keys it looked for; ``empty`` succeeds with a warning, and
    the run loads the hour as empty (the staging task's audit record says so), and
    its objects landing later restate it. A run failed for want of objects loaded
    nothing: clearing it, once they are there, loads the hour.

    :param source: base URI of the bucket (templated)
    :param s3_key: the key pattern of the staging task (templated)
    :param wait_seconds: how long after the interval's end to wait for its objects (templated)
    :param policy: ``fail`` or ``empty``, once the wait is over (templated)
    :param aws_conn_id: AWS connection for S3 (templated)
    """

    template_fields: Sequence[str] = ("source", "s3_key", "wait_seconds", "policy", "aws_conn_id")
    ui_color = "#D5E8D4"

    def __init__(
        self,
        *,
        source: str,
        s3_key: str,
        wait_seconds: int | str = 3600,
        policy: str = "fail",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.source = source
        self.s3_key = s3_key
        self.wait_seconds = wait_seconds
        self.policy = policy
        self.aws_conn_id = aws_conn_id

    def poke(self, context: Context) -> bool | PokeReturnValue:
        if self.policy not in POLICIES:
            raise AirflowFailException(f"policy must be one of {POLICIES}, got {self.policy!r}")
        start, end = context["data_interval_start"], context["data_interval_end"]
        if start is None or end is None:
            raise AirflowFailException("this run has no data interval; trigger it with a logical date")
        source = open_source(self.source, self.aws_conn_id)
        keys = list(interval_keys(self.s3_key, start, end))
        if any(source.list_objects(key) for key in keys):
            return True
        deadline = end + timedelta(seconds=whole_number(self.wait_seconds, "wait_seconds"))
        looked_for = ", ".join(map(source.uri, keys))
        now = datetime.now(timezone.utc)
        if now < deadline:
            self.log.info("No objects yet at %s: waiting until %s", looked_for, f"{deadline:%Y-%m-%d %H:%M:%S} UTC")
            if self.reschedule and deadline < now + timedelta(seconds=self.poke_interval):
                # The last look, at the deadline itself (Airflow's exception is not annotated).
                raise AirflowRescheduleException(deadline)  # type: ignore[no-untyped-call]
            return False
        message = f"no objects at {looked_for} for {start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M} UTC"
        if self.policy == "fail":
            raise AirflowFailException(f"{message}, {self.wait_seconds} s after the interval ended (policy 'fail'; "
                                       "set the Variable sparkify_missing_objects to 'empty' to load such hours empty)")
        self.log.warning("%s: loading the interval empty (policy 'empty')", message)
        return PokeReturnValue(is_done=True, xcom_value={"missing": keys})
