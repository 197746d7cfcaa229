"""Who is calling. API Gateway has already checked the API key against the usage plan and
passes its id; the key's `tenant` tag (else the key's name) names the tenant it belongs to, and
its `role` tag what it may do (schema.Role; no tag: `user`). Locally the embedded stack's gateway
does the same with keys created from the key file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import boto3

from silhouette.schema import Role
from silhouette.service.observability import logger


@dataclass(frozen=True)
class Caller:
    tenant: str
    role: Role
    key_id: str
    key_name: str


@lru_cache(maxsize=1024)
def caller_of_key(api_key_id: str) -> Caller:
    """Cached for the container's life: a key's tenant and role are set when it is created;
    revoking a key happens in API Gateway, which then refuses the key before this code runs."""
    key = boto3.client("apigateway").get_api_key(apiKey=api_key_id)
    tags = key.get("tags", {})
    role = tags.get("role", Role.USER.value)
    if role not in set(Role):
        # A typo must not grant anything: the key gets the least a key may do.
        logger.warning("unknown role tag on an API key; treated as user", extra={"role": role})
        role = Role.USER.value
    return Caller(
        tenant=str(tags.get("tenant") or key["name"]),
        role=Role(role),
        key_id=api_key_id,
        key_name=str(key["name"]),
    )
