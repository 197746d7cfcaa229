"""The one settings object. Every value comes from the environment that template.yaml gives
each function (the embedded stack sets the same variables), so code never restates names."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from silhouette.names import PROJECT_ROOT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SILHOUETTE_", frozen=True)

    bucket: str = Field("", description="bucket holding uploads, working images and results")
    table: str = Field("", description="DynamoDB table of job records")
    event_bus: str = Field("", description="EventBridge bus for job events")
    state_machine_arn: str = Field("", description="pipeline state machine (starter and API)")
    batch_table: str = Field("", description="DynamoDB table of batch records")
    audit_table: str = Field("", description="DynamoDB table of the audit log")
    tenant_data_function: str = Field(
        "", description="the function exporting and erasing a tenant's data (API only)"
    )
    batch_state_machine_arn: str = Field("", description="batch state machine (starter)")
    region: str = Field("us-east-1", validation_alias="AWS_REGION")

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    min_side: int = 64
    # Longest side over shortest side. Panoramas of a group stay well inside; strips like
    # 64x5000 px are refused before any model sees them (MediaPipe aborts on such shapes).
    max_aspect_ratio: float = 10.0
    upload_url_expiry_seconds: int = 300
    # A capture's views are taken one after another (turn sideways, fetch the card): its forms
    # last longer. A view still missing then expires the job, naming it.
    capture_upload_expiry_seconds: int = 1800
    retention_days: int = Field(
        30, description="days after which a job, its photo and its artifacts are erased"
    )
    # Audit entries outlive the jobs they name: a tenant accounts for a year's accesses.
    audit_retention_days: int = 400
    # The sweeper looks this many days back for jobs due (it runs every few minutes; the
    # window only matters if it was down for longer).
    sweep_lookback_days: int = 7
    download_url_expiry_seconds: int = 900
    # A batch's source: a ZIP (its entries, sizes and ratios: service/batch_archive.py) or a
    # CSV of photo URLs (service/url_fetch.py), at most this large and this many items.
    max_batch_source_bytes: int = 1024 * 1024 * 1024
    max_batch_items: int = 1000
    # How many of a batch's items run at once, unless the request asks for fewer.
    batch_concurrency: int = 10
    # How many batch items of one tenant run at once, all its batches together.
    tenant_concurrency: int = 20
    # A batch's own webhook (service/batch_webhooks.py): the role EventBridge delivers with,
    # the queue of what it could not deliver, and how long after the batch ends its resources
    # stay (longer than a delivery's day of retries).
    batch_webhook_role_arn: str = ""
    batch_webhook_dead_letter_queue_arn: str = ""
    batch_webhook_linger_seconds: int = 90_000
    # A photos batch's upload forms: one per photo, all handed out at once, so they last long
    # enough for hundreds of uploads on a slow line. The batch starts once every photo has
    # arrived, or with those that have once the forms have expired.
    batch_upload_expiry_seconds: int = 3600
    # Lets CSV batches fetch photos from 127.0.0.1 (tests serve them there); private, link-local
    # and other internal ranges stay refused whatever this says.
    fetch_allow_loopback: bool = False
    minio_webhook_token: str = Field(
        "", description="shared secret MinIO sends with its webhook events; empty refuses them"
    )

    # layers/models/manifest.json in a checkout; the images copy it next to the models.
    model_manifest: Path = PROJECT_ROOT / "layers" / "models" / "manifest.json"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
