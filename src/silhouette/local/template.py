"""Reads template.yaml and resolves its intrinsic functions for the embedded stack, so local
resources get their names, environment and wiring from the same file that deploys to AWS.

Parameters take their `Default` unless overridden, as `sam deploy --parameter-overrides` would
override them. The embedded stack (and so `silhouette serve`, `analyze` and `demo`) takes
overrides from environment variables named `SILHOUETTE_PARAM_<ParameterName>`, for example
`SILHOUETTE_PARAM_PartnerWebhookUrl=http://127.0.0.1:9000/hook`. Conditions are evaluated with
those values: resources and outputs whose Condition is false do not exist locally either.

CloudFront (the web page's distribution) has no local counterpart but the API gateway, which
serves the page itself: its resources are not created locally, nor the outputs naming them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"  # moto's default account
PARAMETER_ENVIRONMENT_PREFIX = "SILHOUETTE_PARAM_"
_NO_VALUE = object()  # what `Ref: AWS::NoValue` resolves to: the property is left out
NOT_EMULATED = ("AWS::CloudFront::",)  # resource type prefixes with no local counterpart


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML loader that turns short-form tags (!Ref, !Sub, ...) into their long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - safe subclass


def parameters_from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Parameter overrides from `SILHOUETTE_PARAM_<ParameterName>` variables."""
    return {
        name.removeprefix(PARAMETER_ENVIRONMENT_PREFIX): value
        for name, value in environ.items()
        if name.startswith(PARAMETER_ENVIRONMENT_PREFIX)
    }


@dataclass
class Template:
    """A parsed template bound to a stack name, region and parameter values, resolving names
    like CloudFormation would (deterministic physical names instead of random suffixes)."""

    path: Path
    stack_name: str
    region: str
    parameters: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(init=False)
    # Refs and attributes that only the service knows once it has created the resource (queue
    # URLs, ARNs with random ids): {logical_id: {"Ref" or attribute name: value}}.
    created: dict[str, dict[str, str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.body = load(self.path)
        unknown = set(self.parameters) - set(self.body.get("Parameters", {}))
        if unknown:
            raise ValueError(f"{self.path.name} has no parameter {', '.join(sorted(unknown))}")

    @property
    def root(self) -> Path:
        return self.path.parent

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The resources of a type that exist: those without a Condition or whose one holds."""
        return {
            logical_id: resource
            for logical_id, resource in self.body["Resources"].items()
            if resource["Type"] == resource_type and self._exists(resource)
        }

    def _exists(self, resource_or_output: dict[str, Any]) -> bool:
        return "Condition" not in resource_or_output or self.condition(
            resource_or_output["Condition"]
        )

    def condition(self, name: str) -> bool:
        return self._holds(self.body["Conditions"][name])

    def _holds(self, expression: dict[str, Any]) -> bool:
        ((function, argument),) = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = self.resolve(argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._holds(argument[0])
        if function == "Fn::And":
            return all(self._holds(item) for item in argument)
        if function == "Fn::Or":
            return any(self._holds(item) for item in argument)
        raise ValueError(f"{function} is not a condition function")

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.body["Resources"][logical_id].get("Properties", {})

    def globals(self, section: str) -> dict[str, Any]:
        return self.body.get("Globals", {}).get(section, {})

    # Physical names and attributes --------------------------------------------------------

    def physical_name(self, logical_id: str) -> str:
        resource = self.body["Resources"][logical_id]
        explicit = resource.get("Properties", {}).get("Name")
        if (
            resource["Type"] in ("AWS::Events::EventBus", "AWS::Serverless::StateMachine")
            and explicit
        ):
            return self.resolve(explicit)
        name = f"{self.stack_name}-{logical_id}"
        return name.lower() if resource["Type"] == "AWS::S3::Bucket" else name

    def arn(self, logical_id: str) -> str:
        kind = self.body["Resources"][logical_id]["Type"]
        name = self.physical_name(logical_id)
        prefix = f"arn:aws:{{}}:{self.region}:{ACCOUNT_ID}"
        known = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"{prefix.format('dynamodb')}:table/{name}",
            "AWS::Serverless::Function": f"{prefix.format('lambda')}:function:{name}",
            "AWS::Serverless::StateMachine": f"{prefix.format('states')}:stateMachine:{name}",
            "AWS::Events::EventBus": f"{prefix.format('events')}:event-bus/{name}",
            "AWS::SQS::Queue": f"{prefix.format('sqs')}:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
        }
        if kind not in known:  # ARNs with a random part (connections, API destinations)
            raise KeyError(f"the ARN of {logical_id} ({kind}) is known once it is created")
        return known[kind]

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.body.get("Parameters", {}):
            return self.parameters.get(name, str(self.body["Parameters"][name]["Default"]))
        if "Ref" in self.created.get(name, {}):
            return self.created[name]["Ref"]
        kind = self.body["Resources"][name]["Type"]
        # What !Ref returns differs per resource type, as in CloudFormation.
        if kind == "AWS::Serverless::StateMachine":
            return self.arn(name)
        if kind == "AWS::SQS::Queue":
            raise KeyError(f"the URL of queue {name} is known once the queue is created")
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute in self.created.get(logical_id, {}):
            return self.created[logical_id][attribute]
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "Name":
            return self.physical_name(logical_id)
        raise KeyError(f"attribute {logical_id}.{attribute} is not resolved locally")

    def resolve(self, value: Any) -> Any:
        """Evaluate Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::If inside `value`, leaving out
        what resolves to AWS::NoValue."""
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return _NO_VALUE if argument == "AWS::NoValue" else self.ref(argument)
            if function == "Fn::If":
                condition, if_true, if_false = argument
                return self.resolve(if_true if self.condition(condition) else if_false)
            if function == "Fn::GetAtt":
                return self.get_att(*argument)
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {name: self.resolve(item) for name, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def outputs(self) -> dict[str, str]:
        return {
            name: str(self.resolve(output["Value"]))
            for name, output in self.body.get("Outputs", {}).items()
            if self._exists(output) and not self._names_unemulated(output["Value"])
        }

    def _names_unemulated(self, value: Any) -> bool:
        """Whether `value` refers to a resource of a type the local stack does not create."""
        if isinstance(value, list):
            return any(map(self._names_unemulated, value))
        if isinstance(value, dict):
            return any(
                self._names_unemulated(item)
                or (key in ("Ref", "Fn::GetAtt", "Fn::Sub") and self._unemulated(item))
                for key, item in value.items()
            )
        return False

    def _unemulated(self, argument: Any) -> bool:
        text = argument if isinstance(argument, str) else str(argument)
        resources = self.body["Resources"]
        named = {word for word in re.findall(r"[A-Za-z0-9]+", text) if word in resources}
        return any(resources[name]["Type"].startswith(NOT_EMULATED) for name in named)
