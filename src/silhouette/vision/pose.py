"""Pose: find the people in the photo and describe the primary subject with MediaPipe's
PoseLandmarker (33 keypoints, a person mask) and a bounding box.

MediaPipe's detector is tuned for one well-framed person: on the whole photo it misses people
who are small in the frame, close-ups and most people in crowded shots. A second pass runs it on
crops around the faces that the full-range face detector finds and on four overlapping tiles (a
miss costs ~15 ms); it recovers many of those people. Every hit must then be corroborated (see
evidence.py) before it counts as a person, and the subject is the most prominent person: the
largest and most central, not the first hit. Faces no person can be fitted to are counted as
people too."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import cv2
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

from silhouette.vision import corroboration, imaging
from silhouette.vision.corroboration import gather
from silhouette.vision.evidence import PERSON_PROBABILITY, Evidence
from silhouette.vision.face import (
    SAME_FACE_IOU,
    FaceDetection,
    detect_faces,
    load_detector,
    mp_image,
)
from silhouette.vision.model_files import model_path
from silhouette.vision.types import (
    LANDMARK_NAMES,
    Box,
    Keypoint,
    PoseEstimate,
    head_size,
)

MAX_PEOPLE = 5
# Presence is the pose model's for the head and shoulders: they are in frame in nearly every
# photo of a person, from portraits to full-body shots (hips and feet often are not).
PRESENCE_LANDMARKS = (0, 11, 12)
MASK_THRESHOLD = 0.5
# Crops around a face for the second pass, tried in turn until the face's person is found:
# (face widths either side, face heights above, face heights below, grey padding as a share of
# the crop). The wide crop shows a standing body; the tight one leaves out a neighbour that the
# detector would take instead; padding makes a close-up person small enough for the detector.
FACE_CROPS = ((2.5, 0.8, 8.0, 0.0), (1.2, 0.3, 4.0, 0.0), (1.2, 0.3, 4.0, 0.25))
# Pose runs on crops at least this tall, so a small person fills the detector's input.
CROP_MIN_SIDE = 512
# ...and on nothing longer than this, which binds first: MediaPipe scales every input to 256 px
# for its models, so more pixels add nothing but memory (its person mask comes back at the
# input's size, as floats), and it aborts in OpenCV or crashes on inputs tens of thousands of
# pixels long (a 64 x 5000 strip scaled to a 512 px short side).
MAX_INPUT_SIDE = 2048
# Second-pass tiles: this share of the photo's width and height, overlapping in the middle.
TILE_FRACTION = 0.6
# ...run only when no person found yet covers this share of the photo: beside a subject that
# large there is little room for a person too small for the whole-photo pass (the 50 photos of
# make eval gave the same findings without those tiles, in 28% less time).
TILES_UNLESS_PERSON_COVERS = 0.5
# Two detections are one person when this much of the smaller box lies inside the larger:
# a crop may show only part of someone another pass found whole.
SAME_PERSON_OVERLAP = 0.5
# The face detector misses faces that fill most of its input; it also looks at the photo
# padded by this share of its long side, where such a face is small enough.
FACE_SEARCH_PADDING = 0.5
# The pose landmarks that match the face detector's first three keypoints (right eye, left eye,
# nose tip), and how far apart, in face widths, they may lie for the face to be the skeleton's:
# on the labelled set a coherent skeleton's lie within 0.3, a stitched one's 0.6 or more.
FACE_LANDMARKS = tuple(LANDMARK_NAMES.index(name) for name in ("right_eye", "left_eye", "nose"))
FACE_AGREEMENT = 0.45
# Another person (or a face no pose was fitted to) overlaps the subject when this much of the
# smaller of their boxes lies in both: the subject's mask and skeleton may then take in parts
# of them (MediaPipe fits one skeleton per crop and often borrows a neighbour's arm).
OVERLAPPING_PERSON = 0.2
# Subject choice: a person's prominence is the square root of their mask's area (their size)
# times a centrality weight that falls to this value at the photo's corners.
CORNER_WEIGHT = 0.5


@dataclass
class _Person:
    keypoints: list[Keypoint]
    mask: np.ndarray  # uint8 0..255 at the detector input's size, covering `region`
    region: Box  # the part of the photo the detector saw
    bbox: Box
    presence: float

    def mask_on(self, box: Box, size: tuple[int, int]) -> np.ndarray:
        """The person mask over `box` of the photo, at `size` (width, height)."""
        to_mask_x = self.mask.shape[1] / self.region.width
        to_mask_y = self.mask.shape[0] / self.region.height
        # From an output pixel's centre to the mask pixel that covers the same photo point.
        scale_x, scale_y = box.width / size[0] * to_mask_x, box.height / size[1] * to_mask_y
        offset_x = ((box.x - self.region.x) * to_mask_x) + 0.5 * scale_x - 0.5
        offset_y = ((box.y - self.region.y) * to_mask_y) + 0.5 * scale_y - 0.5
        to_mask = np.array([[scale_x, 0, offset_x], [0, scale_y, offset_y]], np.float32)
        return cv2.warpAffine(
            self.mask,
            to_mask,
            size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )

    @property
    def mask_area(self) -> float:
        """The mask's area inside the person's box, in photo pixels (a coarse 64 x 64 count:
        it ranks people by size)."""
        inside = self.mask_on(self.bbox, (64, 64)) >= 255 * MASK_THRESHOLD
        return float(inside.mean()) * self.bbox.area

    def cut_off(self, width: int, height: int) -> bool:
        """Whether the box reaches an edge of its crop that is not an edge of the photo."""
        box, region = self.bbox, self.region
        return (
            (box.x <= region.x and region.x > 0)
            or (box.y <= region.y and region.y > 0)
            or (box.x + box.width >= region.x + region.width and region.x + region.width < width)
            or (
                box.y + box.height >= region.y + region.height and region.y + region.height < height
            )
        )

    def shows(self, face: FaceDetection) -> bool:
        """Whether `face` is this person's: the skeleton's nose and eyes lie where the face
        detector put them. A skeleton whose head sits near a face but whose eyes do not match
        it is usually stitched from two neighbours (one's face, another's body)."""
        pairs = zip(FACE_LANDMARKS, face.keypoints[: len(FACE_LANDMARKS)], strict=True)
        return all(
            np.hypot(self.keypoints[i].x - x, self.keypoints[i].y - y)
            <= FACE_AGREEMENT * face.box.width
            for i, (x, y) in pairs
        )


@dataclass
class Candidate:
    person: _Person
    face: FaceDetection | None
    evidence: Evidence


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


def load_models() -> None:
    """Load every model estimate_pose uses (a function's init calls this: see functions/)."""
    _landmarker()
    corroboration.load_models()
    load_detector()


def estimate_pose(image: np.ndarray) -> PoseEstimate | None:
    """The primary subject of an RGB uint8 photo, or None when no person is found."""
    height, width = image.shape[:2]
    faces = find_faces(image)
    people = [c for c in candidates(image, faces) if c.evidence.probability >= PERSON_PROBABILITY]
    if not people:
        return None
    unmatched_faces = [f for f in faces if not any(c.person.shows(f) for c in people)]
    primary = max(people, key=lambda c: _prominence(c.person, width, height))
    others = [c.person.bbox for c in people if c is not primary]
    others += [face.box for face in unmatched_faces]
    return PoseEstimate(
        keypoints=primary.person.keypoints,
        bbox=primary.person.bbox,
        confidence=primary.evidence.probability,
        evidence=primary.evidence,
        person_count=len(people) + len(unmatched_faces),
        overlapping_people=sum(
            _overlap(primary.person.bbox, box) >= OVERLAPPING_PERSON for box in others
        ),
        person_mask=_binary(primary.person.mask_on(Box(0, 0, width, height), (width, height))),
        face_box=primary.face.box if primary.face else None,
    )


def candidates(image: np.ndarray, faces: list[FaceDetection]) -> list[Candidate]:
    """Every pose hit in the photo with the evidence that it is a person."""
    return [_corroborated(image, person, faces) for person in _find_people(image, faces)]


def _binary(mask: np.ndarray) -> np.ndarray:
    return np.where(mask >= 255 * MASK_THRESHOLD, 255, 0).astype(np.uint8)


def _find_people(image: np.ndarray, faces: list[FaceDetection]) -> list[_Person]:
    """Pose hits from the whole photo, then from crops around the faces no hit shows yet
    (largest face first), then from four tiles unless a person found fills much of the photo;
    a hit that repeats one already found is kept only when it is the better view (see _add)."""
    height, width = image.shape[:2]
    people: list[_Person] = []
    size = (height, width)
    _add(people, _detect_people(image, Box(0, 0, width, height), size), faces, size)
    for face in sorted(faces, key=lambda f: f.box.area, reverse=True):
        for crop, padding in _crops_around_face(face.box, width, height):
            if any(person.shows(face) for person in people):
                break
            _add(people, _detect_people(image[crop.slices], crop, size, padding), faces, size)
    if any(person.bbox.area >= TILES_UNLESS_PERSON_COVERS * width * height for person in people):
        return people
    for tile in _tiles(width, height):
        _add(people, _detect_people(image[tile.slices], tile, size), faces, size)
    return people


def _add(
    people: list[_Person],
    found: list[_Person],
    faces: list[FaceDetection],
    size: tuple[int, int],
) -> None:
    """Adds the new hits. One that repeats a hit replaces it when it is the better view of
    that person: first one that shows a face over one that shows none (a skeleton stitched from
    two neighbours, or a back view), then one whole in its crop over one cut off by the crop."""
    height, width = size

    def view(person: _Person) -> tuple[bool, bool]:
        return any(person.shows(face) for face in faces), not person.cut_off(width, height)

    for new in found:
        same = next(
            (i for i, p in enumerate(people) if _overlap(new.bbox, p.bbox) >= SAME_PERSON_OVERLAP),
            None,
        )
        if same is None:
            people.append(new)
        elif view(new) > view(people[same]):
            people[same] = new


def _corroborated(image: np.ndarray, person: _Person, faces: list[FaceDetection]) -> Candidate:
    face = max((f for f in faces if person.shows(f)), key=lambda f: f.confidence, default=None)
    evidence = gather(
        image,
        person.bbox,
        person.mask_on,
        person.keypoints,
        person.presence,
        face.confidence if face else 0.0,
    )
    return Candidate(person, face, evidence)


def _prominence(person: _Person, width: int, height: int) -> float:
    """Size times centrality: the largest, most central person is the subject."""
    box = person.bbox
    off_centre = np.hypot(
        (box.x + box.width / 2 - width / 2) / (width / 2),
        (box.y + box.height / 2 - height / 2) / (height / 2),
    ) / np.sqrt(2)
    return float(np.sqrt(person.mask_area) * (1 - (1 - CORNER_WEIGHT) * off_centre))


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


def find_faces(image: np.ndarray) -> list[FaceDetection]:
    """Faces in photo pixels, small and large. The detector sees 192 px whatever it is given,
    so it is given the photo shrunk to MAX_INPUT_SIDE at most, not a full-resolution copy, and
    the same padded with grey (see FACE_SEARCH_PADDING)."""
    height, width = image.shape[:2]
    small = _scaled(image, min(1.0, MAX_INPUT_SIDE / max(height, width)))
    if small is None:
        return []
    to_photo = width / small.shape[1], height / small.shape[0]
    border = int(FACE_SEARCH_PADDING * max(small.shape[:2]))
    found = detect_faces(small) + [
        _shifted(face, -border) for face in detect_faces(imaging.padded(small, border))
    ]
    faces: list[FaceDetection] = []
    for face in sorted(found, key=lambda f: f.confidence, reverse=True):
        if all(face.box.iou(kept.box) < SAME_FACE_IOU for kept in faces):
            faces.append(face)
    return [
        replace(
            face,
            box=_to_photo(face.box, to_photo, (height, width)),
            keypoints=face.keypoints * np.array(to_photo),
        )
        for face in faces
    ]


def _shifted(face: FaceDetection, offset: int) -> FaceDetection:
    box = face.box
    return replace(
        face,
        box=Box(box.x + offset, box.y + offset, box.width, box.height),
        keypoints=face.keypoints + offset,
    )


def _to_photo(box: Box, scale: tuple[float, float], size: tuple[int, int]) -> Box:
    """`box` on a scaled image back in photo pixels (scale: photo per image pixel, x and y)."""
    left, top = max(0, int(box.x * scale[0])), max(0, int(box.y * scale[1]))
    right = min(size[1], int(np.ceil((box.x + box.width) * scale[0])))
    bottom = min(size[0], int(np.ceil((box.y + box.height) * scale[1])))
    return Box(left, top, right - left, bottom - top)


def _detect_people(
    image: np.ndarray, region: Box, full_size: tuple[int, int], padding: float = 0.0
) -> list[_Person]:
    """People in `image`, which shows `region` of a photo of `full_size` (height, width), found
    with a grey border of `padding` times its long side around it."""
    scaled = _scaled(image, _input_scale(*image.shape[:2]))
    if scaled is None:
        return []
    inner_height, inner_width = scaled.shape[:2]
    border = int(padding * max(inner_height, inner_width))
    if border:
        scaled = imaging.padded(scaled, border)
    result = _landmarker().detect(mp_image(scaled))
    people = []
    masks = result.segmentation_masks or []
    for landmarks, mask in zip(result.pose_landmarks, masks, strict=True):
        keypoints = []
        for name, mark in zip(LANDMARK_NAMES, landmarks, strict=True):
            # From the padded input's unit square to the region's, then to the photo.
            x = (mark.x * scaled.shape[1] - border) / inner_width
            y = (mark.y * scaled.shape[0] - border) / inner_height
            photo_x, photo_y = region.x + x * region.width, region.y + y * region.height
            keypoints.append(
                Keypoint(
                    name=name,
                    x=photo_x,
                    y=photo_y,
                    nx=photo_x / full_size[1],
                    ny=photo_y / full_size[0],
                    z=mark.z,
                    visibility=mark.visibility,
                )
            )
        # Kept at the detector's size (a full-size float mask per person took 200 MB each
        # on a 50 MP photo); only the primary subject's is scaled to the photo.
        inner = mask.numpy_view()[border : border + inner_height, border : border + inner_width]
        small_mask = np.round(inner[..., 0] * 255).astype(np.uint8)
        people.append(
            _Person(
                keypoints=keypoints,
                mask=small_mask,
                region=region,
                bbox=_bounding_box(keypoints, small_mask, region, full_size),
                presence=float(np.mean([landmarks[i].presence for i in PRESENCE_LANDMARKS])),
            )
        )
    return people


def _bounding_box(
    keypoints: list[Keypoint], mask: np.ndarray, region: Box, full_size: tuple[int, int]
) -> Box:
    """The union of the visible keypoints and the mask's pixels around them, up to half a
    head's size to the sides and below and a whole head above (the eyes are the highest
    landmark): keypoints alone miss hair, hands and loose clothing; the mask alone often runs on
    into a neighbour or a nearby object. `mask` covers `region` of the photo at its own
    resolution."""
    height, width = full_size
    # Landmarks MediaPipe only guesses do not shape the box.
    visible = [k for k in keypoints if k.usable] or keypoints
    xs, ys = [k.x for k in visible], [k.y for k in visible]
    left, top, right, bottom = min(xs), min(ys), max(xs), max(ys)
    reach = head_size(keypoints)
    to_mask_x, to_mask_y = mask.shape[1] / region.width, mask.shape[0] / region.height

    def on_mask(x: float, y: float) -> tuple[int, int]:
        column = int(np.clip((x - region.x) * to_mask_x, 0, mask.shape[1]))
        row = int(np.clip((y - region.y) * to_mask_y, 0, mask.shape[0]))
        return column, row

    (x0, y0) = on_mask(left - reach / 2, top - reach)
    (x1, y1) = on_mask(right + reach / 2, bottom + reach / 2)
    (kx0, ky0), (kx1, ky1) = on_mask(left, top), on_mask(right, bottom)
    window = (mask[y0:y1, x0:x1] >= 255 * MASK_THRESHOLD).astype(np.uint8)
    if window.size:
        _, labels = cv2.connectedComponents(window)
        touching = np.unique(labels[ky0 - y0 : ky1 - y0 + 1, kx0 - x0 : kx1 - x0 + 1])
        rows, columns = np.nonzero(np.isin(labels, touching[touching > 0]))
        if len(rows):
            left = min(left, region.x + (x0 + columns.min()) / to_mask_x)
            right = max(right, region.x + (x0 + columns.max() + 1) / to_mask_x)
            top = min(top, region.y + (y0 + rows.min()) / to_mask_y)
            bottom = max(bottom, region.y + (y0 + rows.max() + 1) / to_mask_y)
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(width, int(np.ceil(right))), min(height, int(np.ceil(bottom)))
    return Box(left, top, right - left, bottom - top)


def _crops_around_face(face: Box, width: int, height: int) -> list[tuple[Box, float]]:
    """The FACE_CROPS around `face`, within the photo, each with its padding."""
    crops = []
    for sides, above, below, padding in FACE_CROPS:
        left = max(0, int(face.x - sides * face.width))
        right = min(width, int(face.x + face.width + sides * face.width))
        top = max(0, int(face.y - above * face.height))
        bottom = min(height, int(face.y + face.height + below * face.height))
        crops.append((Box(left, top, right - left, bottom - top), padding))
    return crops


def _tiles(width: int, height: int) -> list[Box]:
    """Four overlapping quadrant-sized tiles: people too small for the whole-photo pass."""
    tile_width, tile_height = int(width * TILE_FRACTION), int(height * TILE_FRACTION)
    return [
        Box(x, y, tile_width, tile_height)
        for y in (0, height - tile_height)
        for x in (0, width - tile_width)
    ]


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    smaller = min(a.area, b.area)
    return a.intersection(b) / smaller if smaller else 0.0
