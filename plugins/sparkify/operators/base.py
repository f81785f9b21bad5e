"""The base of the load and check operators: one warehouse transaction per task, over the run's
interval and the hours its staging restated, then the task's figures on its asset events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from sparkify import cost
from sparkify.cost import counting
from sparkify.lineage import load_lineage, record_asset_events
from sparkify.staging import restatement
from sparkify.warehouse.run_parameters import run_parameters
from sparkify.warehouse.sql import quote_identifier, render_named
from sparkify.warehouse.transactions import Cursor, transaction, warehouse_hook

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context


class WarehouseOperator(BaseOperator):
    """
    Runs :meth:`run_in_transaction` in one transaction of the warehouse connection (through the Data API,
    a load over more spans than one batch holds commits them in several, each span whole:
    :func:`sparkify.warehouse.transactions.keep_together`).

    Its bound parameters are the run's (``%(batch_id)s``, ``%(interval_start)s``,
    ``%(interval_end)s``, ``%(start_ms)s``, ``%(end_ms)s``) and any given in ``parameters``.
    With ``restated_table`` the task covers *spans*: the run's interval and the hours its staging
    restated (:mod:`sparkify.staging.restatement`), each span's statements run with its own interval. Its XCom
    carries its ``cost`` (statements, transactions or Data API batches: :mod:`sparkify.cost`), and its asset
    events that of the run's staging too (``staging_cost``).

    :param parameters: extra bound parameters for the SQL (templated)
    :param restated_table: a staging table staged by time: the task also covers the hours this run's
        staging of it restated (objects late, changed or gone), read from ``restatements``
    :param redshift_conn_id: warehouse connection, of type postgres or redshift (templated)
    """

    template_fields: Sequence[str] = ("parameters", "redshift_conn_id")
    template_ext: Sequence[str] = (".sql",)

    def __init__(
        self,
        *,
        parameters: dict[str, Any] | None = None,
        restated_table: str | None = None,
        redshift_conn_id: str = "sparkify_warehouse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.parameters = parameters or {}
        self.restated_table = restated_table
        self.redshift_conn_id = redshift_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        parameters = {**run_parameters(context), **self.parameters}
        with counting() as spent:
            hook, dialect = warehouse_hook(self.redshift_conn_id)
            with transaction(hook, dialect) as cursor:
                restated = (restatement.restated_spans(cursor, parameters, self.restated_table)
                            if self.restated_table else [])
                spans = restatement.load_spans(parameters, restated)
                result = self.run_in_transaction(cursor, dialect, parameters, spans)
        result = {**result, "cost": spent.figures()}
        staging = self.staging_results(context)
        figures = {
            **self.asset_figures(result),
            "objects_set_aside": sorted({entry["object_uri"] for found in staging
                                         for entry in found.get("set_aside", [])}),
            # What staging this run cost, beside the task's own cost: the asset event says what the hour cost.
            "staging_cost": cost.total(found.get("cost") for found in staging),
        }
        record_asset_events(context, self.outlets, figures, spans, restated)
        return result

    def staging_results(self, context: Context) -> list[dict[str, Any]]:
        """The XComs of the run's staging tasks (recognised by their class, upstream of this one): the objects
        they set aside as bad (what the tables this task writes go without until those objects change) and
        what they cost."""
        from sparkify.operators.stage_to_redshift import StageToRedshiftOperator

        ti = context.get("ti")
        if ti is None:
            return []  # executed outside a DAG run
        staging = [task.task_id for task in self.get_flat_relatives(upstream=True)
                   if isinstance(task, StageToRedshiftOperator)]
        found = ti.xcom_pull(task_ids=staging) if staging else []
        return [result for result in found or [] if isinstance(result, dict)]

    def run_in_transaction(self, cursor: Cursor, dialect: str, parameters: dict[str, Any],
                           spans: list[dict[str, Any]]) -> dict[str, Any]:
        """The task's statements on the open ``cursor``, for each span's bound parameters (``spans``;
        ``parameters`` are the run's own); its figures (the XCom)."""
        raise NotImplementedError

    def asset_figures(self, result: dict[str, Any]) -> dict[str, Any]:
        """What the task's asset events carry: its figures."""
        return result


@overload
def checked_identifier(name: str, argument: str) -> str: ...
@overload
def checked_identifier(name: str | None, argument: str) -> str | None: ...
def checked_identifier(name: str | None, argument: str) -> str | None:
    """An identifier argument that is not templated, checked when the DAG is parsed."""
    if name is None:
        return None
    try:
        quote_identifier(name)
    except AirflowFailException as error:
        raise AirflowFailException(f"{argument}: {error}") from None
    return name


class TableLoadOperator(WarehouseOperator):
    """
    Loads one table with a select, wrapped in the statement template of a mode (``modes``).

    :param table: the table (templated)
    :param sql: a SELECT returning the table's columns in order (an UPDATE in ``update`` mode),
        or a ``.sql`` file holding one (templated); it may use the bound parameters
    :param mode: one of the operator's ``modes``, checked when the DAG is parsed
    """

    #: Each mode's statement template in plugins/sparkify/sql/modes.
    modes: dict[str, str] = {}
    template_fields: Sequence[str] = ("table", "sql", "parameters", "redshift_conn_id")
    template_fields_renderers = {"sql": "sql", "parameters": "json"}

    def __init__(self, *, table: str, sql: str, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in self.modes:
            raise AirflowFailException(f"unknown mode {mode!r}; use one of {sorted(self.modes)}")
        self.table = table
        self.sql = sql
        self.mode = mode

    def mode_statements(self, dialect: str, **variables: Any) -> dict[str, str]:
        """The mode's statements, by name, around this task's select."""
        return render_named(
            self.modes[self.mode], dialect=dialect, table=quote_identifier(self.table),
            select=self.sql.strip().rstrip(";"), **variables,
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the tables the SQL reads → the loaded table."""
        return load_lineage(self.redshift_conn_id, self.table, self.sql)
