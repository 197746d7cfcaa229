"""Captures: one job, several photos of one person (schema.View: front, side, portrait, card),
each uploaded through its own presigned POST to `uploads/<job>/<view>`.

Uploads arrive in any order and their events at least once. Each arrival lists the job's
upload prefix (S3 lists are strongly consistent) and starts the pipeline once every announced
view is there; two last arrivals at once both try, and the execution's name lets one through.
The sweeper expires a capture whose views did not all arrive while the forms were valid,
naming the missing ones."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from silhouette.schema import JobOptions, PipelineState, UploadedView, View
from silhouette.service import keys
from silhouette.service.records import JobRecord
from silhouette.service.uploads import UploadedObject


def announced(record: JobRecord) -> list[View]:
    """The views the client announced, in View order; [] for a single photo."""
    return sorted((View(view) for view in record.views or {}), key=list(View).index)


def arrived(job_id: str, bucket: str, s3: Any) -> dict[View, UploadedObject]:
    """The capture's views that are in storage now."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=keys.upload_prefix(job_id))
    found: dict[View, UploadedObject] = {}
    for item in listed.get("Contents", []):
        view = keys.view_of_upload(item["Key"])
        if view is not None:
            found[view] = UploadedObject(
                bucket=bucket, key=item["Key"], size=item["Size"], time=item["LastModified"]
            )
    return found


def missing(record: JobRecord, uploads: dict[View, UploadedObject]) -> list[View]:
    return [view for view in announced(record) if view not in uploads]


def missing_reason(views: list[View]) -> str:
    """Why a capture expired, naming the views that never came."""
    named = " and ".join(f"the {view.value} view" for view in views)
    verb = "was" if len(views) == 1 else "were"
    return f"{named} {verb} not uploaded before the upload forms expired"


def pipeline_state(record: JobRecord, uploads: dict[View, UploadedObject]) -> PipelineState:
    """The pipeline's input once every view has arrived: the front view is the job's photo,
    the others ride along in `views`; received when the last one came."""
    front = uploads[View.FRONT]
    return PipelineState(
        job_id=record.job_id,
        bucket=front.bucket,
        upload_key=front.key,
        upload_size=front.size,
        views={
            view: UploadedView(key=upload.key, size=upload.size)
            for view, upload in uploads.items()
            if view != View.FRONT
        },
        received_at=max(upload.time for upload in uploads.values()).astimezone(UTC),
        options=JobOptions.model_validate(record.options.as_dict()),
        request_id=record.request_id,
    )
