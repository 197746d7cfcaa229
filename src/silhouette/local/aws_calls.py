"""Local only: a record of the AWS calls each function of the embedded stack makes.

moto checks no IAM, so a function calling what its role in template.yaml does not allow would
pass every local test. With SILHOUETTE_AWS_CALL_LOG naming a file, each Lambda worker
(lambda_worker) appends one JSON line per call: the function, the IAM service prefix, the
operation and the parameters that name what it touches. tests/e2e/test_aws_calls.py checks
them against the functions' roles.

Presigned URLs and forms count as calls: they are signed with the function's role, so the role
must allow what they hand out."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from botocore import handlers

CALL_LOG_VARIABLE = "SILHOUETTE_AWS_CALL_LOG"
# The parameters that name what a call touches, by IAM service prefix.
_NAMING_PARAMETERS = {
    "s3": ("Bucket", "Key", "Prefix"),
    "dynamodb": ("TableName", "IndexName"),
    "states": ("stateMachineArn", "executionArn"),
    "apigateway": ("apiKey",),
    "events": ("Name", "Rule", "EventBusName"),  # connections, API destinations, rules
    "lambda": ("FunctionName",),
}


class _Recorder:
    def __init__(self, log_path: Path, function_name: str) -> None:
        self.log_path = log_path
        self.function_name = function_name

    def api_call(
        self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        presigned = bool(context.get("is_presign_request"))
        if presigned and model.name == "CreateBucket":
            return  # botocore's stand-in for a presigned POST: recorded at signing (below)
        service = model.service_model.signing_name
        self._write(service, model.name, _naming(service, params), presigned)

    def presigned_post(self, request: Any, **_: Any) -> None:
        fields = request.context.get("s3-presign-post-fields")
        if fields is None:
            return  # an ordinary PutObject, already recorded as an API call
        conditions = request.context["s3-presign-post-policy"]["conditions"]
        bucket = next(c["bucket"] for c in conditions if isinstance(c, dict) and "bucket" in c)
        self._write("s3", "PutObject", {"Bucket": bucket, "Key": fields["key"]}, presigned=True)

    def _write(self, service: str, operation: str, params: dict[str, Any], presigned: bool) -> None:
        line = {
            "function": self.function_name,
            "service": service,
            "operation": operation,
            "params": params,
            "presigned": presigned,
        }
        # One short append per call: lines of concurrent instances do not interleave.
        with self.log_path.open("a") as log:
            log.write(json.dumps(line) + "\n")


def _naming(service: str, params: dict[str, Any]) -> dict[str, Any]:
    naming = {name: params[name] for name in _NAMING_PARAMETERS.get(service, ()) if name in params}
    if "Delete" in params:  # DeleteObjects
        naming["Keys"] = [item["Key"] for item in params["Delete"]["Objects"]]
    if "Entries" in params:  # PutEvents
        naming["EventBusNames"] = [
            entry.get("EventBusName", "default") for entry in params["Entries"]
        ]
    if "Targets" in params:  # PutTargets: the roles EventBridge is passed
        naming["Targets"] = [
            {"RoleArn": target["RoleArn"]} for target in params["Targets"] if "RoleArn" in target
        ]
    return naming


def record_calls(log_path: Path) -> None:
    """Record the calls of every botocore session created from now on (boto3's and PynamoDB's
    alike: each registers botocore's built-in handlers when it is created)."""
    recorder = _Recorder(log_path, os.environ["AWS_LAMBDA_FUNCTION_NAME"])
    handlers.BUILTIN_HANDLERS.extend(
        [
            ("before-parameter-build", recorder.api_call),
            ("before-sign.s3.PutObject", recorder.presigned_post),
        ]
    )
