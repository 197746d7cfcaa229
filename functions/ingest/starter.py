"""Upload-event starter: one pipeline execution per uploaded photo."""

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from silhouette.pipeline import instrumented, transient_aws_errors
from silhouette.settings import get_settings
from silhouette.starter import start_job, uploaded_objects


@instrumented(correlation_id_path="id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    stepfunctions = boto3.client("stepfunctions")
    with transient_aws_errors("starter"):
        started = [
            start_job(upload, stepfunctions, get_settings().state_machine_arn)
            for upload in uploaded_objects(event)
        ]
    return {"started": sum(started), "skipped": len(started) - sum(started)}
