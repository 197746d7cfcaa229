"""template.yaml's IAM roles as CloudFormation would create them, and a small IAM evaluator.

The SAM translator expands the template offline (placeholders where `sam build` would put the
image URIs and the definition's S3 location, as `sam validate` does); the role policies are
then resolved for a stack by the embedded stack's template reader. The evaluator knows what
these policies use: Allow statements, `*`/`?` wildcards, and string conditions (`IfExists`
included) on the request's condition keys. Anything else fails loudly rather than being
evaluated wrongly."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from silhouette.local.template import Template

# AWS's own policies, which SAM attaches: CloudWatch Logs, and X-Ray for `Tracing: Active`.
AWS_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ),
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
_STRING_CONDITIONS = ("StringEquals", "StringLike")
# The resources that run with a role, and the property that names it.
_ROLE_PROPERTY = {"AWS::Lambda::Function": "Role", "AWS::StepFunctions::StateMachine": "RoleArn"}


@dataclass(frozen=True)
class AwsCall:
    """One request as IAM authorises it. `s3_prefix` is the s3:prefix condition key of a
    listing (None: the request has no such key)."""

    action: str
    resource: str
    s3_prefix: str | None = None

    def condition_keys(self) -> dict[str, str]:
        return {} if self.s3_prefix is None else {"s3:prefix": self.s3_prefix}


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    # operator -> condition key -> values, e.g. {"StringLike": {"s3:prefix": ("uploads/*",)}}
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def allows(self, call: AwsCall) -> bool:
        return (
            any(matches(action, call.action, case_sensitive=False) for action in self.actions)
            and any(matches(resource, call.resource) for resource in self.resources)
            and all(
                _condition_holds(operator, values, call.condition_keys().get(key))
                for operator, keys in self.conditions.items()
                for key, values in keys.items()
            )
        )

    def grants(self) -> Iterator[Statement]:
        """The statement split into its smallest grants: one action, one resource, one value
        per condition key. Least privilege: some call needs each."""
        choices = [
            [(operator, key, value) for value in values]
            for operator, keys in self.conditions.items()
            for key, values in keys.items()
        ]
        for action, resource, *chosen in product(self.actions, self.resources, *choices):
            conditions: dict[str, dict[str, tuple[str, ...]]] = {}
            for operator, key, value in chosen:
                conditions.setdefault(operator, {})[key] = (value,)
            yield Statement((action,), (resource,), conditions)


@dataclass(frozen=True)
class Role:
    managed_policy_arns: tuple[str, ...]
    statements: tuple[Statement, ...]

    def allows(self, call: AwsCall) -> bool:
        return any(statement.allows(call) for statement in self.statements)


def expand(template: Template) -> dict[str, Any]:
    """The CloudFormation template SAM makes of `template`'s file."""
    body = yaml_parse(template.path.read_text())
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"
        elif resource["Type"] == "AWS::Serverless::StateMachine":
            resource["Properties"]["DefinitionUri"] = "s3://placeholder/statemachine.asl.json"
    translator = Translator(
        None, Parser(), boto_session=boto3.session.Session(region_name=template.region)
    )
    return translator.translate(
        body, parameter_values={}, get_managed_policy_map=lambda: AWS_MANAGED_POLICIES
    )


def roles(template: Template) -> dict[str, Role]:
    """The role of every function and state machine, by its logical id, with every policy
    resolved to concrete ARNs of `template`'s stack."""
    resources = expand(template)["Resources"]
    found = {}
    for logical_id, resource in resources.items():
        if resource["Type"] not in _ROLE_PROPERTY:
            continue
        role_reference = resource["Properties"][_ROLE_PROPERTY[resource["Type"]]]
        if not (isinstance(role_reference, dict) and "Fn::GetAtt" in role_reference):
            raise ValueError(f"{logical_id} uses a role defined outside the template")
        role = resources[role_reference["Fn::GetAtt"][0]]["Properties"]
        documents = [template.resolve(policy["PolicyDocument"]) for policy in role["Policies"]]
        found[logical_id] = Role(
            managed_policy_arns=tuple(role.get("ManagedPolicyArns", ())),
            statements=tuple(
                _statement(raw) for document in documents for raw in document["Statement"]
            ),
        )
    return found


def _statement(raw: dict[str, Any]) -> Statement:
    unsupported = set(raw) - {"Sid", "Effect", "Action", "Resource", "Condition"}
    if raw.get("Effect") != "Allow" or unsupported:
        raise ValueError(f"the evaluator knows only Allow, Action and Resource: {raw}")
    conditions = {
        operator: {key: tuple(_as_list(values)) for key, values in keys.items()}
        for operator, keys in raw.get("Condition", {}).items()
    }
    for operator in conditions:
        if operator.removesuffix("IfExists") not in _STRING_CONDITIONS:
            raise ValueError(f"the evaluator does not know the {operator} condition")
    return Statement(tuple(_as_list(raw["Action"])), tuple(_as_list(raw["Resource"])), conditions)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(operator: str, values: tuple[str, ...], actual: str | None) -> bool:
    if actual is None:  # the request has no such key
        return operator.endswith("IfExists")
    if operator.removesuffix("IfExists") == "StringLike":
        return any(matches(value, actual) for value in values)
    return actual in values


def matches(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    """IAM wildcard matching: `*` any run of characters, `?` any one; nothing else special."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text
