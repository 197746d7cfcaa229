"""The API function's handler (functions/api/app.py) called in-process with a REST API proxy
event, as API Gateway would call it, and the JSON log lines it wrote meanwhile."""

from __future__ import annotations

import importlib.util
import io
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

API_FUNCTION = Path(__file__).resolve().parents[2] / "functions" / "api" / "app.py"


@dataclass
class LambdaContext:
    """What Powertools reads of the Lambda runtime's context object."""

    function_name: str = "silhouette-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:silhouette-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: str
    gateway_request_id: str  # API Gateway's own id, the API function's correlation_id
    logs: list[dict[str, Any]]  # the invocation's log lines (metrics left out)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def request_id(self) -> str:
        (value,) = self.headers["X-Request-ID"]
        return value


@cache
def api_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("silhouette_function_api", API_FUNCTION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def call_api(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    api_key_id: str | None = None,
) -> Answer:
    """Invoke the handler. Without `api_key_id` (the key API Gateway accepted) a route that
    needs a tenant answers 403 once the request is valid, so no AWS service is needed."""
    gateway_request_id = str(uuid.uuid4())
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "multiValueHeaders": {name: [value] for name, value in (headers or {}).items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {
            "requestId": gateway_request_id,
            "resourcePath": path,
            "httpMethod": method,
            "stage": "v1",
            "identity": {"apiKeyId": api_key_id},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }
    with logged() as logs:
        response = api_handler()(event, LambdaContext())
    return Answer(
        status=response["statusCode"],
        headers=dict(response["multiValueHeaders"]),
        body=response["body"],
        gateway_request_id=gateway_request_id,
        logs=logs,
    )


@contextmanager
def logged() -> Iterator[list[dict[str, Any]]]:
    """The log lines this thread writes in the block (filled in when it ends)."""
    stream = io.StringIO()
    lines: list[dict[str, Any]] = []
    with redirect_stdout(stream):
        yield lines
    parsed = [json.loads(line) for line in stream.getvalue().splitlines()]
    lines.extend(line for line in parsed if "level" in line)
