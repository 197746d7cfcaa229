"""Batch steps: expand the source into items, prepare one item, finish the batch, remove its
webhook (the Tasks of batch.asl.json; see silhouette.service.batches and batch_webhooks)."""

from typing import Any

import boto3
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from silhouette.schema import BatchStep, ItemStep
from silhouette.service import batch_webhooks, batches
from silhouette.service.handlers import instrumented, transient_aws_errors
from silhouette.service.notifications import EventBridgePublisher
from silhouette.service.storage import s3_client
from silhouette.settings import get_settings


@instrumented(correlation_id_path="batch_id")
def expand(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=BatchStep)
    with transient_aws_errors("batch expand"):
        plan = batches.expand(step.batch_id, s3_client(), boto3.client("events"))
    return plan.model_dump(mode="json")


@instrumented(correlation_id_path="job_id")
def prepare_item(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=ItemStep)
    with transient_aws_errors("batch item"):
        return batches.prepare_item(step.job_id, s3_client()).model_dump(mode="json")


@instrumented(correlation_id_path="batch_id")
def finish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=BatchStep)
    publisher = EventBridgePublisher(get_settings().event_bus)
    with transient_aws_errors("batch finish"):
        outcome = batches.finish_batch(step.batch_id, s3_client(), publisher, step.failure)
    return outcome.model_dump(mode="json")


@instrumented(correlation_id_path="batch_id")
def remove_webhook(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=BatchStep)
    with transient_aws_errors("batch webhook"):
        batch_webhooks.unsubscribe(step.batch_id, boto3.client("events"))
    return {"batch_id": step.batch_id}
