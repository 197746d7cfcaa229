"""Finalize: terminal record, result.json and the partner event."""

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from silhouette.schema import FinalizeRequest
from silhouette.service.finalize import finalize
from silhouette.service.handlers import instrumented, transient_aws_errors
from silhouette.service.storage import S3Store


@instrumented(correlation_id_path="job.job_id", request_id_path="job.request_id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=FinalizeRequest)
    with transient_aws_errors("finalize"):
        return finalize(request, S3Store(request.job.bucket))
