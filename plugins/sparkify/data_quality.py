"""DataQualityOperator: SQL checks on the warehouse, every failure reported at once."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sparkify.lineage import checks_lineage, record_asset_events
from sparkify.warehouse import execute_statements, run_parameters, transaction, warehouse_hook, with_restated_hours

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class DataQualityOperator(BaseOperator):
    """
    Run SQL checks and fail with every failed check and its actual value in one error.

    A check is a dict: ``sql``, a query or a ``.sql`` file; ``expected``, the value
    to compare with; ``comparison``, one of ``== != < <= > >=`` (default ``==``).
    The query returns rows of ``(label, actual)``, each compared on its own, so one
    file can check a rule on several tables; a query returning a single column
    uses the check's ``name`` as the label. Labels must be distinct across all the
    checks (the task fails otherwise), so a failure names one rule. Queries may use
    the run parameters (see LoadFactOperator).

    Failed checks fail the task without retries: retrying does not change data.

    :param checks: the checks (templated: each ``sql`` may be a file name)
    :param parameters: extra bound parameters for the queries (templated)
    :param restated_table: a staging table staged by time: the load also covers the hours this run's
        staging of it restated (objects late, changed or gone), read from ``restatements``
    :param redshift_conn_id: warehouse connection, of type postgres or redshift (templated)
    """

    template_fields: Sequence[str] = ("checks", "parameters", "redshift_conn_id")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"checks": "json", "parameters": "json"}
    ui_color = "#89DA59"

    def __init__(
        self,
        *,
        checks: list[dict[str, Any]],
        parameters: dict[str, Any] | None = None,
        restated_table: str | None = None,
        redshift_conn_id: str = "sparkify_warehouse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.checks = checks
        self.parameters = parameters or {}
        self.restated_table = restated_table
        self.redshift_conn_id = redshift_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        if not self.checks:
            raise AirflowFailException("no data quality checks given")
        hook, dialect = warehouse_hook(self.redshift_conn_id)
        parameters = {**run_parameters(context), **self.parameters}
        results, failures = [], []
        labels: dict[str, str] = {}
        with transaction(hook, dialect) as cursor:
            if self.restated_table:
                parameters = with_restated_hours(cursor, parameters, self.restated_table)
            for number, check in enumerate(self.checks, start=1):
                name = check.get("name", f"check {number}")
                comparison = check.get("comparison", "==")
                if comparison not in COMPARISONS or "expected" not in check:
                    raise AirflowFailException(f"{name}: needs 'expected' and a comparison in {list(COMPARISONS)}")
                execute_statements(cursor, [check["sql"].strip().rstrip(";")], parameters)
                rows = cursor.fetchall()
                if not rows:
                    raise AirflowException(f"{name}: the query returned no rows")
                for row in rows:
                    label, actual = (row[0], row[1]) if len(row) > 1 else (name, row[0])
                    if str(label) in labels:  # two results under one label: a failure could not be told apart
                        raise AirflowFailException(
                            f"{name}: the label {str(label)!r} is also {labels[str(label)]}'s: give every row its own"
                        )
                    labels[str(label)] = name
                    passed = COMPARISONS[comparison](actual, check["expected"])
                    results.append({"check": str(label), "actual": actual, "passed": passed})
                    line = f"{label}: expected {comparison} {check['expected']!r}, got {actual!r}"
                    self.log.info("%s %s", "PASS" if passed else "FAIL", line)
                    if not passed:
                        failures.append(line)
        if failures:
            raise AirflowFailException(
                f"{len(failures)} of {len(results)} data quality checks failed:\n" + "\n".join(failures)
            )
        summary = {"checks": len(results), "failed": 0}
        record_asset_events(context, self.outlets, {**summary, "passed": len(results)}, parameters)
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the tables the checks read."""
        return checks_lineage(self.redshift_conn_id, [check["sql"] for check in self.checks])
