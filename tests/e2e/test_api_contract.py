"""The API keeps the promises of its OpenAPI document: schemathesis generates valid and invalid
requests for every operation from /openapi.json and checks each response against it (status
documented, body matching its schema, no server errors, invalid input refused)."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.conftest import API_KEYS

pytestmark = pytest.mark.e2e

KEY = next(iter(API_KEYS))
OPERATIONS = (
    "POST /uploads",
    "GET /jobs",
    "GET /jobs/{job_id}",
    "GET /jobs/{job_id}/result",
    "DELETE /jobs/{job_id}",
    "GET /jobs/{job_id}/measurements.csv",
    "GET /jobs/{job_id}/measurements.pdf",
    "GET /jobs/{job_id}/measurements/history",
    "PATCH /jobs/{job_id}/measurements",
    "POST /jobs/{job_id}/measurements/approval",
    "GET /tenant/audit",
    "GET /tenant/export",
    "DELETE /tenant/data",
    "GET /health",
    "POST /webhooks/minio",
    "POST /batches",
    "GET /batches/{batch_id}",
    "GET /batches/{batch_id}/report",
)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(stack, mode):
    # (schemathesis' own pytest plugin does not run under pytest 9, so the loop is explicit.)
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
    # Below the usage plan's 10 requests per second, so fuzzing is not throttled.
    schema.config.update(base_url=stack.api_url, headers={"x-api-key": KEY}, rate_limit="8/s")
    # A well-formed upload request may still declare more bytes than this deployment accepts.
    schema.config.checks.positive_data_acceptance.expected_statuses.append("413")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(f"{op.method.upper()} {op.path}" for op in operations) == sorted(OPERATIONS)
    document = requests.get(f"{stack.api_url}/openapi.json", timeout=30).json()

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.body) or len(operation.query)):
            continue  # any path string is a valid id, and nothing else is declared to break

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case: schemathesis.Case) -> None:
            # Cursors are opaque tokens the API issues: a made-up one is rightly refused; so is
            # a made-up webhook URL (its host must resolve, to public addresses only).
            made_up_cursor = "cursor" in (case.query or {})
            made_up_webhook = isinstance(case.body, dict) and "webhook_url" in case.body
            excluded = [positive_data_acceptance] if made_up_cursor or made_up_webhook else []
            # schemathesis' "negative" bodies for a oneOf (POST /batches) are sometimes valid
            # (`{"source": "zip"}`, mutated from the photos branch): only a body the document
            # really refuses must be refused.
            if mode is GenerationMode.NEGATIVE and _body_is_valid(document, case):
                excluded.append(negative_data_rejection)
            case.call_and_validate(excluded_checks=excluded)

        conforms()


def _body_is_valid(document: dict, case: schemathesis.Case) -> bool:
    """Whether the case's JSON body meets its operation's request schema in `document`."""
    body = document["paths"][case.operation.path][case.method.lower()].get("requestBody")
    if body is None or not isinstance(case.body, dict | list):
        return False
    schema = body["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    return validator.is_valid(case.body)
