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
from silhouette.stages.types import (
    LANDMARK_NAMES,
    VISIBLE,
    Box,
    Keypoint,
    PoseEstimate,
    framing,
)
from silhouette.storage import ArtifactStore

PERSON_MASK = "person_mask"
MAX_PEOPLE = 5
# Confidence is the presence of the head and shoulders: they are in frame in nearly every
# photo of a person, from portraits to full-body shots (hips and feet often are not).
CONFIDENCE_LANDMARKS = (0, 11, 12)
MASK_THRESHOLD = 0.5
# A face crop for the second pass: face widths either side, face heights above and below.
CROP_SIDE_WIDTHS, CROP_ABOVE_HEIGHTS, CROP_BELOW_HEIGHTS = 2.5, 0.8, 8.0
# Pose runs on crops at least this tall, so a small person fills the detector's input.
CROP_MIN_SIDE = 512
# ...and on nothing longer than this, which binds first: MediaPipe scales every input to 256 px
# for its models, so more pixels add nothing but memory (its person mask comes back at the
# input's size, as floats), and it aborts in OpenCV or crashes on inputs tens of thousands of
# pixels long (a 64 x 5000 strip scaled to a 512 px short side).
MAX_INPUT_SIDE = 2048
# Second-pass tiles: this share of the photo's width and height, overlapping in the middle.
TILE_FRACTION = 0.6
# Two detections are one person when this much of the smaller box lies inside the larger:
# a crop may show only part of someone the whole-photo pass already found.
SAME_PERSON_OVERLAP = 0.5


@dataclass
class _Person:
    keypoints: list[Keypoint]
    mask: np.ndarray  # uint8 0..255 at the detector input's size, covering `region`
    region: Box  # the part of the photo the detector saw
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
    faces = _faces(image)
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
        person_mask=_photo_mask(primary, (height, width)),
        face_box=next((f for f in faces if _contains(primary.bbox, f)), None),
    )


def _input_scale(height: int, width: int) -> float:
    """How much to scale an image for the detector: up until its short side is CROP_MIN_SIDE,
    down until its long side is at most MAX_INPUT_SIDE, the long side's bound first."""
    return min(max(1.0, CROP_MIN_SIDE / min(height, width)), MAX_INPUT_SIDE / max(height, width))


def _scaled(image: np.ndarray, scale: float) -> np.ndarray | None:
    """`image` scaled by `scale`; None when less than a pixel of its short side would be left
    (a sliver no person fits in, or an empty tile of one)."""
    if min(image.shape[:2]) * scale < 1:
        return None
    if scale == 1.0:
        return image
    # Area averaging when shrinking: bilinear would alias what the detector sees.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)


def _faces(image: np.ndarray) -> list[Box]:
    """Face boxes in photo pixels. The detector sees 192 px whatever it is given, so it is given
    the photo shrunk to MAX_INPUT_SIDE at most, not a full-resolution copy."""
    height, width = image.shape[:2]
    small = _scaled(image, min(1.0, MAX_INPUT_SIDE / max(height, width)))
    if small is None:
        return []
    to_photo = width / small.shape[1], height / small.shape[0]
    return [_to_photo(face.box, to_photo, (height, width)) for face in detect_faces(small)]


def _to_photo(box: Box, scale: tuple[float, float], size: tuple[int, int]) -> Box:
    """`box` on a scaled image back in photo pixels (scale: photo per image pixel, x and y)."""
    left, top = int(box.x * scale[0]), int(box.y * scale[1])
    right = min(size[1], int(np.ceil((box.x + box.width) * scale[0])))
    bottom = min(size[0], int(np.ceil((box.y + box.height) * scale[1])))
    return Box(left, top, right - left, bottom - top)


def _detect_people(image: np.ndarray, region: Box, full_size: tuple[int, int]) -> list[_Person]:
    """People in `image`, which shows `region` of a photo of `full_size` (height, width)."""
    scaled = _scaled(image, _input_scale(*image.shape[:2]))
    if scaled is None:
        return []
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
        # Kept at the detector's size (a full-size float mask per person took 200 MB each
        # on a 50 MP photo); only the primary subject's is scaled to the photo.
        small_mask = np.round(mask.numpy_view()[..., 0] * 255).astype(np.uint8)
        people.append(
            _Person(
                keypoints=keypoints,
                mask=small_mask,
                region=region,
                bbox=_bounding_box(keypoints, small_mask, region, full_size),
                confidence=float(np.mean([landmarks[i].presence for i in CONFIDENCE_LANDMARKS])),
            )
        )
    return people


def _photo_mask(person: _Person, full_size: tuple[int, int]) -> np.ndarray:
    """The person's mask on the whole photo: uint8, 255 = person."""
    on_region = cv2.resize(person.mask, (person.region.width, person.region.height))
    photo_mask = np.zeros(full_size, np.uint8)
    _, photo_mask[person.region.slices] = cv2.threshold(
        on_region, 255 * MASK_THRESHOLD, 255, cv2.THRESH_BINARY
    )
    return photo_mask


def _bounding_box(
    keypoints: list[Keypoint], mask: np.ndarray, region: Box, full_size: tuple[int, int]
) -> Box:
    """The union of the visible keypoints and the mask's pixels around them: keypoints alone
    miss hair, hands and loose clothing; the mask alone may include a nearby object. `mask`
    covers `region` of the photo at its own resolution."""
    height, width = full_size
    # Landmarks MediaPipe only guesses do not shape the box.
    visible = [k for k in keypoints if k.visibility >= VISIBLE] or keypoints
    xs = [k.x for k in visible]
    ys = [k.y for k in visible]
    left, top, right, bottom = min(xs), min(ys), max(xs), max(ys)
    _, _, stats, _ = cv2.connectedComponentsWithStats(
        (mask >= 255 * MASK_THRESHOLD).astype(np.uint8)
    )
    to_photo_x, to_photo_y = region.width / mask.shape[1], region.height / mask.shape[0]
    for x, y, w, h, _area in stats[1:]:
        component = (
            region.x + x * to_photo_x,
            region.y + y * to_photo_y,
            region.x + (x + w) * to_photo_x,
            region.y + (y + h) * to_photo_y,
        )
        if _overlaps(component, (left, top, right, bottom)):
            left, top = min(left, component[0]), min(top, component[1])
            right, bottom = max(right, component[2]), max(bottom, component[3])
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
                "in_frame": k.in_frame,
            }
            for k in estimate.keypoints
        ],
        "framing": framing(estimate.keypoints),
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
