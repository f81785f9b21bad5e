"""SQL run as it is on the warehouse connection (the create_tables task), whichever way that
connection reaches the warehouse: a SQL hook's driver, or Redshift's Data API, which no SQL hook
speaks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from sparkify.warehouse.transactions import execute_statements, transaction, warehouse_hook

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context


class WarehouseSQLOperator(SQLExecuteQueryOperator):
    """
    ``SQLExecuteQueryOperator`` that also runs on a ``redshift`` connection whose extra says
    ``"use_data_api": true``: there the statements (``split_statements``) go to Redshift as one
    Data API batch, one transaction, as the other tasks' do (``sparkify.warehouse.transactions``), and
    nothing is returned. On any other connection it is ``SQLExecuteQueryOperator`` itself.

    Its SQL is rendered with ``dialect``, the warehouse connection's type, as every SQL file of the
    package is (``include/sql/macros/dialect.sql`` reads it). Takes ``SQLExecuteQueryOperator``'s
    arguments; ``conn_id`` is the warehouse connection (templated).
    """

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render with ``dialect`` beside the task's context."""
        from airflow.sdk import Connection

        dialect = Connection.get(self.conn_id).conn_type if self.conn_id else None
        super().render_template_fields({**context, "dialect": dialect}, jinja_env)  # type: ignore[typeddict-unknown-key]

    def execute(self, context: Context) -> Any:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowFailException

        if not self.conn_id:
            raise AirflowFailException("WarehouseSQLOperator needs conn_id, the warehouse connection")
        connection = Connection.get(self.conn_id)
        if not (connection.conn_type == "redshift" and connection.extra_dejson.get("use_data_api")):
            # SQLExecuteQueryOperator.execute is not annotated.
            return super().execute(context)  # type: ignore[no-untyped-call]
        hook, dialect = warehouse_hook(self.conn_id)
        texts = [self.sql] if isinstance(self.sql, str) else list(self.sql)
        statements = [statement for text in texts for statement in
                      (DbApiHook.split_sql_string(text, strip_semicolon=True) if self.split_statements else [text])]
        with transaction(hook, dialect) as cursor:
            execute_statements(cursor, statements, dict(self.parameters or {}))
        self.log.info("Ran %d statements in one Data API batch", len(statements))
        return None
