"""Names the service, its functions and its clients share: artifact names, HTTP headers, the
event source, and where the checkout and the local stack are. Importable anywhere (a client, a
handler's cold start) at no cost."""

from pathlib import Path

# Artifacts a job's stages write, by name (the storage key scheme is service/keys.py).
WORKING_IMAGE = "image"  # ingest: the upload decoded, upright, sRGB, without metadata (PNG)
WORKING_PIXELS = "pixels"  # ingest: the same pixels as an array, which the stages read
PERSON_MASK = "person_mask"  # pose
CUTOUT = "cutout"  # segment
CLOTHING_MASK = "clothing_mask"  # segment
OVERLAY = "overlay"  # overlay
FACE_CROP = "face_crop"  # face
MEASUREMENT_PICTURE = "measurements"  # overlay: the measured lines and values
RESULT_ARTIFACT = "result"  # finalize: result.json


def offered(artifact: str) -> bool:
    """Whether a job's result lists the artifact for download: the stages' arrays are not."""
    return artifact.partition("_")[0] != WORKING_PIXELS


def of_view(artifact: str, view: str) -> str:
    """The artifact's name for a capture's other view (`image_side`); the front view's
    artifacts keep their plain names, as a single photo's."""
    return f"{artifact}_{view}"


# HTTP API.
API_KEY_HEADER = "x-api-key"
# What a photo may be uploaded as (ingest reads what is really inside).
PHOTO_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")
REQUEST_ID_HEADER = "X-Request-ID"

# EventBridge: the source of the job events partners subscribe to.
EVENT_SOURCE = "silhouette.job"

# The checkout (template.yaml, samples/) and the local stack's defaults.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STACK_NAME = "silhouette-local"
DEFAULT_REGION = "us-east-1"
