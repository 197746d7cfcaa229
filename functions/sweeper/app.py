"""Sweeper: ends jobs the state machine could not end, expires uploads that never arrived and
erases jobs whose retention period is over (see silhouette.service.sweeper)."""

from typing import Any

import boto3
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from silhouette.service.handlers import instrumented, transient_aws_errors
from silhouette.service.storage import s3_client
from silhouette.service.sweeper import on_event


@instrumented(correlation_id_path="id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    scheduled = parse(event=event, model=EventBridgeModel)
    with transient_aws_errors("sweeper"):
        return on_event(
            scheduled,
            boto3.client("stepfunctions"),
            s3_client(),
            lambda: context.get_remaining_time_in_millis() / 1000,
        )
