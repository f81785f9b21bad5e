"""DataQualityOperator: SQL checks on the warehouse, every failure reported at once."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sparkify.lineage import checks_lineage
from sparkify.operators.base import WarehouseOperator
from sparkify.staging.restatement import span_text
from sparkify.warehouse.transactions import Cursor, execute_statements

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class DataQualityOperator(WarehouseOperator):
    """
    Run SQL checks and fail with every failed check and its actual value in one error.

    A check is a dict: ``sql``, a query or a ``.sql`` file; ``expected``, the value
    to compare with; ``comparison``, one of ``== != < <= > >=`` (default ``==``), checked
    when the DAG is parsed. The query returns rows of ``(label, actual)``, each compared on
    its own, so one file can check a rule on several tables; a query returning a single column
    uses the check's ``name`` as the label. Labels must be distinct across all the
    checks (the task fails otherwise), so a failure names one rule. Queries may use
    the bound parameters (see WarehouseOperator).

    Failed checks fail the task without retries: retrying does not change data.

    :param checks: the checks (templated: each ``sql`` may be a file name)
    """

    template_fields: Sequence[str] = ("checks", "parameters", "redshift_conn_id")
    template_fields_renderers = {"checks": "json", "parameters": "json"}
    ui_color = "#89DA59"

    def __init__(self, *, checks: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not checks:
            raise AirflowFailException("no data quality checks given")
        for number, check in enumerate(checks, start=1):
            if check.get("comparison", "==") not in COMPARISONS or "expected" not in check:
                name = check.get("name", f"check {number}")
                raise AirflowFailException(f"{name}: needs 'expected' and a comparison in {list(COMPARISONS)}")
        self.checks = checks

    def run_in_transaction(self, cursor: Cursor, dialect: str, parameters: dict[str, Any],
                           spans: list[dict[str, Any]]) -> dict[str, Any]:
        results, failures = [], []
        for span in spans:
            # Several spans (hours restated apart from the run's own): each result says which it is.
            where = f"{span_text((span['interval_start'], span['interval_end']))}: " if len(spans) > 1 else ""
            labels: dict[str, str] = {}
            for number, check in enumerate(self.checks, start=1):
                name = check.get("name", f"check {number}")
                comparison = check.get("comparison", "==")
                execute_statements(cursor, [check["sql"].strip().rstrip(";")], span)
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
                    results.append({"check": f"{where}{label}", "actual": actual, "passed": passed})
                    line = f"{where}{label}: expected {comparison} {check['expected']!r}, got {actual!r}"
                    self.log.info("%s %s", "PASS" if passed else "FAIL", line)
                    if not passed:
                        failures.append(line)
        if failures:
            raise AirflowFailException(
                f"{len(failures)} of {len(results)} data quality checks failed:\n" + "\n".join(failures)
            )
        return {"checks": len(results), "failed": 0}

    def asset_figures(self, result: dict[str, Any]) -> dict[str, Any]:
        return {**result, "passed": result["checks"]}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the tables the checks read."""
        return checks_lineage(self.redshift_conn_id, [check["sql"] for check in self.checks])
