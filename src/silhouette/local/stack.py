"""The embedded local AWS: a moto server on 127.0.0.1 executing the real state machine, with
every resource created from template.yaml and statemachine.asl.json and every function running
its real handler in-process (see lambda_runtime)."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import time
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from moto.server import ThreadedMotoServer

from silhouette.local import s3_post_policy
from silhouette.local.events import Schedules, create_event_resources, scheduled_event
from silhouette.local.gateway import KeyHolder, LocalApiGateway
from silhouette.local.lambda_runtime import FunctionCode, LambdaRuntime
from silhouette.local.template import Template, parameters_from_environment
from silhouette.names import DEFAULT_REGION, DEFAULT_STACK_NAME, PROJECT_ROOT
from silhouette.schema import Role
from silhouette.settings import get_settings

_FUNCTION = "AWS::Serverless::Function"
LIGHT_FUNCTION_MEMORY_MB = 512


def load_api_keys(path: Path | None) -> dict[str, KeyHolder] | None:
    """The local API keys from a file, else from the SILHOUETTE_API_KEYS variable: a JSON
    object of `"<key>": "<tenant>"` (a user key) or `"<key>": {"tenant": ..., "role": ...}`;
    None when neither is set."""
    text = path.read_text() if path else os.environ.get("SILHOUETTE_API_KEYS")
    if not text:
        return None
    usage = (
        'API keys must be {"<key of 20+ characters>": "<tenant>" or '
        '{"tenant": "<tenant>", "role": "user|tailor|admin"}, ...}'
    )
    entries = json.loads(text)
    if not isinstance(entries, dict):
        raise ValueError(usage)
    keys = {}
    for key, holder in entries.items():
        if isinstance(holder, dict) and set(holder) <= {"tenant", "role"}:
            holder = KeyHolder(holder.get("tenant", ""), Role(holder.get("role", "user")))
        if not (len(key) >= 20 and isinstance(holder, str | KeyHolder)):
            raise ValueError(usage)
        keys[key] = KeyHolder.of(holder)
        if not keys[key].tenant:
            raise ValueError(usage)
    return keys


def local_concurrency(settings: dict[str, Any]) -> int:
    """How many instances of a function run at once here: its ReservedConcurrentExecutions if
    the template sets one, at most SILHOUETTE_LOCAL_CONCURRENCY (default: one per two cores) for
    the model stages, whose models already run on every core (onnxruntime's and XNNPACK's
    threads), and four times that for the light functions (API, starter, finalize: 512 MB or
    less), which mostly wait on the services. A second instance of a model stage on 2 cores
    only added its init: 14 portraits took 13% more CPU and 8% more time with it."""
    models = int(os.environ.get("SILHOUETTE_LOCAL_CONCURRENCY") or (os.cpu_count() or 2) // 2)
    light = int(settings.get("MemorySize", 128)) <= LIGHT_FUNCTION_MEMORY_MB
    limit = max(1, models) * (4 if light else 1)
    reserved = settings.get("ReservedConcurrentExecutions")
    return min(int(reserved), limit) if reserved is not None else limit


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedStack:
    def __init__(
        self,
        log_path: Path,
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = DEFAULT_REGION,
        port: int = 0,
        api_port: int = 0,
        api_keys: Mapping[str, str | KeyHolder] | None = None,
        parameters: dict[str, str] | None = None,
        root: Path = PROJECT_ROOT,
        read_only_functions: bool = False,
        provisioned: bool | Collection[str] = False,
    ) -> None:
        """`api_keys` maps API key -> tenant (a user key) or KeyHolder; by default one fresh
        user key for tenant `local`.
        `parameters` override the template's, over SILHOUETTE_PARAM_<Name> variables.
        `read_only_functions` runs every function on a read-only filesystem with a private
        TMPDIR, as in its Lambda container image (Linux, root). `provisioned` starts one
        instance of every function (True) or of those named (logical ids) as the stack starts,
        in parallel, as provisioned concurrency would: the first photo does not wait for nine
        cold starts in a row."""
        self.template = Template(
            root / "template.yaml",
            stack_name,
            region,
            {**parameters_from_environment(os.environ), **(parameters or {})},
        )
        self.region = region
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.runtime = LambdaRuntime(log_path, read_only=read_only_functions)
        self.api_keys = {
            key: KeyHolder.of(holder)
            for key, holder in (api_keys or {secrets.token_urlsafe(24): "local"}).items()
        }
        self.gateway = LocalApiGateway(self.template, self.client, api_port or free_port())
        self.schedules = Schedules(self.runtime.invoke_async)
        self._schedule_rules: dict[str, str] = {}  # function logical id -> its schedule's rule
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._saved_environ: dict[str, str] | None = None
        self._provisioned = provisioned

    # Lifecycle ----------------------------------------------------------------------------

    def start(self) -> EmbeddedStack:
        self._saved_environ = dict(os.environ)
        s3_post_policy.install(self._sdk_environment())  # S3's checks of presigned requests
        # Functions see the host's variables, the SDK's endpoint and their own (template.yaml);
        # this process, where tests and the CLI call job operations directly, sees them all.
        self.runtime.install({**self._saved_environ, **self._sdk_environment()})
        os.environ.update({**self._sdk_environment(), **self._environment()})
        boto3.DEFAULT_SESSION = None  # clients made from now on sign with the stack's keys
        get_settings.cache_clear()
        try:
            self._server.start()
            self.create_resources()
            self.gateway.start()
            if self._provisioned:
                self.runtime.provision(self._provisioned_names())
        except BaseException:  # Ctrl-C or a failure while starting: leave nothing running
            self.stop()
            raise
        return self

    def _provisioned_names(self) -> list[str] | None:
        if self._provisioned is True:
            return None
        return [self.function_name(logical_id) for logical_id in self._provisioned]

    def stop(self) -> None:
        self.gateway.stop()
        self.schedules.stop()
        self.runtime.uninstall()
        s3_post_policy.uninstall()
        self._server.stop()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            boto3.DEFAULT_SESSION = None
            get_settings.cache_clear()

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Let running executions end, then empty every service and create the resources again."""
        self.wait_for_executions()
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        self.gateway.forget_throttles()
        self.create_resources()

    def wait_for_executions(self, timeout_seconds: float = 60) -> None:
        """Wait until no asynchronous invocation (such as an upload event) is queued and no
        execution is running."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_seconds
        machines = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
        while True:
            if not self.runtime.wait_for_queued(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("asynchronous invocations still queued")
            running = [
                arn
                for arn in machines
                if sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
            ]
            if not running and self.runtime.wait_for_queued(0):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"executions of {running} still running")
            time.sleep(0.05)

    @property
    def outputs(self) -> dict[str, str]:
        return {**self.template.outputs(), "ApiUrl": self.gateway.url}

    @property
    def api_url(self) -> str:
        return self.gateway.url

    def client(self, service: str, config: Config | None = None) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint_url, region_name=self.region, config=config
        )

    def function_name(self, logical_id: str) -> str:
        return self.template.physical_name(logical_id)

    def run_scheduled(self, logical_id: str, at: datetime) -> Any:
        """Invoke a function as its schedule would, at `at` (tests move time forward this
        way); its answer."""
        event = scheduled_event(self._schedule_rules[logical_id], at)
        outcome = self.runtime.invoke(self.function_name(logical_id), event)
        answer = json.loads(outcome.payload)
        if outcome.errored:
            raise RuntimeError(f"{logical_id} failed: {answer}")
        return answer

    # Environment --------------------------------------------------------------------------

    def _sdk_environment(self) -> dict[str, str]:
        """What AWS SDKs need to reach the embedded stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "embedded",
            "AWS_SECRET_ACCESS_KEY": "embedded",
            "MOTO_PORT": str(self.port),  # moto's Step Functions calls Lambda through this port
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
        }

    def _environment(self) -> dict[str, str]:
        """The union of every function's variables from the template (they must agree), for
        the job operations this process runs directly."""
        environment: dict[str, str] = {}
        for logical_id in self.template.resources(_FUNCTION):
            for name, value in self._function_environment(logical_id).items():
                if environment.setdefault(name, value) != value:
                    raise ValueError(
                        f"functions disagree on {name}; the embedded stack needs one value"
                    )
        return environment

    def _function_environment(self, logical_id: str) -> dict[str, str]:
        variables = dict(
            self.template.globals("Function").get("Environment", {}).get("Variables", {})
        )
        own = self.template.properties(logical_id).get("Environment", {}).get("Variables", {})
        variables.update(own)
        return {name: str(value) for name, value in self.template.resolve(variables).items()}

    # Resources ----------------------------------------------------------------------------

    def create_resources(self) -> None:
        self.schedules.stop()
        requests.post(
            f"{self.endpoint_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()
        role = self.client("iam").create_role(
            RoleName=f"{self.template.stack_name}-local", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        for logical_id in self.template.resources("AWS::S3::Bucket"):
            self._create_bucket(logical_id)
        for logical_id in self.template.resources("AWS::DynamoDB::Table"):
            self._create_table(logical_id)
        for logical_id in self.template.resources("AWS::Events::EventBus"):
            self.client("events").create_event_bus(Name=self.template.physical_name(logical_id))
        create_event_resources(self.template, self.client)
        for logical_id in self.template.resources(_FUNCTION):
            self._create_function(logical_id, role)
        for logical_id in self.template.resources("AWS::Serverless::StateMachine"):
            self._create_state_machine(logical_id, role)
        self.gateway.provision(self.api_keys)

    def _create_bucket(self, logical_id: str) -> None:
        s3 = self.client("s3")
        name = self.template.physical_name(logical_id)
        properties = self.template.resolve(self.template.properties(logical_id))
        # Outside us-east-1, S3 wants the region named (as CloudFormation does for it).
        location = (
            {}
            if self.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        )
        s3.create_bucket(Bucket=name, **location)
        if "PublicAccessBlockConfiguration" in properties:
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"],
            )
        if "BucketEncryption" in properties:
            rules = [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        if "CorsConfiguration" in properties:
            rules = [
                {
                    ("MaxAgeSeconds" if key == "MaxAge" else key): value
                    for key, value in rule.items()
                }
                for rule in properties["CorsConfiguration"]["CorsRules"]
            ]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        if "LifecycleConfiguration" in properties:  # moto records the rules; it expires nothing
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [
                        _lifecycle_rule(rule)
                        for rule in properties["LifecycleConfiguration"]["Rules"]
                    ]
                },
            )
        notifications = properties.get("NotificationConfiguration", {})
        if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    def _create_table(self, logical_id: str) -> None:
        properties = self.template.resolve(self.template.properties(logical_id))
        wanted = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
        dynamodb = self.client("dynamodb")
        name = self.template.physical_name(logical_id)
        dynamodb.create_table(
            TableName=name, **{key: properties[key] for key in wanted if key in properties}
        )
        if "TimeToLiveSpecification" in properties:  # moto records it; it expires nothing
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
            )

    def _create_function(self, logical_id: str, role: str) -> None:
        properties = self.template.properties(logical_id)
        settings = {**self.template.globals("Function"), **properties}
        name = self.template.physical_name(logical_id)
        environment = self._function_environment(logical_id)
        function = self.client("lambda").create_function(
            FunctionName=name,
            Role=role,
            PackageType="Image",
            Code={"ImageUri": f"silhouette/{logical_id.lower()}:local"},
            Timeout=int(settings.get("Timeout", 3)),
            MemorySize=int(settings.get("MemorySize", 128)),
            Environment={"Variables": environment},
        )
        self.runtime.register(
            name,
            function["FunctionArn"],
            self._function_code(logical_id, settings),
            environment,
            local_concurrency(settings),
        )
        for event_id, event in properties.get("Events", {}).items():
            rule_properties = self.template.resolve(event["Properties"])
            if event["Type"] == "EventBridgeRule":
                self._create_rule(f"{name}-{event_id}", rule_properties, name)
            elif event["Type"] == "Schedule":
                rule_arn = self._create_rule(f"{name}-{event_id}", rule_properties, name)
                self._schedule_rules[logical_id] = rule_arn
                self.schedules.add(name, rule_arn, rule_properties["Schedule"])

    def _function_code(self, logical_id: str, settings: dict[str, Any]) -> FunctionCode:
        """The handler the function's image runs: ImageConfig.Command, else the Dockerfile CMD."""
        dockerfile = (
            self.template.root
            / self.template.body["Resources"][logical_id]["Metadata"]["Dockerfile"]
        )
        command = settings.get("ImageConfig", {}).get("Command")
        if not command:
            match = re.search(r"^CMD\s+(\[.*\])\s*$", dockerfile.read_text(), re.MULTILINE)
            if match is None:
                raise ValueError(f"{dockerfile} has no CMD and {logical_id} no ImageConfig.Command")
            command = json.loads(match.group(1))
        module, attribute = command[0].rsplit(".", 1)
        return FunctionCode(
            path=dockerfile.parent / f"{module.replace('.', '/')}.py",
            attribute=attribute,
            timeout_seconds=int(settings.get("Timeout", 3)),
            memory_mb=int(settings.get("MemorySize", 128)),
        )

    def _create_rule(self, rule_name: str, properties: dict[str, Any], function_name: str) -> str:
        """A rule (an event pattern or a schedule) targeting the function; the rule's ARN."""
        events = self.client("events")
        bus = properties.get("EventBusName", "default")
        trigger = (
            {"ScheduleExpression": properties["Schedule"]}
            if "Schedule" in properties
            else {"EventPattern": json.dumps(properties["Pattern"])}
        )
        rule_arn = events.put_rule(Name=rule_name, EventBusName=bus, **trigger)["RuleArn"]
        function_arn = self.client("lambda").get_function(FunctionName=function_name)[
            "Configuration"
        ]["FunctionArn"]
        events.put_targets(
            Rule=rule_name, EventBusName=bus, Targets=[{"Id": "function", "Arn": function_arn}]
        )
        return str(rule_arn)

    def _create_state_machine(self, logical_id: str, role: str) -> None:
        properties = self.template.properties(logical_id)
        definition = (self.template.root / properties["DefinitionUri"]).read_text()
        for name, value in self.template.resolve(
            properties.get("DefinitionSubstitutions", {})
        ).items():
            definition = definition.replace(f"${{{name}}}", str(value))
        self.client("stepfunctions").create_state_machine(
            name=self.template.physical_name(logical_id),
            definition=definition,
            roleArn=role,
            type=properties.get("Type", "STANDARD"),
        )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of S3's API."""
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if abort := rule.get("AbortIncompleteMultipartUpload"):
        days = int(abort["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return converted
