"""Pose: find the people in the photo and describe the primary subject with MediaPipe's
PoseLandmarker (33 keypoints, a person mask) and a bounding box.

MediaPipe's detector is tuned for one well-framed person: on the whole photo it misses people
who are small in the frame and most people in crowded shots. A second pass runs it on crops
around the faces that the full-range face detector finds and on four overlapping tiles (a miss
costs ~15 ms); it recovers some of those people, and faces it still cannot fit a pose to are
counted as people too."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

from silhouette import imaging, keys
from silhouette.errors import RejectedInput
from silhouette.models import model_path, model_version
from silhouette.schema import PipelineState, StageResult
from silhouette.stages.face import detect_faces, mp_image
from silhouette.stages.ingest import WORKING_IMAGE
from silhouette.stages.types import LANDMARK_NAMES, Box, Keypoint, PoseEstimate
from silhouette.storage import ArtifactStore

PERSON_MASK = "person_mask"
MAX_PEOPLE = 5
# Confidence is the presence of the head and shoulders: they are in frame in nearly every
# photo of a person, from portraits to full-body shots (hips and feet often are not).
CONFIDENCE_LANDMARKS = (0, 11, 12)
# Landmarks below this visibility do not shape the bounding box (MediaPipe guesses them).
VISIBLE = 0.5
MASK_THRESHOLD = 0.5
# A face crop for the second pass: face widths either side, face heights above and below.
CROP_SIDE_WIDTHS, CROP_ABOVE_HEIGHTS, CROP_BELOW_HEIGHTS = 2.5, 0.8, 8.0
# Pose runs on crops at least this tall, so a small person fills the detector's input.
CROP_MIN_SIDE = 512
# Second-pass tiles: this share of the photo's width and height, overlapping in the middle.
TILE_FRACTION = 0.6
# Two detections are one person when this much of the smaller box lies inside the larger:
# a crop may show only part of someone the whole-photo pass already found.
SAME_PERSON_OVERLAP = 0.5


@dataclass
class _Person:
    keypoints: list[Keypoint]
    mask: np.ndarray  # float32 (H, W) in 0..1, full image size
    bbox: Box
    confidence: float


@cache
def _landmarker() -> vision.PoseLandmarker:
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path("pose_landmarker"))),
        running_mode=vision.RunningMode.IMAGE,
        num_poses=MAX_PEOPLE,
        output_segmentation_masks=True,
        min_pose_detection_confidence=0.5,
        min_pose_presence_confidence=0.5,
    )
    return vision.PoseLandmarker.create_from_options(options)


def estimate_pose(image: np.ndarray) -> PoseEstimate | None:
    """The primary subject of an RGB uint8 photo, or None when no person is found."""
    height, width = image.shape[:2]
    people = _detect_people(image, Box(0, 0, width, height), (height, width))
    faces = [face.box for face in detect_faces(image)]
    crops = [_crop_around_face(f, width, height) for f in faces]
    for crop in [*crops, *_tiles(width, height)]:
        for found in _detect_people(image[crop.slices], crop, (height, width)):
            if all(_overlap(found.bbox, person.bbox) < SAME_PERSON_OVERLAP for person in people):
                people.append(found)
    if not people:
        return None
    unmatched_faces = [f for f in faces if not any(_contains(p.bbox, f) for p in people)]
    primary = max(people, key=lambda person: person.bbox.area)
    return PoseEstimate(
        keypoints=primary.keypoints,
        bbox=primary.bbox,
        confidence=primary.confidence,
        person_count=len(people) + len(unmatched_faces),
        person_mask=(primary.mask >= MASK_THRESHOLD).astype(np.uint8) * 255,
        face_box=next((f for f in faces if _contains(primary.bbox, f)), None),
    )


def _detect_people(image: np.ndarray, region: Box, full_size: tuple[int, int]) -> list[_Person]:
    """People in `image`, which shows `region` of a photo of `full_size` (height, width)."""
    scale = max(1.0, CROP_MIN_SIDE / min(image.shape[:2]))
    scaled = cv2.resize(image, None, fx=scale, fy=scale) if scale > 1 else image
    result = _landmarker().detect(mp_image(scaled))
    people = []
    masks = result.segmentation_masks or []
    for landmarks, mask in zip(result.pose_landmarks, masks, strict=True):
        keypoints = [
            Keypoint(
                name=name,
                x=region.x + mark.x * region.width,
                y=region.y + mark.y * region.height,
                nx=(region.x + mark.x * region.width) / full_size[1],
                ny=(region.y + mark.y * region.height) / full_size[0],
                z=mark.z,
                visibility=mark.visibility,
            )
            for name, mark in zip(LANDMARK_NAMES, landmarks, strict=True)
        ]
        full_mask = np.zeros(full_size, np.float32)
        crop_mask = cv2.resize(mask.numpy_view()[..., 0], (region.width, region.height))
        full_mask[region.slices] = crop_mask
        people.append(
            _Person(
                keypoints=keypoints,
                mask=full_mask,
                bbox=_bounding_box(keypoints, full_mask),
                confidence=float(np.mean([landmarks[i].presence for i in CONFIDENCE_LANDMARKS])),
            )
        )
    return people


def _bounding_box(keypoints: list[Keypoint], mask: np.ndarray) -> Box:
    """The union of the visible keypoints and the mask's pixels around them: keypoints alone
    miss hair, hands and loose clothing; the mask alone may include a nearby object."""
    height, width = mask.shape
    visible = [k for k in keypoints if k.visibility >= VISIBLE] or keypoints
    xs = [k.x for k in visible]
    ys = [k.y for k in visible]
    left, top, right, bottom = min(xs), min(ys), max(xs), max(ys)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        (mask >= MASK_THRESHOLD).astype(np.uint8)
    )
    for label in range(1, len(stats)):
        x, y, w, h, _area = stats[label]
        if _overlaps((x, y, x + w, y + h), (left, top, right, bottom)):
            left, top = min(left, x), min(top, y)
            right, bottom = max(right, x + w), max(bottom, y + h)
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(width, int(np.ceil(right))), min(height, int(np.ceil(bottom)))
    return Box(left, top, right - left, bottom - top)


def _crop_around_face(face: Box, width: int, height: int) -> Box:
    left = max(0, int(face.x - CROP_SIDE_WIDTHS * face.width))
    right = min(width, int(face.x + face.width + CROP_SIDE_WIDTHS * face.width))
    top = max(0, int(face.y - CROP_ABOVE_HEIGHTS * face.height))
    bottom = min(height, int(face.y + face.height + CROP_BELOW_HEIGHTS * face.height))
    return Box(left, top, right - left, bottom - top)


def _tiles(width: int, height: int) -> list[Box]:
    """Four overlapping quadrant-sized tiles: people too small for the whole-photo pass."""
    tile_width, tile_height = int(width * TILE_FRACTION), int(height * TILE_FRACTION)
    return [
        Box(x, y, tile_width, tile_height)
        for y in (0, height - tile_height)
        for x in (0, width - tile_width)
    ]


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _contains(outer: Box, inner: Box) -> bool:
    """Whether the centre of `inner` lies inside `outer`."""
    cx, cy = inner.x + inner.width / 2, inner.y + inner.height / 2
    return outer.x <= cx <= outer.x + outer.width and outer.y <= cy <= outer.y + outer.height


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    smaller = min(a.area, b.area)
    return a.intersection(b) / smaller if smaller else 0.0


def to_facts(estimate: PoseEstimate) -> dict[str, object]:
    """The record's `person`: keypoints in pixels and normalised, bbox, confidence, count."""
    return {
        "keypoints": [
            {
                "name": k.name,
                "x": round(k.x, 1),
                "y": round(k.y, 1),
                "nx": round(k.nx, 4),
                "ny": round(k.ny, 4),
                "z": round(k.z, 4),
                "visibility": round(k.visibility, 3),
            }
            for k in estimate.keypoints
        ],
        "bbox": estimate.bbox.as_dict(),
        "confidence": round(estimate.confidence, 3),
        "person_count": estimate.person_count,
        "face_box": estimate.face_box.as_dict() if estimate.face_box else None,
    }


def run(state: PipelineState, store: ArtifactStore) -> StageResult:
    image = imaging.decode(store.get(state.artifact(WORKING_IMAGE)))
    estimate = estimate_pose(image)
    if estimate is None:
        raise RejectedInput("no person detected")
    mask_key = keys.artifact(state.job_id, PERSON_MASK, "png")
    store.put(mask_key, imaging.encode_png(estimate.person_mask), "image/png")
    return StageResult(
        artifacts={PERSON_MASK: mask_key},
        facts={"person": to_facts(estimate)},
        models={name: model_version(name) for name in ("pose_landmarker", "face_detector")},
    )
