"""The local template reader evaluates parameters and conditions the way CloudFormation does, so
optional resources (the partner webhook) exist locally exactly when they would on AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from silhouette.local.template import Template, parameters_from_environment
from silhouette.names import PROJECT_ROOT

CONDITIONS = """
Parameters:
  Mode: {Type: String, Default: off}
  Region: {Type: String, Default: eu}
Conditions:
  IsOn: !Equals [!Ref Mode, "on"]
  IsOff: !Not [!Condition IsOn]
  OnInEu: !And [!Condition IsOn, !Equals [!Ref Region, eu]]
  OnOrUs: !Or [!Condition IsOn, !Equals [!Ref Region, us]]
Resources:
  Always: {Type: AWS::SQS::Queue}
  OnlyWhenOn: {Type: AWS::SQS::Queue, Condition: IsOn}
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !If [OnInEu, on-eu, !If [OnOrUs, on-or-us, plain]]
      Description: !If [IsOff, !Ref AWS::NoValue, switched on]
Outputs:
  Bus: {Value: !Ref Bus}
  OnlyWhenOn: {Condition: IsOn, Value: !GetAtt OnlyWhenOn.Arn}
"""


@pytest.fixture
def template_file(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(CONDITIONS)
    return path


@pytest.mark.parametrize(
    ("parameters", "bus", "queues"),
    [
        ({}, "plain", {"Always"}),
        ({"Region": "us"}, "on-or-us", {"Always"}),
        ({"Mode": "on"}, "on-eu", {"Always", "OnlyWhenOn"}),
        ({"Mode": "on", "Region": "us"}, "on-or-us", {"Always", "OnlyWhenOn"}),
    ],
)
def test_conditions_follow_the_parameters(template_file, parameters, bus, queues):
    template = Template(template_file, "stack", "us-east-1", parameters)

    assert set(template.resources("AWS::SQS::Queue")) == queues
    assert template.outputs()["Bus"] == bus
    assert ("OnlyWhenOn" in template.outputs()) == ("OnlyWhenOn" in queues)


def test_no_value_leaves_the_property_out(template_file):
    def description(parameters: dict[str, str]) -> str | None:
        template = Template(template_file, "stack", "us-east-1", parameters)
        return template.resolve(template.properties("Bus")).get("Description")

    assert description({}) is None
    assert description({"Mode": "on"}) == "switched on"


def test_an_unknown_parameter_is_refused(template_file):
    with pytest.raises(ValueError, match="no parameter Mood"):
        Template(template_file, "stack", "us-east-1", {"Mood": "on"})


def test_parameters_come_from_prefixed_environment_variables():
    environ = {"SILHOUETTE_PARAM_PartnerTenant": "acme", "SILHOUETTE_BUCKET": "b", "HOME": "/"}

    assert parameters_from_environment(environ) == {"PartnerTenant": "acme"}


def test_the_partner_rule_exists_only_with_a_webhook_and_filters_on_its_tenant():
    def partner(**parameters: str) -> Template:
        return Template(PROJECT_ROOT / "template.yaml", "stack", "us-east-1", parameters)

    assert partner().resources("AWS::Events::Rule") == {}
    assert "PartnerWebhookDeadLetterQueueArn" not in partner().outputs()
    everyone = partner(PartnerWebhookUrl="https://partner.example/hook")
    acme = partner(PartnerWebhookUrl="https://partner.example/hook", PartnerTenant="acme")
    patterns = [
        t.resolve(t.properties("PartnerWebhookRule")["EventPattern"]) for t in (everyone, acme)
    ]
    assert patterns == [
        {"source": ["silhouette.job"]},
        {"source": ["silhouette.job"], "detail": {"tenant": ["acme"]}},
    ]
