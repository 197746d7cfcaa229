"""Least privilege, proved offline: the role SAM creates for each function and the state
machine of template.yaml allows exactly the AWS calls aws_calls.py lists for it (nothing
missing, nothing extra), with no wildcard actions, object access only under a job's key
prefixes and Lambda access to one function per resource.

moto checks no IAM, so only this test sees a policy gap before AWS does;
tests/e2e/test_aws_calls.py proves the list is what the functions really call."""

from __future__ import annotations

import json

import pytest

from silhouette.local.template import ACCOUNT_ID
from silhouette.service import keys
from tests.integration import iam
from tests.integration.aws_calls import (
    BATCH_MANIFEST,
    BATCH_STATE_MACHINE,
    BATCH_WEBHOOK_CONNECTION,
    BATCH_WEBHOOK_DESTINATION,
    BATCH_WEBHOOK_RULE,
    BUCKET,
    CALLS,
    JOB,
    REGION,
    STATE_MACHINE,
    SYNC_RULE,
    TEMPLATE,
)
from tests.integration.iam import AwsCall, Role, Statement, has_wildcard, matches

TABLE_FILE = "tests/integration/aws_calls.py"
# uploads/, working/, artifacts/, results/: where a job's objects live; batches/, where a
# batch's item list, report and results archive do; exports/, a tenant's exports (keys.py).
JOB_KEY_PREFIXES = tuple(
    prefix.split("/")[0] + "/"
    for prefix in (*keys.job_prefixes("job"), keys.batch_prefix("b"), keys.EXPORT_PREFIX)
)
# Resources whose names are only known at run time, which a policy may end in a wildcard:
# a job's objects, API keys (the caller's), executions (one per job).
RUN_TIME_NAMES = (
    *(f"{BUCKET}/{prefix}" for prefix in JOB_KEY_PREFIXES),
    f"arn:aws:apigateway:{REGION}::/apikeys/",
    f"{STATE_MACHINE.replace(':stateMachine:', ':execution:')}:",
    # A batch's source (one per batch), and the Distributed Map's child executions.
    f"{BUCKET}/{keys.batch_source('b').removesuffix('b/source')}",
    f"{BATCH_STATE_MACHINE.replace(':stateMachine:', ':execution:')}/",
    # A batch's webhook: its connection, API destination and rule on the job bus.
    BATCH_WEBHOOK_CONNECTION.removesuffix(JOB),
    BATCH_WEBHOOK_DESTINATION.removesuffix(JOB),
    BATCH_WEBHOOK_RULE.removesuffix(JOB),
)
LOGICAL_IDS = sorted(CALLS)


@pytest.fixture(scope="module")
def roles() -> dict[str, Role]:
    return iam.roles(TEMPLATE)


def _role(roles: dict[str, Role], logical_id: str) -> Role:
    if logical_id not in roles:
        pytest.fail(f"{TABLE_FILE} lists {logical_id}, which template.yaml does not have")
    return roles[logical_id]


def _resources(role: Role) -> list[str]:
    return [resource for statement in role.statements for resource in statement.resources]


def _describe(grant: Statement) -> str:
    condition = f" if {json.dumps(grant.conditions)}" if grant.conditions else ""
    return f"{' '.join(grant.actions)} on {' '.join(grant.resources)}{condition}"


def test_every_function_and_state_machine_has_an_entry_in_the_table(roles):
    missing = sorted(set(roles) - set(CALLS))
    assert not missing, f"no entry in {TABLE_FILE} for {missing}: list the AWS calls they make"


@pytest.mark.parametrize("logical_id", LOGICAL_IDS)
def test_only_aws_logging_and_tracing_policies_are_attached(roles, logical_id):
    attached = set(_role(roles, logical_id).managed_policy_arns)

    assert attached <= set(iam.AWS_MANAGED_POLICIES.values())


@pytest.mark.parametrize("logical_id", LOGICAL_IDS)
def test_no_action_is_a_wildcard(roles, logical_id):
    role = _role(roles, logical_id)
    wildcards = [action for s in role.statements for action in s.actions if has_wildcard(action)]

    assert not wildcards, f"{logical_id} may call {wildcards}: name each action"


@pytest.mark.parametrize("logical_id", LOGICAL_IDS)
def test_objects_are_reachable_only_under_a_job_key_prefix(roles, logical_id):
    objects = [r for r in _resources(_role(roles, logical_id)) if r.startswith(f"{BUCKET}/")]
    too_wide = [r for r in objects if not r.removeprefix(f"{BUCKET}/").startswith(JOB_KEY_PREFIXES)]

    assert not too_wide, f"{logical_id} reaches {too_wide}: grant {JOB_KEY_PREFIXES} only"


@pytest.mark.parametrize("logical_id", LOGICAL_IDS)
def test_wildcards_stand_only_for_names_known_at_run_time(roles, logical_id):
    wildcards = [r for r in _resources(_role(roles, logical_id)) if has_wildcard(r)]
    too_wide = [r for r in wildcards if r.removesuffix("*") not in RUN_TIME_NAMES]

    assert not too_wide, f"{logical_id} reaches {too_wide}: name the resources"


@pytest.mark.parametrize("logical_id", LOGICAL_IDS)
def test_each_lambda_resource_is_one_function(roles, logical_id):
    functions = [TEMPLATE.arn(f) for f in TEMPLATE.resources("AWS::Serverless::Function")]
    # Functions whose names start like another's, as a `function:<name>*` grant would match.
    namesakes = [f"{arn}Namesake" for arn in functions]
    lambdas = [r for r in _resources(_role(roles, logical_id)) if r.startswith("arn:aws:lambda:")]

    for resource in lambdas:
        matched = [arn for arn in functions + namesakes if matches(resource, arn)]
        assert len(matched) == 1 and matched[0] in functions, f"{resource} matches {matched}"


@pytest.mark.parametrize("logical_id", LOGICAL_IDS)
def test_the_role_allows_every_call_in_the_table(roles, logical_id):
    role = _role(roles, logical_id)
    refused = [call for call in CALLS[logical_id] if not role.allows(call)]

    assert not refused, f"{logical_id}'s role refuses {refused}"


@pytest.mark.parametrize("logical_id", LOGICAL_IDS)
def test_the_role_grants_nothing_the_table_does_not_need(roles, logical_id):
    role = _role(roles, logical_id)
    unneeded = [
        _describe(grant)
        for statement in role.statements
        for grant in statement.grants()
        if not any(grant.allows(call) for call in CALLS[logical_id])
    ]

    assert not unneeded, f"{logical_id} is granted {unneeded}, which no call in the table needs"


def test_the_state_machine_entries_are_the_tasks_of_their_definitions():
    for logical_id in TEMPLATE.resources("AWS::Serverless::StateMachine"):
        assert set(CALLS[logical_id]) == set(_definition_calls(logical_id)), logical_id


def _definition_calls(logical_id: str) -> list[AwsCall]:
    """What the state machine's Task states call, from its definition file."""
    properties = TEMPLATE.properties(logical_id)
    text = (TEMPLATE.root / properties["DefinitionUri"]).read_text()
    for name, value in TEMPLATE.resolve(properties.get("DefinitionSubstitutions", {})).items():
        text = text.replace(f"${{{name}}}", str(value))
    states = json.loads(text)["States"]
    return [call for task in _tasks(states) for call in _task_calls(task)] + _map_calls(
        logical_id, states
    )


def _tasks(states: dict[str, dict]) -> list[dict]:
    tasks = []
    for state in states.values():
        if state["Type"] == "Task":
            tasks.append(state)
        for branch in state.get("Branches", []):  # Parallel
            tasks += _tasks(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")  # Map
        if processor:
            tasks += _tasks(processor["States"])
    return tasks


def _map_calls(logical_id: str, states: dict[str, dict]) -> list[AwsCall]:
    """What a Map state calls itself: its ItemReader's object, and for a Distributed Map, its
    child executions of the state machine."""
    calls = []
    for state in states.values():
        if state["Type"] != "Map":
            continue
        if "ItemReader" in state:
            calls.append(AwsCall("s3:GetObject", BATCH_MANIFEST))
        if state["ItemProcessor"].get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            machine = TEMPLATE.arn(logical_id)
            child = f"{machine.replace(':stateMachine:', ':execution:')}/{state['Label']}:1"
            calls += [
                AwsCall("states:StartExecution", machine),
                AwsCall("states:DescribeExecution", child),
                AwsCall("states:StopExecution", child),
            ]
    return calls


def _task_calls(task: dict) -> list[AwsCall]:
    resource = task["Resource"]
    if resource == "arn:aws:states:::states:startExecution.sync:2":
        # Step Functions starts the child, then follows it through a managed EventBridge rule.
        machine = task["Parameters"]["StateMachineArn"]
        execution = f"{machine.replace(':stateMachine:', ':execution:')}:{JOB}"
        rule = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{SYNC_RULE}"
        return [
            AwsCall("states:StartExecution", machine),
            AwsCall("states:DescribeExecution", execution),
            AwsCall("states:StopExecution", execution),
            *(AwsCall(f"events:{a}", rule) for a in ("PutTargets", "PutRule", "DescribeRule")),
        ]
    return [_task_call(task)]


def _task_call(task: dict) -> AwsCall:
    resource = task["Resource"]
    if resource.startswith("arn:aws:lambda:"):
        return AwsCall("lambda:InvokeFunction", resource)
    service_action = resource.removeprefix("arn:aws:states:::")
    if service_action.startswith("dynamodb:"):
        action = service_action.removeprefix("dynamodb:")
        tables = {TEMPLATE.physical_name(t): t for t in TEMPLATE.resources("AWS::DynamoDB::Table")}
        table = TEMPLATE.arn(tables[task["Parameters"]["TableName"]])
        return AwsCall(f"dynamodb:{action[0].upper()}{action[1:]}", table)
    raise AssertionError(f"no IAM mapping for the task resource {resource}: add one here")


def test_the_evaluator_follows_iam():
    listing = Statement(
        ("S3:ListBucket",),
        ("arn:aws:s3:::bucket",),
        {"StringLikeIfExists": {"s3:prefix": ("uploads/*",)}},
    )
    objects = Statement(("s3:GetObject",), ("arn:aws:s3:::bucket/uploads/?/*",))

    assert listing.allows(AwsCall("s3:listbucket", "arn:aws:s3:::bucket", "uploads/a/"))
    assert listing.allows(AwsCall("s3:ListBucket", "arn:aws:s3:::bucket"))  # no prefix key
    assert not listing.allows(AwsCall("s3:ListBucket", "arn:aws:s3:::bucket", "results/"))
    assert not listing.allows(AwsCall("s3:ListBucket", "arn:aws:s3:::bucket2", "uploads/"))
    assert objects.allows(AwsCall("s3:GetObject", "arn:aws:s3:::bucket/uploads/a/original"))
    assert not objects.allows(AwsCall("s3:GetObject", "arn:aws:s3:::bucket/uploads/ab/x"))
    assert not objects.allows(AwsCall("s3:PutObject", "arn:aws:s3:::bucket/uploads/a/x"))
