"""Who is calling. API Gateway has already checked the API key against the usage plan and
passes its id; the key's `tenant` tag (else the key's name) names the tenant it belongs to.
Locally the embedded stack's gateway does the same with keys created from the key file."""

from __future__ import annotations

from functools import lru_cache

import boto3


@lru_cache(maxsize=1024)
def tenant_of_key(api_key_id: str) -> str:
    """Cached for the container's life: a key's tenant never changes; revoking a key happens in
    API Gateway, which then refuses the key before this code runs."""
    key = boto3.client("apigateway").get_api_key(apiKey=api_key_id)
    return str(key.get("tags", {}).get("tenant") or key["name"])
