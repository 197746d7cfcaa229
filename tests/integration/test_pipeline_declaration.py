"""The pipeline is declared once (silhouette/pipeline.py); the state machine, the template, the
handlers, the job record and the result model must follow it. Each check names what differs, so
adding a stage is a matter of following the failures (see the README's "Adding a stage")."""

from __future__ import annotations

import json
import re

import pytest

from silhouette.local.template import load
from silhouette.names import PROJECT_ROOT
from silhouette.pipeline import PIPELINE, StageSpec, result_fields
from silhouette.schema import JobResult
from silhouette.service.records import JobRecord

ASL = json.loads((PROJECT_ROOT / "statemachine.asl.json").read_text())
TEMPLATE = load(PROJECT_ROOT / "template.yaml")
STATES = ASL["States"]


def after(state_name: str) -> str:
    """Where a stage's outcome Choice goes when the stage did not reject the photo."""
    outcome = STATES[state_name]
    return outcome.get("Default") or outcome["Next"]


def test_the_state_machine_runs_the_stages_in_the_declared_order():
    state = ASL["StartAt"]
    for spec in PIPELINE:
        skipped_to = None
        if spec.option is not None:
            choice = f"{spec.title}Wanted"
            assert state == choice, f"{spec.title} is optional: expected {choice} before it"
            [rule] = STATES[choice]["Choices"]
            assert rule["Variable"] == f"$.options.{spec.option}", f"{choice} tests another option"
            skipped_to, state = rule["Next"], STATES[choice]["Default"]
        assert state == spec.title, f"expected the Task {spec.title} here, found {state}"
        task = STATES[spec.title]
        assert task["Type"] == "Task", spec.title
        assert task["Resource"] == f"${{{spec.function}Arn}}", f"{spec.title} runs another function"
        assert task["ResultPath"] == f"$.stages.{spec.stage.value}", spec.title
        assert task["Next"] == f"{spec.title}Outcome", spec.title
        state = after(task["Next"])
        if skipped_to is not None:
            assert skipped_to == state, f"without {spec.title}, the job goes on to {skipped_to}"
    assert state == "RecordCompleted", f"after the last stage: {state}, not RecordCompleted"


@pytest.mark.parametrize("spec", PIPELINE, ids=lambda spec: spec.stage.value)
def test_every_stage_has_its_function_image_and_handler(spec: StageSpec):
    resources = TEMPLATE["Resources"]
    assert spec.function in resources, f"template.yaml has no {spec.function}"
    function = resources[spec.function]
    folder = PROJECT_ROOT / "functions" / spec.stage.value
    assert function["Metadata"]["Dockerfile"] == f"functions/{spec.stage.value}/Dockerfile"
    substitutions = resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert f"{spec.function}Arn" in substitutions, f"no {spec.function}Arn substitution"
    handler = (folder / "app.py").read_text()
    assert re.search(
        rf"stage_handler\(Stage\.{spec.stage.name}, {spec.stage.value}\.run\)", handler
    )


def test_no_stage_task_runs_outside_the_declaration():
    declared = {spec.title for spec in PIPELINE}
    stage_tasks = {
        name
        for name, state in STATES.items()
        if state["Type"] == "Task" and (state.get("ResultPath") or "").startswith("$.stages.")
    }
    assert stage_tasks <= declared, f"not in silhouette/pipeline.py: {stage_tasks - declared}"


@pytest.mark.parametrize("field", result_fields())
def test_every_result_field_is_in_the_record_and_the_result_model(field: str):
    assert field in JobRecord.get_attributes(), f"JobRecord has no attribute {field!r}"
    assert field in JobResult.model_fields, f"JobResult has no field {field!r}"
