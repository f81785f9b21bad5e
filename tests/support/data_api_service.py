"""The Redshift Data API as a boto3 ``redshift-data`` client sees it, without AWS: registered as the
client's ``before-call.redshift-data`` handler, it records each request (already validated by
botocore against the service model) and answers it as the service would. moto's redshift-data has
no BatchExecuteStatement and never finishes a statement. Used by tests/operators/test_data_api.py
and, for ``make backfill`` on the Data API, by tests/support/redshift_backfill.py."""

from __future__ import annotations

import json
import uuid

from botocore.awsrequest import AWSResponse


class DataApiService:
    """The Redshift Data API as the client sees it: records each request, answers it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.results: list[list[list[dict]]] = []  # records of the next queries, in order
        self.fail = False
        self.polls_until_finished = 0
        self.statements: dict[str, dict] = {}

    def __call__(self, model, params, **_) -> tuple[AWSResponse, dict]:
        request = json.loads(params["body"])
        self.calls.append((model.name, request))
        return AWSResponse("https://redshift-data", 200, {}, None), getattr(self, model.name)(request)

    def ExecuteStatement(self, request: dict) -> dict:  # noqa: N802  (the operation names)
        return self._start([request["Sql"]], records=self.results.pop(0) if self.results else [])

    def BatchExecuteStatement(self, request: dict) -> dict:  # noqa: N802
        return self._start(request["Sqls"], records=None)

    def _start(self, sqls: list[str], records: list[list[dict]] | None) -> dict:
        statement_id = str(uuid.uuid4())
        self.statements[statement_id] = {"sqls": sqls, "records": records, "polls": self.polls_until_finished}
        return {"Id": statement_id}

    def DescribeStatement(self, request: dict) -> dict:  # noqa: N802
        statement = self.statements[request["Id"]]
        if statement["polls"]:
            statement["polls"] -= 1
            return {"Id": request["Id"], "Status": "STARTED"}
        if self.fail:
            return {"Id": request["Id"], "Status": "FAILED", "Error": "ERROR: relation does not exist"}
        subs = [{"Id": f"{request['Id']}:{n}", "Status": "FINISHED", "ResultRows": n}
                for n, _ in enumerate(statement["sqls"], start=1)]
        return {"Id": request["Id"], "Status": "FINISHED", "SubStatements": subs}

    def GetStatementResult(self, request: dict) -> dict:  # noqa: N802
        records = self.statements[request["Id"]]["records"]
        start = int(request.get("NextToken", 0))
        page = {"Records": records[start:start + 2], "ColumnMetadata": [], "TotalNumRows": len(records)}
        if start + 2 < len(records):
            page["NextToken"] = str(start + 2)
        return page

    def named(self, operation: str) -> list[dict]:
        return [request for name, request in self.calls if name == operation]
