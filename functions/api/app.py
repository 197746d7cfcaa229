"""The public HTTP API: uploads, job status and results, deletion, health, MinIO webhook."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from silhouette.service.api import resolve
from silhouette.service.handlers import instrumented


@instrumented(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(event, context)
