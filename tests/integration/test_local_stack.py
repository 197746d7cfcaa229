"""The embedded stack is built from template.yaml and statemachine.asl.json, and its Lambda
adapter behaves like the Lambda Invoke API."""

from __future__ import annotations

import json

from silhouette.local.template import load
from silhouette.names import PROJECT_ROOT


def test_resources_follow_the_template(stack):
    s3 = stack.client("s3")
    bucket = stack.outputs["PhotoBucketName"]
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    table = stack.client("dynamodb").describe_table(TableName=stack.outputs["JobsTableName"])[
        "Table"
    ]
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]

    machine = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.outputs["PipelineStateMachineArn"]
    )
    definition = json.loads(machine["definition"])
    asl = json.loads((PROJECT_ROOT / "statemachine.asl.json").read_text())
    assert definition["States"].keys() == asl["States"].keys()
    assert (
        definition["States"]["Ingest"]["Resource"]
        == (
            stack.client("lambda").get_function(FunctionName=stack.function_name("IngestFunction"))[
                "Configuration"
            ]["FunctionArn"]
        )
    )

    template = load(PROJECT_ROOT / "template.yaml")
    pattern = template["Resources"]["UploadStarterFunction"]["Properties"]["Events"][
        "UploadCreated"
    ]["Properties"]["Pattern"]
    rules = {
        rule["Name"]: rule
        for rule in stack.client("events").list_rules(EventBusName="default")["Rules"]
    }
    starter = rules[f"{stack.function_name('UploadStarterFunction')}-UploadCreated"]
    assert json.loads(starter["EventPattern"])["detail"]["object"] == pattern["detail"]["object"]
    sweep = rules[f"{stack.function_name('SweeperFunction')}-Sweep"]
    assert sweep["ScheduleExpression"] == "rate(5 minutes)"


def test_function_environment_comes_from_the_template(stack):
    config = stack.client("lambda").get_function(
        FunctionName=stack.function_name("UploadStarterFunction")
    )["Configuration"]
    variables = config["Environment"]["Variables"]
    assert variables["SILHOUETTE_STATE_MACHINE_ARN"] == stack.outputs["PipelineStateMachineArn"]
    assert variables["SILHOUETTE_BUCKET"] == stack.outputs["PhotoBucketName"]
    assert variables["SILHOUETTE_MAX_UPLOAD_BYTES"] == "20971520"
    assert config["PackageType"] == "Image"


def test_handler_errors_are_reported_like_the_invoke_api(stack):
    response = stack.client("lambda").invoke(
        FunctionName=stack.function_name("IngestFunction"), Payload=json.dumps({"job_id": "x"})
    )
    assert "FunctionError" in response
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ValidationError"
    assert "bucket" in error["errorMessage"] and error["stackTrace"]
