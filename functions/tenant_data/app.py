"""Tenant data: exports or erases everything of a tenant, asked for through the API, which
invokes this function asynchronously (see silhouette.service.tenant_requests). A failed
invocation is retried by Lambda: an erasure runs again, an export that failed stays FAILED
until it is asked for again."""

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from silhouette.service.handlers import instrumented
from silhouette.service.tenant_requests import TenantTask, run


@instrumented(correlation_id_path="export_id", request_id_path="request_id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run(parse(event=event, model=TenantTask))
