"""`silhouette deploy-web` on moto's CloudFormation, S3 and CloudFront: the page's files land
in the stack's page bucket with their content types, stale ones go, and the distribution's
cache is invalidated."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from silhouette.client.cli import main
from silhouette.client.web_deploy import PAGE_FOLDER

REGION = "us-east-1"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="page-bucket")
        s3.put_object(Bucket="page-bucket", Key="old.js", Body=b"from an earlier version")
        distribution = boto3.client("cloudfront").create_distribution(
            DistributionConfig={
                "CallerReference": "test",
                "Comment": "",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "page",
                            "DomainName": "page-bucket.s3.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "page",
                    "ViewerProtocolPolicy": "redirect-to-https",
                },
            }
        )["Distribution"]
        outputs = {
            "WebBucketName": "page-bucket",
            "WebDistributionId": distribution["Id"],
            "WebUrl": f"https://{distribution['DomainName']}/",
        }
        body = {
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
        boto3.client("cloudformation").create_stack(
            StackName="silhouette", TemplateBody=json.dumps(body)
        )
        yield s3, outputs


def test_deploy_web_puts_the_page_in_the_stack_s_bucket_and_invalidates_the_distribution(stack):
    s3, outputs = stack

    result = CliRunner().invoke(main, ["deploy-web", "--stack-name", "silhouette"])

    assert result.exit_code == 0, result.output
    assert outputs["WebUrl"] in result.output
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket="page-bucket")["Contents"]}
    expected = {path.relative_to(PAGE_FOLDER).as_posix() for path in PAGE_FOLDER.rglob("*.*")}
    assert keys == expected and "index.html" in keys  # old.js is gone
    index = s3.get_object(Bucket="page-bucket", Key="index.html")
    assert index["ContentType"] == "text/html"
    assert index["Body"].read() == (PAGE_FOLDER / "index.html").read_bytes()
    script = s3.head_object(Bucket="page-bucket", Key="app.js")
    assert script["ContentType"] in ("text/javascript", "application/javascript")
    cloudfront = boto3.client("cloudfront")
    invalidations = cloudfront.list_invalidations(DistributionId=outputs["WebDistributionId"])
    assert invalidations["InvalidationList"]["Quantity"] == 1
