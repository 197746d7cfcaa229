"""`silhouette deploy-web`: put the web page (web/) in a deployed stack's page bucket and clear
CloudFront's copy, so the distribution (template.yaml: WebDistribution) serves it beside the
API on one origin."""

from __future__ import annotations

import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from silhouette.names import PROJECT_ROOT

PAGE_FOLDER = PROJECT_ROOT / "web"
# Revalidated on every load: a deployment is seen at once (the files are small).
CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class DeployedPage:
    url: str
    uploaded: list[str]  # keys, in order
    removed: list[str]  # keys no longer in web/
    invalidation_id: str


def deploy_page(stack_name: str, page: Path = PAGE_FOLDER, session: Any = None) -> DeployedPage:
    """Upload every file of `page`, remove what the bucket holds beyond them, and invalidate
    the distribution's cache; where the page now is."""
    session = session or boto3.session.Session()
    outputs = _stack_outputs(session.client("cloudformation"), stack_name)
    bucket, distribution = outputs["WebBucketName"], outputs["WebDistributionId"]
    s3 = session.client("s3")
    files = sorted(path for path in page.rglob("*") if path.is_file())
    uploaded = []
    for path in files:
        key = path.relative_to(page).as_posix()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=content_type,
            CacheControl=CACHE_CONTROL,
        )
        uploaded.append(key)
    stale = [
        item["Key"]
        for listing in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in listing.get("Contents", [])
        if item["Key"] not in uploaded
    ]
    for key in stale:
        s3.delete_object(Bucket=bucket, Key=key)
    invalidation = session.client("cloudfront").create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": f"deploy-web-{time.time_ns()}",
        },
    )
    return DeployedPage(outputs["WebUrl"], uploaded, stale, invalidation["Invalidation"]["Id"])


def _stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
