"""Object storage (S3 or any S3-compatible endpoint) behind a small port, so domain code and
unit tests can swap in `MemoryStore`."""

from __future__ import annotations

import json
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from silhouette.errors import PermanentError, TransientError

# Path-style addressing works with every S3-compatible endpoint (moto server, LocalStack, MinIO).
# SigV4 for presigned URLs and forms too: boto3 would presign with SigV2 in us-east-1, which S3
# refuses for buckets created after 2020-06-24.
_CLIENT_CONFIG = Config(
    signature_version="s3v4", s3={"addressing_style": "path"}, retries={"mode": "standard"}
)


def s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=_CLIENT_CONFIG)


class ArtifactStore(Protocol):
    def get(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; the number deleted."""
        ...


class S3Store:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.client = client or s3_client()

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise PermanentError(f"object {key!r} does not exist") from error
            raise
        return response["Body"].read()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def delete_prefix(self, prefix: str) -> int:
        return delete_prefixes(self.client, self.bucket, (prefix,))


class MemoryStore:
    """In-memory store for unit tests of stage logic."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.content_types: dict[str, str] = {}

    def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise PermanentError(f"object {key!r} does not exist")
        return self.objects[key]

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = data
        self.content_types[key] = content_type

    def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self.objects if key.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
            self.content_types.pop(key, None)
        return len(doomed)


def delete_prefixes(client: Any, bucket: str, prefixes: tuple[str, ...]) -> int:
    """Delete every object under `prefixes`; the number deleted."""
    deleted = 0
    for prefix in prefixes:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if not objects:
                continue
            response = client.delete_objects(
                Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
            )
            if response.get("Errors"):
                raise TransientError(f"objects not deleted: {response['Errors']}")
            deleted += len(objects)
    return deleted


def put_json(store: ArtifactStore, key: str, document: Any) -> None:
    store.put(key, json.dumps(document, indent=2, default=str).encode(), "application/json")
