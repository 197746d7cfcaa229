"""Reads template.yaml and resolves its intrinsic functions for the embedded stack, so local
resources get their names, environment and wiring from the same file that deploys to AWS."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"  # moto's default account


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML loader that turns short-form tags (!Ref, !Sub, ...) into their long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
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


@dataclass
class Template:
    """A parsed template bound to a stack name and region, resolving names like CloudFormation
    would (deterministic physical names instead of random suffixes)."""

    path: Path
    stack_name: str
    region: str
    body: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.body = load(self.path)

    @property
    def root(self) -> Path:
        return self.path.parent

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.body["Resources"].items()
            if resource["Type"] == resource_type
        }

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.body["Resources"][logical_id].get("Properties", {})

    def globals(self, section: str) -> dict[str, Any]:
        return self.body.get("Globals", {}).get(section, {})

    # Physical names and attributes --------------------------------------------------------

    def physical_name(self, logical_id: str) -> str:
        resource = self.body["Resources"][logical_id]
        explicit = resource.get("Properties", {}).get("Name")
        if resource["Type"] == "AWS::Events::EventBus" and explicit:
            return self.resolve(explicit)
        name = f"{self.stack_name}-{logical_id}"
        return name.lower() if resource["Type"] == "AWS::S3::Bucket" else name

    def arn(self, logical_id: str) -> str:
        kind = self.body["Resources"][logical_id]["Type"]
        name = self.physical_name(logical_id)
        prefix = f"arn:aws:{{}}:{self.region}:{ACCOUNT_ID}"
        return {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::DynamoDB::Table": f"{prefix.format('dynamodb')}:table/{name}",
            "AWS::Serverless::Function": f"{prefix.format('lambda')}:function:{name}",
            "AWS::Serverless::StateMachine": f"{prefix.format('states')}:stateMachine:{name}",
            "AWS::Events::EventBus": f"{prefix.format('events')}:event-bus/{name}",
        }[kind]

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
            return str(self.body["Parameters"][name]["Default"])
        kind = self.body["Resources"][name]["Type"]
        # What !Ref returns differs per resource type, as in CloudFormation.
        if kind == "AWS::Serverless::StateMachine":
            return self.arn(name)
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "Name":
            return self.physical_name(logical_id)
        raise KeyError(f"attribute {logical_id}.{attribute} is not resolved locally")

    def resolve(self, value: Any) -> Any:
        """Evaluate Ref, Fn::GetAtt, Fn::Sub and Fn::Join inside `value`."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                return self.get_att(*argument)
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
        return {key: self.resolve(item) for key, item in value.items()}

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
        }
