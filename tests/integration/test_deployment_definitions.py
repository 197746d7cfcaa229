"""template.yaml and statemachine.asl.json checked by the real validators (SAM CLI + cfn-lint,
asl-validator) and for the guarantees the pipeline relies on."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from silhouette.local.lambda_runtime import CAPACITY_WAIT_SECONDS
from silhouette.local.template import load
from silhouette.names import PROJECT_ROOT

CACHE = Path(os.environ.get("SILHOUETTE_CACHE", Path.home() / ".cache" / "silhouette"))
ASL = json.loads((PROJECT_ROOT / "statemachine.asl.json").read_text())
TEMPLATE = load(PROJECT_ROOT / "template.yaml")


def _tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup`")
    return str(path)


def test_sam_validate_with_lint_passes():
    result = subprocess.run(
        [_tool(CACHE / "tools" / "bin" / "sam"), "validate", "--lint", "--region", "us-east-1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.parametrize("definition", ["statemachine.asl.json", "batch.asl.json"])
def test_asl_validator_accepts_the_state_machine(definition):
    result = subprocess.run(
        [
            _tool(CACHE / "node" / "node_modules" / ".bin" / "asl-validator"),
            "--json-path",
            str(PROJECT_ROOT / definition),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _tasks() -> dict[str, dict]:
    """The Tasks that invoke the project's functions."""
    return {
        name: state
        for name, state in ASL["States"].items()
        if state["Type"] == "Task" and state["Resource"].startswith("${")
    }


def test_every_task_retries_transient_and_lambda_errors_with_backoff():
    for name, state in _tasks().items():
        retried = {error for rule in state.get("Retry", []) for error in rule["ErrorEquals"]}
        assert {
            "TransientError",
            "Lambda.ServiceException",
            "Lambda.TooManyRequestsException",
        } <= retried, name
        assert "States.ALL" not in retried, f"{name} would retry permanent errors"
        assert all(rule.get("BackoffRate", 1) > 1 for rule in state["Retry"]), name


def _function_timeout(task: dict) -> int:
    function = re.fullmatch(r"\$\{(\w+)Arn\}", task["Resource"]).group(1)
    properties = TEMPLATE["Resources"][function]["Properties"]
    return properties.get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])


def test_a_function_times_out_before_its_task_so_the_error_says_which():
    # Lambda's own timeout ends the invocation with Sandbox.Timedout (recorded as the job's
    # error); a Task timeout shorter than the function's would cut it off as States.Timeout.
    # Locally an invocation may first wait CAPACITY_WAIT_SECONDS for a busy instance.
    for name, state in _tasks().items():
        limit = _function_timeout(state)
        assert limit + CAPACITY_WAIT_SECONDS < state["TimeoutSeconds"] <= limit + 10, name


def _waiting_budget_seconds(rule: dict) -> float:
    """The mean time a retrier waits over all its attempts (full jitter halves each delay)."""
    delays = (
        min(rule["IntervalSeconds"] * rule["BackoffRate"] ** attempt, rule["MaxDelaySeconds"])
        for attempt in range(rule["MaxAttempts"])
    )
    return sum(delays) / (2 if rule.get("JitterStrategy") == "FULL" else 1)


def test_a_throttled_stage_waits_for_capacity_instead_of_failing_the_job():
    # 300 photos on a 2-core machine take 20 minutes to pass the cutout stage one or two at a
    # time, twice that with another heavy process beside it; the last one must still be
    # waiting, not FAILED, when its turn comes. Every attempt adds 3 events to the execution's
    # history, which AWS caps at 25,000.
    for name, state in _tasks().items():
        [throttled] = [
            r for r in state["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"]
        ]
        assert _waiting_budget_seconds(throttled) >= 60 * 60, name
        assert throttled["MaxDelaySeconds"] <= 10, f"{name}: a free instance would sit idle"
        assert throttled["MaxAttempts"] * 3 < 25_000 / 2, name
    slowest_path = sum(state["TimeoutSeconds"] for state in _tasks().values())
    assert ASL["TimeoutSeconds"] >= slowest_path + 60 * 60


def test_every_task_failure_is_recorded_as_failed():
    # A stage's failure, and finalize's own when it records an outcome, go to RecordFailure;
    # when that fails too, the table is written directly; only then does the execution end.
    expected = {"RecordFailure": "RecordFailureInTable", "RecordFailureInTable": "JobFailed"}
    tasks = {name: s for name, s in ASL["States"].items() if s["Type"] == "Task"}
    for name, state in tasks.items():
        catch_all = [c for c in state.get("Catch", []) if c["ErrorEquals"] == ["States.ALL"]]
        assert catch_all, f"{name} has no catch-all: a crash would leave the job PROCESSING"
        assert catch_all[0]["Next"] == expected.get(name, "RecordFailure"), name
    assert ASL["States"]["RecordFailure"]["Parameters"]["terminal"] == "FAILED"
    for name in ("RecordCompleted", "RecordRejected", "RecordFailure"):
        # Not $.error: that keeps the failed stage's error (and a rejection its reason).
        assert tasks[name]["Catch"][0]["ResultPath"] == "$.finalize_error", name


def test_the_last_resort_marks_only_an_open_job_failed():
    update = ASL["States"]["RecordFailureInTable"]["Parameters"]
    names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
    condition = update["ConditionExpression"]
    for name, value in names.items():
        condition = condition.replace(name, value)
    for name, value in values.items():
        condition = condition.replace(name, value.get("S", ""))
    assert condition == "status IN (QUEUED, PROCESSING)"
    assert values[":failed"] == {"S": "FAILED"}


@pytest.mark.parametrize(
    ("logical_id", "definition"),
    [("PipelineStateMachine", "statemachine.asl.json"), ("BatchStateMachine", "batch.asl.json")],
)
def test_state_machine_substitutions_match_the_template(logical_id, definition):
    machine = TEMPLATE["Resources"][logical_id]["Properties"]
    assert machine["DefinitionUri"] == definition
    used = set(re.findall(r"\$\{(\w+)\}", (PROJECT_ROOT / definition).read_text()))
    assert used == set(machine["DefinitionSubstitutions"])


def test_bucket_is_private_and_encrypted():
    bucket = TEMPLATE["Resources"]["PhotoBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert TEMPLATE["Resources"]["JobsTable"]["Properties"]["SSESpecification"]["SSEEnabled"]


def test_every_function_is_an_image_with_a_dockerfile_and_handler():
    functions = {
        k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
    }
    assert len(functions) >= 6
    for name, function in functions.items():
        assert function["Properties"]["PackageType"] == "Image", name
        dockerfile = PROJECT_ROOT / function["Metadata"]["Dockerfile"]
        text = dockerfile.read_text()
        assert text.startswith("#") and "FROM public.ecr.aws/lambda/python:3.11" in text, name
        command = function["Properties"].get("ImageConfig", {}).get("Command") or json.loads(
            re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1)
        )
        module = command[0].rsplit(".", 1)[0]
        assert (dockerfile.parent / f"{module}.py").exists(), name


def test_api_gateway_routes_are_exactly_the_api_functions_routes():
    """API Gateway only forwards the routes template.yaml declares: each must exist in the
    function, and every route of the function must be reachable."""
    from silhouette.service.api import app

    events = TEMPLATE["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    declared = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"]): event["Properties"]
        for event in events
        if event["Type"] == "Api"
    }
    served = {
        (method.upper(), path)
        for path, operations in json.loads(app.get_openapi_json_schema())["paths"].items()
        for method in operations
    } | {("GET", "/openapi.json")}
    assert set(declared) == served
    # Only health, the API description and MinIO's webhook (shared token) go without a key.
    keyless = {
        route
        for route, properties in declared.items()
        if properties.get("Auth", {}).get("ApiKeyRequired") is False
    }
    assert keyless == {("GET", "/health"), ("GET", "/openapi.json"), ("POST", "/webhooks/minio")}
    api = TEMPLATE["Resources"]["PublicApi"]["Properties"]
    assert api["Auth"]["ApiKeyRequired"] is True and api["Auth"]["UsagePlan"]["Throttle"]


def test_the_web_page_s_distribution_reaches_every_api_route_and_only_it_reads_the_page():
    """On AWS the page and the API share CloudFront's origin: every route the API function
    declares must go to the API origin (else the page would get the page bucket's 403), with
    nothing cached and the key forwarded; the rest is the page, from a private bucket only
    this distribution may read."""
    resources = TEMPLATE["Resources"]
    config = resources["WebDistribution"]["Properties"]["DistributionConfig"]
    api_origin = next(o for o in config["Origins"] if o["Id"] == "api")
    assert api_origin["OriginPath"] == f"/{resources['PublicApi']['Properties']['StageName']}"
    api_behaviours = [b for b in config["CacheBehaviors"] if b["TargetOriginId"] == "api"]
    routes = [
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in resources["ApiFunction"]["Properties"]["Events"].values()
        if event["Type"] == "Api"
    ]
    for method, path in routes:
        concrete = re.sub(r"\{[^}]+\}", "0123abcd", path)
        # CloudFront takes the first behaviour whose pattern matches (`*`: any characters).
        matching = (
            b for b in config["CacheBehaviors"] if fnmatch.fnmatchcase(concrete, b["PathPattern"])
        )
        behaviour = next(matching, None)
        assert behaviour in api_behaviours, f"{method} {path} would reach the page bucket"
        assert method in behaviour["AllowedMethods"], (method, path)
    caching_disabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    all_viewer_headers_but_host = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    for behaviour in api_behaviours:
        assert behaviour["CachePolicyId"] == caching_disabled, behaviour["PathPattern"]
        assert behaviour["OriginRequestPolicyId"] == all_viewer_headers_but_host
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "page"
    assert config["DefaultRootObject"] == "index.html"
    assert (PROJECT_ROOT / "web" / config["DefaultRootObject"]).is_file()
    bucket = resources["WebBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (statement,) = resources["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"
    source = statement["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert "${WebDistribution}" in json.dumps(source)
