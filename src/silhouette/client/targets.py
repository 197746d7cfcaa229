"""Where the CLI's jobs run: the public API of `silhouette serve` or a deployed stack (URL and
key), or else an embedded stack started for the command. Also finds a stack's resource names
(from the CloudFormation stack's outputs, or the template for local servers) for the tools
that talk to AWS directly, such as `silhouette events`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from silhouette.client.api_client import ApiClient
from silhouette.local.template import Template
from silhouette.names import PROJECT_ROOT
from silhouette.pipeline import job_functions


def stack_outputs(endpoint_url: str | None, stack_name: str, region: str) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint_url, region_name=region)
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError:
        # Local servers create resources from the template without CloudFormation.
        return Template(PROJECT_ROOT / "template.yaml", stack_name, region).outputs()
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


@contextmanager
def api_target(
    api_url: str | None, api_key: str | None, log_path: Path
) -> Iterator[tuple[ApiClient, str]]:
    """An API client and a description of where it points."""
    if api_url is not None:
        if not api_key:
            raise ValueError("an API key is needed with --api-url (or SILHOUETTE_API_KEY)")
        yield ApiClient(api_url, api_key), api_url
        return
    from silhouette.local.stack import EmbeddedStack

    with EmbeddedStack(log_path=log_path, provisioned=job_functions()) as stack:
        yield ApiClient(stack.api_url, next(iter(stack.api_keys))), "embedded stack"
