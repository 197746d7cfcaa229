"""Upload-event starter: one pipeline execution per uploaded photo."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from silhouette.service.handlers import instrumented
from silhouette.service.starter import start_uploads


@instrumented(correlation_id_path="id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return start_uploads(event)
