"""The storage-key scheme: the only place that knows where a job's objects live.

Keys hold no client-supplied text, so they never need URL-decoding or escaping."""

from __future__ import annotations

import hashlib
import re

from silhouette.schema import View

UPLOAD_PREFIX = "uploads/"
# The photos as decoded (ingest's working images) live apart from the derived artifacts, so
# that a bucket lifecycle rule can keep photos for fewer days than results (template.yaml).
WORKING_PREFIX = "working/"
# Every prefix holding photos of people rather than results derived from them.
PHOTO_PREFIXES = (UPLOAD_PREFIX, WORKING_PREFIX)
# A tenant's data exports (service/tenant_data.py): one ZIP each, kept for a day.
EXPORT_PREFIX = "exports/"
# A single photo is `original`; a capture's views are named after their view (schema.View).
_UPLOAD_KEY = re.compile(
    r"^uploads/(?P<job_id>[0-9a-f]{32})/(?P<name>original|front|side|portrait|card)$"
)
# A batch's source (its ZIP or CSV) is an upload too: the same event starts the batch.
_BATCH_SOURCE_KEY = re.compile(r"^uploads/batches/(?P<batch_id>[0-9a-f]{32})/source$")


def upload(job_id: str, view: View | None = None) -> str:
    """Where a job's photo is uploaded, or one view of a capture."""
    return f"{upload_prefix(job_id)}{view.value if view else 'original'}"


def upload_prefix(job_id: str) -> str:
    return f"{UPLOAD_PREFIX}{job_id}/"


def job_id_from_upload(key: str) -> str | None:
    """The job an uploaded object belongs to, or None for a key outside the upload scheme."""
    match = _UPLOAD_KEY.match(key)
    return match.group("job_id") if match else None


def view_of_upload(key: str) -> View | None:
    """The capture view an upload key holds; None for a single photo or a foreign key."""
    match = _UPLOAD_KEY.match(key)
    return View(match.group("name")) if match and match.group("name") != "original" else None


def artifact(job_id: str, name: str, extension: str) -> str:
    return f"{artifact_prefix(job_id)}{name}.{extension}"


def artifact_prefix(job_id: str) -> str:
    """Where the stages write a job's artifacts."""
    return f"artifacts/{job_id}/"


def working_image(job_id: str, name: str, extension: str = "png") -> str:
    """Where ingest writes a working image (`image`, `image_side`, `pixels`, ...)."""
    return f"{working_images_prefix(job_id)}{name}.{extension}"


def working_images_prefix(job_id: str) -> str:
    return f"{WORKING_PREFIX}{job_id}/"


def result(job_id: str) -> str:
    return f"results/{job_id}/result.json"


def job_prefixes(job_id: str) -> tuple[str, ...]:
    """Every prefix under which a job stores objects (for deletion)."""
    return (
        upload_prefix(job_id),
        working_images_prefix(job_id),
        artifact_prefix(job_id),
        f"results/{job_id}/",
    )


def batch_source(batch_id: str) -> str:
    return f"{UPLOAD_PREFIX}batches/{batch_id}/source"


def batch_id_from_source(key: str) -> str | None:
    """The batch an uploaded source belongs to, or None for a key outside that scheme."""
    match = _BATCH_SOURCE_KEY.match(key)
    return match.group("batch_id") if match else None


def batch_prefix(batch_id: str) -> str:
    """Where a batch's own objects live: its item list, report and results archive."""
    return f"batches/{batch_id}/"


def batch_manifest(batch_id: str) -> str:
    """The batch's items, one job id per row, as the batch state machine's Map reads them."""
    return f"{batch_prefix(batch_id)}items.csv"


def batch_report(batch_id: str) -> str:
    return f"{batch_prefix(batch_id)}report.csv"


def batch_results(batch_id: str) -> str:
    return f"{batch_prefix(batch_id)}results.zip"


def tenant_exports_prefix(tenant: str) -> str:
    """Where a tenant's exports live: named by a hash of the tenant, which keeps client text
    out of the key and lets an erasure find every export of the tenant."""
    return f"{EXPORT_PREFIX}{hashlib.sha256(tenant.encode()).hexdigest()[:32]}/"


def tenant_export(tenant: str, export_id: str) -> str:
    """One export of the tenant's data (`export_id`: 32 random hex digits)."""
    return f"{tenant_exports_prefix(tenant)}{export_id}.zip"


def tenant_export_state(tenant: str) -> str:
    """The progress of the tenant's latest export (service/tenant_requests.py)."""
    return f"{tenant_exports_prefix(tenant)}state.json"
