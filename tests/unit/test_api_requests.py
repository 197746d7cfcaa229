"""Upload requests are read strictly: a value of the wrong JSON type is refused with a 400 that
names the field, never coerced. Options stored with jobs still parse as before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aws_lambda_powertools.utilities.parser import parse
from openapi_spec_validator import validate

from silhouette.schema import JobOptions, JobResult, PipelineState
from silhouette.service import keys
from silhouette.service.records import JobRecord
from tests.unit.api_function import call_api

JOB = "0123456789abcdef0123456789abcdef"


def post_upload(**fields: object):
    return call_api("POST", "/uploads", {"content_type": "image/png", **fields})


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"size": True}, "size", "integer"),
        ({"size": False}, "size", "integer"),
        ({"size": "12"}, "size", "integer"),
        ({"size": 1.5}, "size", "integer"),
        ({"options": {"face": "yes"}}, "options.face", "boolean"),
        ({"options": {"face": "true"}}, "options.face", "boolean"),
        ({"options": {"face": 1}}, "options.face", "boolean"),
        ({"options": {"face": 0}}, "options.face", "boolean"),
        ({"options": {"face": None}}, "options.face", "boolean"),
    ],
)
def test_a_value_of_the_wrong_json_type_gets_400_naming_the_field(fields, field, expected):
    answer = post_upload(**fields)

    assert answer.status == 400, answer.body
    assert answer.json == {
        "error": "invalid_request",
        "message": f"{field}: Input should be a valid {expected}",
        "field": field,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"size": 0},
        {"size": 12.0},  # JSON (and JSON Schema) make no difference between 12 and 12.0
        {"size": 12, "filename": "a.png"},
        {"size": None},
        {"options": {"face": False, "quality": "fast"}},
        {"options": {"face": True}},
    ],
)
def test_well_typed_requests_pass_validation(fields):
    answer = post_upload(**fields)

    # In-process there is no API key id, so a valid request is refused by the route itself.
    assert answer.status == 403, answer.body
    assert answer.json["error"] == "forbidden"


@pytest.mark.parametrize("options", [{"fase": False}, {"quality": "fast", "colour": True}])
def test_an_unknown_option_is_refused_rather_than_ignored(options):
    answer = post_upload(options=options)

    assert answer.status == 400, answer.body
    [unknown] = set(options) - {"face", "quality"}
    assert answer.json["field"] == f"options.{unknown}"
    assert "not permitted" in answer.json["message"]


def test_the_openapi_document_is_valid_and_declares_plain_json_types():
    document = call_api("GET", "/openapi.json").json
    validate(document)
    schemas = document["components"]["schemas"]

    assert schemas["UploadRequest"]["properties"]["size"]["anyOf"][0] == {
        "type": "integer",
        "minimum": 0,
    }
    assert schemas["JobOptions"]["properties"]["face"]["type"] == "boolean"
    upload_answers = document["paths"]["/uploads"]["post"]["responses"]
    assert all("X-Request-ID" in upload_answers[status]["headers"] for status in ("201", "400"))


def test_the_openapi_document_describes_the_result_fully():
    """A client generated from the document gets typed people, keypoints, colours and faces,
    not free-form objects."""
    schemas = call_api("GET", "/openapi.json").json["components"]["schemas"]

    result = schemas["ResultWithDownloads"]["properties"]
    assert result["person"]["anyOf"][0] == {"$ref": "#/components/schemas/Person"}
    assert result["colors"]["anyOf"][0]["items"] == {"$ref": "#/components/schemas/Colour"}
    assert result["face"]["anyOf"][0] == {"$ref": "#/components/schemas/Face"}
    person = schemas["Person"]["properties"]
    assert person["keypoints"]["items"] == {"$ref": "#/components/schemas/Keypoint"}
    assert set(person["framing"]["enum"]) == {
        "full_body",
        "upper_body",
        "head_and_shoulders",
        "face_only",
    }
    assert {"x", "y", "nx", "ny", "visibility", "in_frame"} <= set(schemas["Keypoint"]["required"])
    assert schemas["Colour"]["properties"]["hex"]["pattern"] == "^#[0-9a-f]{6}$"
    assert set(schemas["Face"]["properties"]["status"]["enum"]) == {"ok", "unknown", "off"}


# Options as stored -------------------------------------------------------------------------


def test_options_in_a_stored_record_still_parse():
    stored = JobRecord(
        job_id=JOB, tenant="acme", status="QUEUED", options={"face": False, "quality": "fast"}
    ).serialize()

    record = JobRecord.from_raw_data(stored)

    assert JobOptions.model_validate(record.options.as_dict()) == JobOptions(
        face=False, quality="fast"
    )
    assert record.to_result().options.face is False


def test_options_in_an_execution_state_and_in_result_json_still_parse():
    state = {
        "job_id": JOB,
        "bucket": "photos",
        "upload_key": keys.upload(JOB),
        "received_at": "2026-11-21T10:00:00+00:00",
        "options": {"face": False, "quality": "quality"},
    }
    assert parse(event=state, model=PipelineState).options.face is False

    result = JobResult(
        job_id=JOB,
        tenant="acme",
        status="COMPLETED",
        options=JobOptions(face=False),
        created_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        updated_at=datetime(2026, 11, 21, 10, 1, tzinfo=UTC),
    )
    assert JobResult.model_validate_json(result.model_dump_json()) == result
