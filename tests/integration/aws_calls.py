"""Every AWS call each function and state machine of template.yaml makes, as IAM authorises
it: the action and an example resource ARN, on a stack named STACK_NAME (physical names as the
embedded stack gives them), for job JOB and API key API_KEY_ID.

test_iam_policies.py checks each role allows exactly these, nothing missing and nothing extra;
tests/e2e/test_aws_calls.py records what the functions really call and checks it is listed here.
A new function needs an entry before either test passes."""

from __future__ import annotations

from silhouette.local.template import ACCOUNT_ID, Template
from silhouette.names import PROJECT_ROOT
from silhouette.pipeline import PIPELINE
from silhouette.schema import View
from silhouette.service import keys
from silhouette.service.starter import execution_arn
from tests.integration.iam import AwsCall

STACK_NAME = "silhouette-iam"
# Not the other test stacks' region: in one test process they share moto's backends, and the
# API keys of tests/conftest.py exist there already.
REGION = "eu-west-1"
JOB = "0123456789abcdef0123456789abcdef"
API_KEY_ID = "key0123456"
TEMPLATE = Template(PROJECT_ROOT / "template.yaml", STACK_NAME, REGION)

BUCKET = TEMPLATE.arn("PhotoBucket")
TABLE = TEMPLATE.arn("JobsTable")
BATCH_TABLE = TEMPLATE.arn("BatchesTable")
BATCH_ITEMS = f"{TABLE}/index/batch-items"
BATCH = JOB  # (the recorder names every id JOB)
BATCH_STATE_MACHINE = TEMPLATE.arn("BatchStateMachine")
_EVENTS = f"arn:aws:events:{REGION}:{ACCOUNT_ID}"
BATCH_WEBHOOK = f"silhouette-batch-{BATCH}"  # batch_webhooks.resource_name
BATCH_WEBHOOK_RULE = f"{_EVENTS}:rule/{TEMPLATE.physical_name('JobEventBus')}/{BATCH_WEBHOOK}"
BATCH_WEBHOOK_CONNECTION = f"{_EVENTS}:connection/{BATCH_WEBHOOK}"
BATCH_WEBHOOK_DESTINATION = f"{_EVENTS}:api-destination/{BATCH_WEBHOOK}"
# The rule through which Step Functions follows a child execution (startExecution.sync).
SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"
STATE_MACHINE = TEMPLATE.arn("PipelineStateMachine")
EXECUTION = execution_arn(STATE_MACHINE, JOB)
EVENT_BUS = TEMPLATE.arn("JobEventBus")
API_KEY = f"arn:aws:apigateway:{REGION}::/apikeys/{API_KEY_ID}"


def _object(key: str) -> str:
    return f"{BUCKET}/{key}"


UPLOAD = _object(keys.upload(JOB))
WORKING_IMAGE = _object(keys.working_image(JOB, "image"))
PERSON_MASK = _object(keys.artifact(JOB, "person_mask", "png"))
CUTOUT = _object(keys.artifact(JOB, "cutout", "png"))
CLOTHING_MASK = _object(keys.artifact(JOB, "clothing_mask", "png"))
OVERLAY = _object(keys.artifact(JOB, "overlay", "jpg"))
FACE_CROP = _object(keys.artifact(JOB, "face_crop", "png"))
RESULT = _object(keys.result(JOB))
MEASUREMENT_PICTURE = _object(keys.artifact(JOB, "measurements", "jpg"))
# A capture's views: their uploads and what the stages make of the other views.
VIEW_UPLOADS = tuple(_object(keys.upload(JOB, view)) for view in View)
SIDE_IMAGE = _object(keys.working_image(JOB, "image_side"))
PORTRAIT_IMAGE = _object(keys.working_image(JOB, "image_portrait"))
CARD_IMAGE = _object(keys.working_image(JOB, "image_card"))
# The same photos as the arrays the stages read.
PIXELS = _object(keys.working_image(JOB, "pixels", "npy"))
SIDE_PIXELS = _object(keys.working_image(JOB, "pixels_side", "npy"))
PORTRAIT_PIXELS = _object(keys.working_image(JOB, "pixels_portrait", "npy"))
CARD_PIXELS = _object(keys.working_image(JOB, "pixels_card", "npy"))
WORKING_FILES = (
    WORKING_IMAGE,
    SIDE_IMAGE,
    PORTRAIT_IMAGE,
    CARD_IMAGE,
    PIXELS,
    SIDE_PIXELS,
    PORTRAIT_PIXELS,
    CARD_PIXELS,
)
SIDE_PERSON_MASK = _object(keys.artifact(JOB, "person_mask_side", "png"))
SIDE_CUTOUT = _object(keys.artifact(JOB, "cutout_side", "png"))
DOWNLOADS = (
    WORKING_IMAGE,
    PERSON_MASK,
    CUTOUT,
    CLOTHING_MASK,
    OVERLAY,
    FACE_CROP,
    MEASUREMENT_PICTURE,
    SIDE_IMAGE,
    PORTRAIT_IMAGE,
    CARD_IMAGE,
    SIDE_PERSON_MASK,
    SIDE_CUTOUT,
    RESULT,
)
BATCH_SOURCE = _object(keys.batch_source(BATCH))
BATCH_MANIFEST = _object(keys.batch_manifest(BATCH))
BATCH_OUTPUTS = (_object(keys.batch_report(BATCH)), _object(keys.batch_results(BATCH)))
AUDIT_TABLE = TEMPLATE.arn("AuditTable")
# A tenant's export: under the tenant's hash, which the recorder too names JOB (32 hex digits).
EXPORT = _object(f"{keys.EXPORT_PREFIX}{JOB}/{JOB}.zip")
EXPORT_STATE = f"{keys.EXPORT_PREFIX}{JOB}/state.json"
# What an export lists: each of a job's prefixes, a batch's own and its source.
_TENANT_PREFIXES = (*keys.job_prefixes(JOB), keys.batch_prefix(BATCH), keys.batch_source(BATCH))


def _job_erased() -> list[AwsCall]:
    """storage.delete_prefixes over a job: list each prefix, delete what is there."""
    listings = [AwsCall("s3:ListBucket", BUCKET, prefix) for prefix in keys.job_prefixes(JOB)]
    deletions = [
        AwsCall("s3:DeleteObject", key)
        for key in (UPLOAD, *VIEW_UPLOADS, *DOWNLOADS, *WORKING_FILES)
    ]
    return listings + deletions


def _export_state() -> list[AwsCall]:
    """tenant_requests: an export's progress, listed, read and written."""
    state = _object(EXPORT_STATE)
    return [
        AwsCall("s3:ListBucket", BUCKET, EXPORT_STATE),
        AwsCall("s3:GetObject", state),
        AwsCall("s3:PutObject", state),
    ]


def _tenant_exported() -> list[AwsCall]:
    """tenant_data.export_tenant: every job's and batch's objects read, one ZIP written."""
    listings = [AwsCall("s3:ListBucket", BUCKET, prefix) for prefix in _TENANT_PREFIXES]
    reads = [
        AwsCall("s3:GetObject", key)
        for key in (UPLOAD, *VIEW_UPLOADS, *DOWNLOADS, *WORKING_FILES, BATCH_SOURCE, BATCH_MANIFEST)
    ]
    return [
        AwsCall("dynamodb:Query", f"{BATCH_TABLE}/index/tenant-batches"),
        AwsCall("dynamodb:GetItem", BATCH_TABLE),
        *listings,
        *reads,
        *(AwsCall("s3:GetObject", key) for key in BATCH_OUTPUTS),
        AwsCall("dynamodb:Query", f"{TABLE}/index/tenant-jobs"),
        AwsCall("s3:PutObject", EXPORT),
    ]


def _tenant_erased() -> list[AwsCall]:
    """tenant_data.erase_tenant: jobs, batches, the tenant's slots and exports deleted."""
    return [
        *_job_erased(),
        AwsCall("dynamodb:DeleteItem", TABLE),
        *(AwsCall("s3:ListBucket", BUCKET, prefix) for prefix in _TENANT_PREFIXES[-2:]),
        AwsCall("s3:ListBucket", BUCKET, f"{keys.EXPORT_PREFIX}{JOB}/"),
        *(
            AwsCall("s3:DeleteObject", key)
            for key in (BATCH_SOURCE, BATCH_MANIFEST, *BATCH_OUTPUTS, EXPORT, _object(EXPORT_STATE))
        ),
        AwsCall("dynamodb:DeleteItem", BATCH_TABLE),  # batches and the tenant's slots
    ]


def _stage(reads: tuple[str, ...], writes: tuple[str, ...]) -> list[AwsCall]:
    """A pipeline stage: mark the job PROCESSING, read its inputs, write its artifacts, check
    the job still exists (pipeline.run_stage) and erase its artifacts again if it does not."""
    return [
        AwsCall("dynamodb:UpdateItem", TABLE),
        *(AwsCall("s3:GetObject", key) for key in reads),
        *(AwsCall("s3:PutObject", key) for key in writes),
        AwsCall("dynamodb:GetItem", TABLE),
        AwsCall("s3:ListBucket", BUCKET, keys.artifact_prefix(JOB)),
        # Ingest's writes include the working images, which live apart (keys.WORKING_PREFIX).
        *(
            [AwsCall("s3:ListBucket", BUCKET, keys.working_images_prefix(JOB))]
            if WORKING_IMAGE in writes
            else []
        ),
        *(AwsCall("s3:DeleteObject", key) for key in writes),
    ]


CALLS: dict[str, list[AwsCall]] = {
    "ApiFunction": [
        AwsCall("apigateway:GET", API_KEY),  # GetApiKey: the caller's tenant
        AwsCall("dynamodb:PutItem", TABLE),  # POST /uploads
        AwsCall("s3:PutObject", UPLOAD),  # its presigned POST
        *(AwsCall("s3:PutObject", key) for key in VIEW_UPLOADS),  # a capture's, one per view
        AwsCall("dynamodb:GetItem", TABLE),  # GET /jobs/{id}, and the MinIO webhook's starter
        AwsCall("dynamodb:Query", f"{TABLE}/index/tenant-jobs"),  # GET /jobs
        *(AwsCall("s3:GetObject", key) for key in DOWNLOADS),  # presigned downloads
        *_job_erased(),  # DELETE /jobs/{id}
        AwsCall("dynamodb:DeleteItem", TABLE),
        AwsCall("states:DescribeExecution", EXECUTION),  # is a PROCESSING job's still running?
        AwsCall("s3:ListBucket", BUCKET, keys.UPLOAD_PREFIX),  # GET /health
        AwsCall("dynamodb:DescribeTable", TABLE),
        AwsCall("states:DescribeStateMachine", STATE_MACHINE),
        AwsCall("states:StartExecution", STATE_MACHINE),  # the MinIO webhook
        AwsCall("dynamodb:PutItem", BATCH_TABLE),  # POST /batches
        AwsCall("s3:PutObject", BATCH_SOURCE),  # its presigned POST
        AwsCall("dynamodb:GetItem", BATCH_TABLE),  # GET /batches/{id}
        *(AwsCall("s3:GetObject", key) for key in BATCH_OUTPUTS),  # GET /batches/{id}/report
        AwsCall("dynamodb:UpdateItem", BATCH_TABLE),  # the MinIO webhook starts a batch
        AwsCall("states:StartExecution", BATCH_STATE_MACHINE),
        AwsCall("dynamodb:UpdateItem", TABLE),  # PATCH .../measurements, .../approval
        AwsCall("dynamodb:PutItem", AUDIT_TABLE),  # admin reads, adjustments, approvals
        AwsCall("dynamodb:Query", AUDIT_TABLE),  # GET /tenant/audit
        # GET /tenant/export: its progress, the tenant-data function asked to make it, the ZIP
        # handed out; DELETE /tenant/data asks that function too.
        *_export_state(),
        AwsCall("lambda:InvokeFunction", TEMPLATE.arn("TenantDataFunction")),
        AwsCall("s3:GetObject", EXPORT),
    ],
    "TenantDataFunction": [
        *_export_state(),
        *_tenant_exported(),
        *_tenant_erased(),
        AwsCall("dynamodb:PutItem", AUDIT_TABLE),  # what was exported or erased
    ],
    "UploadStarterFunction": [
        AwsCall("dynamodb:GetItem", TABLE),
        AwsCall("states:StartExecution", STATE_MACHINE),
        AwsCall("s3:DeleteObject", UPLOAD),  # an upload without a job
        AwsCall("s3:ListBucket", BUCKET, keys.upload_prefix(JOB)),  # a capture's views so far
        AwsCall("dynamodb:GetItem", BATCH_TABLE),  # a batch's source arrived
        AwsCall("states:StartExecution", BATCH_STATE_MACHINE),
        AwsCall("dynamodb:UpdateItem", BATCH_TABLE),  # WAITING -> RUNNING
    ],
    "IngestFunction": _stage(
        reads=(UPLOAD, *VIEW_UPLOADS),
        writes=WORKING_FILES,
    ),
    "PoseFunction": _stage(reads=(PIXELS, SIDE_PIXELS), writes=(PERSON_MASK, SIDE_PERSON_MASK)),
    "SegmentFunction": _stage(
        reads=(PIXELS, PERSON_MASK, SIDE_PIXELS, SIDE_PERSON_MASK),
        writes=(CUTOUT, CLOTHING_MASK, SIDE_CUTOUT),
    ),
    "ColorsFunction": _stage(reads=(PIXELS, CLOTHING_MASK, CARD_PIXELS), writes=()),
    "SkinFunction": _stage(reads=(PIXELS, PORTRAIT_PIXELS), writes=()),
    "FaceFunction": _stage(reads=(PIXELS,), writes=(FACE_CROP,)),
    "MeasureFunction": _stage(reads=(CUTOUT, SIDE_CUTOUT), writes=()),
    "OverlayFunction": _stage(
        reads=(PIXELS, CLOTHING_MASK, SIDE_PIXELS), writes=(OVERLAY, MEASUREMENT_PICTURE)
    ),
    "FinalizeFunction": [
        AwsCall("dynamodb:GetItem", TABLE),
        AwsCall("s3:PutObject", RESULT),
        # A capture's photos and working images, erased at its end (store_images unset).
        AwsCall("s3:ListBucket", BUCKET, keys.upload_prefix(JOB)),
        AwsCall("s3:ListBucket", BUCKET, keys.working_images_prefix(JOB)),
        *(AwsCall("s3:DeleteObject", key) for key in VIEW_UPLOADS),
        *(AwsCall("s3:DeleteObject", key) for key in WORKING_FILES),
        AwsCall("dynamodb:UpdateItem", TABLE),
        # A job erased while it finished: its result.json, written just before, goes too.
        AwsCall("s3:ListBucket", BUCKET, keys.result(JOB)),
        AwsCall("s3:DeleteObject", RESULT),
        AwsCall("dynamodb:UpdateItem", BATCH_TABLE),  # a batch's item: counted on its batch
        AwsCall("events:PutEvents", EVENT_BUS),
    ],
    "SweeperFunction": [
        AwsCall("dynamodb:Query", f"{TABLE}/index/sweep-due"),
        AwsCall("dynamodb:GetItem", TABLE),
        AwsCall("dynamodb:UpdateItem", TABLE),  # look again later, EXPIRED, finalize's FAILED
        AwsCall("states:DescribeExecution", EXECUTION),
        AwsCall("s3:ListBucket", BUCKET, keys.upload(JOB)),  # did the photo arrive?
        AwsCall("states:StartExecution", STATE_MACHINE),  # the upload's event was lost
        AwsCall("s3:PutObject", RESULT),  # finalize of an execution that ended without outcome
        AwsCall("dynamodb:UpdateItem", BATCH_TABLE),  # ... of a batch's item, or its slot
        AwsCall("events:PutEvents", EVENT_BUS),
        # A batch's item not run yet: its batch, started if its photos stopped arriving.
        AwsCall("dynamodb:GetItem", BATCH_TABLE),
        AwsCall("states:StartExecution", BATCH_STATE_MACHINE),
        *_job_erased(),  # retention ended
        AwsCall("dynamodb:DeleteItem", TABLE),
    ],
    "BatchExpandFunction": [
        AwsCall("dynamodb:GetItem", BATCH_TABLE),
        # The batch's webhook (batch_webhooks.subscribe).
        AwsCall("events:CreateConnection", BATCH_WEBHOOK_CONNECTION),
        AwsCall("events:CreateApiDestination", BATCH_WEBHOOK_DESTINATION),
        AwsCall("events:PutRule", BATCH_WEBHOOK_RULE),
        AwsCall("events:PutTargets", BATCH_WEBHOOK_RULE),
        AwsCall("iam:PassRole", TEMPLATE.arn("BatchWebhookRole")),
        # A retried step finds what it created before.
        AwsCall("events:DescribeConnection", BATCH_WEBHOOK_CONNECTION),
        AwsCall("events:DescribeApiDestination", BATCH_WEBHOOK_DESTINATION),
        AwsCall("s3:GetObject", BATCH_SOURCE),
        AwsCall("dynamodb:PutItem", TABLE),  # a job per item
        AwsCall("dynamodb:Query", BATCH_ITEMS),  # a photos batch's jobs, made with it
        AwsCall("s3:PutObject", UPLOAD),  # a ZIP entry, as the item's upload
        AwsCall("s3:PutObject", BATCH_MANIFEST),
        AwsCall("dynamodb:UpdateItem", BATCH_TABLE),  # its total, or REJECTED
        # An item that cannot be analysed is finalized REJECTED at once.
        AwsCall("dynamodb:GetItem", TABLE),
        AwsCall("s3:PutObject", RESULT),
        AwsCall("dynamodb:UpdateItem", TABLE),
        AwsCall("events:PutEvents", EVENT_BUS),
    ],
    "BatchItemFunction": [
        AwsCall("dynamodb:GetItem", TABLE),
        AwsCall("dynamodb:UpdateItem", BATCH_TABLE),  # a slot of the tenant's
        AwsCall("dynamodb:PutItem", BATCH_TABLE),  # the tenant's first item: its slots
        AwsCall("s3:ListBucket", BUCKET, keys.upload(JOB)),  # fetched before?
        AwsCall("s3:PutObject", UPLOAD),  # a URL item's photo
        # A photo that could not be fetched: the item is finalized REJECTED.
        AwsCall("s3:PutObject", RESULT),
        AwsCall("dynamodb:UpdateItem", TABLE),
        AwsCall("events:PutEvents", EVENT_BUS),
    ],
    "BatchFinishFunction": [
        AwsCall("dynamodb:GetItem", BATCH_TABLE),
        AwsCall("dynamodb:Query", BATCH_ITEMS),
        *(AwsCall("s3:GetObject", key) for key in DOWNLOADS),  # into the results archive
        *(AwsCall("s3:PutObject", key) for key in BATCH_OUTPUTS),
        AwsCall("dynamodb:UpdateItem", BATCH_TABLE),
        AwsCall("events:PutEvents", EVENT_BUS),
    ],
    "BatchWebhookFunction": [
        AwsCall("events:RemoveTargets", BATCH_WEBHOOK_RULE),
        AwsCall("events:DeleteRule", BATCH_WEBHOOK_RULE),
        AwsCall("events:DeleteApiDestination", BATCH_WEBHOOK_DESTINATION),
        AwsCall("events:DeleteConnection", BATCH_WEBHOOK_CONNECTION),
    ],
    "BatchStateMachine": [
        *(
            AwsCall("lambda:InvokeFunction", TEMPLATE.arn(logical_id))
            for logical_id in (
                "BatchExpandFunction",
                "BatchItemFunction",
                "BatchFinishFunction",
                "BatchWebhookFunction",
            )
        ),
        AwsCall("s3:GetObject", BATCH_MANIFEST),  # the Map's ItemReader
        AwsCall("states:StartExecution", STATE_MACHINE),  # an item's pipeline
        AwsCall("states:DescribeExecution", EXECUTION),
        AwsCall("states:StopExecution", EXECUTION),
        *(
            AwsCall(
                action,
                f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/"
                "StepFunctionsGetEventsForStepFunctionsExecutionRule",
            )
            for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule")
        ),
        AwsCall("states:StartExecution", BATCH_STATE_MACHINE),  # the Distributed Map's children
        AwsCall(
            "states:DescribeExecution",
            f"{BATCH_STATE_MACHINE.replace(':stateMachine:', ':execution:')}/BatchItems:1",
        ),
        AwsCall(
            "states:StopExecution",
            f"{BATCH_STATE_MACHINE.replace(':stateMachine:', ':execution:')}/BatchItems:1",
        ),
    ],
    "PipelineStateMachine": [
        *(
            AwsCall("lambda:InvokeFunction", TEMPLATE.arn(logical_id))
            for logical_id in (*(spec.function for spec in PIPELINE), "FinalizeFunction")
        ),
        AwsCall("dynamodb:UpdateItem", TABLE),  # RecordFailureInTable
    ],
}
