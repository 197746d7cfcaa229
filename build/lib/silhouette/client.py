"""Where the CLI's jobs run: the embedded stack (started on demand) or an endpoint such as
`silhouette serve`, LocalStack or a deployed stack, whose resource names come from the
CloudFormation stack's outputs or, for the local servers, from template.yaml."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from silhouette.local.stack import DEFAULT_REGION, DEFAULT_STACK_NAME, PROJECT_ROOT
from silhouette.local.template import Template
from silhouette.settings import get_settings

# Template output name -> the settings variable it fills.
_OUTPUT_SETTINGS = {
    "PhotoBucketName": "SILHOUETTE_BUCKET",
    "JobsTableName": "SILHOUETTE_TABLE",
    "JobEventBusName": "SILHOUETTE_EVENT_BUS",
    "PipelineStateMachineArn": "SILHOUETTE_STATE_MACHINE_ARN",
}


def stack_outputs(endpoint_url: str | None, stack_name: str, region: str) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint_url, region_name=region)
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError:
        # Local servers create resources from the template without CloudFormation.
        return Template(PROJECT_ROOT / "template.yaml", stack_name, region).outputs()
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


@contextmanager
def target(
    endpoint_url: str | None, log_path: Path, stack_name: str = DEFAULT_STACK_NAME
) -> Iterator[str]:
    """Make this process's settings and SDKs point at the chosen stack; yields a description."""
    if endpoint_url is None:
        from silhouette.local.stack import EmbeddedStack

        with EmbeddedStack(log_path=log_path, stack_name=stack_name):
            yield "embedded stack"
        return
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    outputs = stack_outputs(endpoint_url, stack_name, region)
    saved = dict(os.environ)
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    os.environ.setdefault("AWS_REGION", region)
    for output, variable in _OUTPUT_SETTINGS.items():
        if output in outputs:
            os.environ[variable] = outputs[output]
    get_settings.cache_clear()
    try:
        yield endpoint_url
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
