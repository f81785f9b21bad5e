"""A local AWS endpoint for tests and benchmarks: moto in server mode on 127.0.0.1, in a thread of
this process, with a log of every request it answers.

moto's server keeps S3 and SQS in one process, so a bucket's event notifications reach its queues
for real (as JSON records with the key URL-encoded, its size and ETag). The log reads each request
as AWS bills it: the service from the request's signature, the operation from SQS's
``X-Amz-Target`` header or from S3's method and path (``ListObjectsV2`` of a prefix, ``HeadObject``,
``GetObject``…), so a test can say "no LIST of song_data/" and a benchmark can count requests.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

#: The credentials moto accepts (it checks none); any region works, the tests use this one.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")


@dataclass(frozen=True)
class Request:
    """One request as AWS counts it."""

    service: str  # "s3", "sqs", …
    operation: str  # "ListObjectsV2", "GetObject", "ReceiveMessage", …
    bucket: str = ""
    key: str = ""  # the object, or for a listing its prefix


def _s3_operation(method: str, path: str, query: dict[str, list[str]]) -> tuple[str, str, str]:
    """(operation, bucket, key or listed prefix) of an S3 request in path style."""
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not key:
        if method == "GET" and ("list-type" in query or not query):
            return ("ListObjectsV2" if "list-type" in query else "ListObjects"), bucket, query.get("prefix", [""])[0]
        if method == "GET" and "versions" in query:
            return "ListObjectVersions", bucket, query.get("prefix", [""])[0]
        if method == "POST" and "delete" in query:
            return "DeleteObjects", bucket, ""
        if query:  # a sub-resource: ?notification, ?versioning…
            return f"{method.title()}Bucket{''.join(name.title() for name in query)}", bucket, ""
        names = {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
        return names.get(method, f"{method} bucket"), bucket, ""
    names = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
    return names.get(method, f"{method} object"), bucket, key


class RequestLog:
    """WSGI middleware: records each request, then lets moto answer it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group("service") if scope else ""
        if service == "s3":
            query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            request = Request("s3", *_s3_operation(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), query))
        else:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            request = Request(service, target.rpartition(".")[2] or environ["REQUEST_METHOD"])
        if service:  # moto's own dashboard and health calls are not AWS requests
            with self._lock:
                self.requests.append(request)
        return self.app(environ, start_response)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def count(self, service: str, operation: str | None = None, key_prefix: str | None = None) -> int:
        """Requests of a service (and operation; and whose key or listed prefix starts with ``key_prefix``)."""
        with self._lock:
            return sum(1 for request in self.requests if request.service == service
                       and (operation is None or request.operation == operation)
                       and (key_prefix is None or request.key.startswith(key_prefix)))

    def summary(self) -> dict[str, int]:
        """Requests by ``service:operation``."""
        counts: dict[str, int] = {}
        with self._lock:
            for request in self.requests:
                name = f"{request.service}:{request.operation}"
                counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MotoServer:
    """moto's server app behind a :class:`RequestLog`, served by werkzeug in a daemon thread."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any) -> None:  # the RequestLog keeps what matters
                pass

        self.log = RequestLog(DomainDispatcherApplication(create_backend_app))
        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, self.log, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, **CREDENTIALS)

    def aws_connection(self) -> dict[str, Any]:
        """An ``aws_default`` connection reaching this endpoint, as a user would configure one."""
        return {"conn_type": "aws", "login": CREDENTIALS["aws_access_key_id"],
                "password": CREDENTIALS["aws_secret_access_key"],
                "extra": {"endpoint_url": self.endpoint, "region_name": CREDENTIALS["region_name"]}}

    def notifying_bucket(self, bucket: str, queue: str, prefix: str) -> str:
        """Create ``bucket`` and ``queue``; the bucket's created and removed objects under ``prefix``
        are notified to the queue (as S3 does, after a test event). The queue's URL."""
        s3, sqs = self.client("s3"), self.client("sqs")
        s3.create_bucket(Bucket=bucket)
        url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
        }]})
        return url
