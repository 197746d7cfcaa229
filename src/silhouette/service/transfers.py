"""Presigned transfers: the forms clients upload through and the links they download from,
straight from and to the bucket (the API never carries a photo's bytes)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from silhouette.names import PHOTO_CONTENT_TYPES
from silhouette.service.storage import s3_client
from silhouette.settings import get_settings

ContentType = Literal[PHOTO_CONTENT_TYPES]  # type: ignore[valid-type]


class PhotoDeclaration(BaseModel):
    """A photo as the client announces it: alone or as a capture's view (POST /uploads), or
    in a PHOTOS batch."""

    model_config = ConfigDict(extra="forbid")

    content_type: ContentType = Field(description="the photo's media type")
    filename: str | None = Field(
        None,
        max_length=255,
        description="the photo's name; downloads (and a batch's report) are named after it",
    )
    size: StrictInt | None = Field(
        None, ge=0, description="bytes the client will upload: more than the limit gives 413"
    )


class UploadForm(BaseModel):
    """POST `fields` and then the file (as the last part, named `file`) to `url` as
    multipart/form-data. The policy fixes the key, the content type and the size."""

    url: str
    fields: dict[str, str]
    expires_at: datetime
    max_bytes: int


class DownloadLink(BaseModel):
    url: str = Field(description="presigned GET; the download is saved as `filename`")
    filename: str
    expires_at: datetime


class UploadTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes is more than the {limit} bytes an upload may have")
        self.limit = limit


def refuse_oversize(size: int | None, limit: int) -> None:
    """UploadTooLarge when a client declares more bytes than its upload form will take (the
    form's policy enforces the limit anyway; this says so before anything is created)."""
    if size is not None and size > limit:
        raise UploadTooLarge(size, limit)


def presigned_upload(
    key: str, content_type: str, max_bytes: int, s3: Any = None, expiry: int | None = None
) -> UploadForm:
    """A presigned POST for `key` whose policy fixes the key, the content type and the
    largest size, valid for `expiry` seconds (by default the settings' upload expiry)."""
    expiry = expiry or get_settings().upload_url_expiry_seconds
    post = (s3 or s3_client()).generate_presigned_post(
        Bucket=get_settings().bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 0, max_bytes]],
        ExpiresIn=expiry,
    )
    return UploadForm(
        url=post["url"], fields=post["fields"], expires_at=_expiry(expiry), max_bytes=max_bytes
    )


def download_link(key: str, filename: str, s3: Any = None) -> DownloadLink:
    """A presigned GET of `key`, saved as `filename` (a name every browser keeps)."""
    settings = get_settings()
    url = (s3 or s3_client()).generate_presigned_url(
        "get_object",
        Params={
            "Bucket": settings.bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        },
        ExpiresIn=settings.download_url_expiry_seconds,
    )
    return DownloadLink(
        url=url, filename=filename, expires_at=_expiry(settings.download_url_expiry_seconds)
    )


def safe_stem(filename: str | None) -> str:
    """The upload's name without extension, reduced to characters every browser keeps."""
    stem = PurePosixPath((filename or "").replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:64]


def _expiry(seconds: int) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
