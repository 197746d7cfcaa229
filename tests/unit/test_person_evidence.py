"""Right subject, no phantom people: pose hits must be corroborated, and the subject is the
person a human would name, measured on photos of the labelled development set (samples/eval)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from silhouette.service.stages.pose import person_of
from silhouette.vision import evidence
from silhouette.vision.pose import candidates, estimate_pose, find_faces
from silhouette.vision.types import Box


def photo(eval_set, name: str) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(eval_set.path(name))).convert("RGB"))


def labelled_subject(eval_labels, name: str) -> Box:
    return Box(*eval_labels[name]["subject"])


# Each of these drew a confident skeleton before hits had to be corroborated: a roof ridge
# (pose presence 1.0), a mandrill's nose, a carnival mask on white.
@pytest.mark.parametrize("name", ["china", "baboon", "vendetta_mask"])
def test_a_photo_without_a_person_has_no_person(eval_set, eval_labels, name):
    assert not eval_labels[name]["person"]
    image = photo(eval_set, name)

    assert estimate_pose(image) is None
    # The pose model still fits a skeleton there; the evidence is what turns it down.
    hits = candidates(image, find_faces(image))
    assert hits and all(hit.evidence.probability < evidence.PERSON_PROBABILITY for hit in hits)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("hiker_back", "seen from behind: no face, a torso"),
        ("aerial_walker", "seen from high above, small in the frame"),
        ("terminator_face", "a face filling the photo, no shoulders"),
        ("sean_connery", "a close-up the whole-photo pass misses"),
    ],
)
def test_people_without_a_face_or_a_body_in_view_are_still_people(eval_set, eval_labels, name, why):
    estimate = estimate_pose(photo(eval_set, name))

    assert estimate is not None, why
    assert estimate.confidence >= evidence.PERSON_PROBABILITY
    assert estimate.bbox.iou(labelled_subject(eval_labels, name)) >= 0.5, why


def test_a_close_face_is_the_subject_rather_than_the_person_beside_it(eval_set, eval_labels):
    """The man in the hat fills the left of the frame; the pose model only finds the woman
    beside him on the whole photo. The subject must be him, and both are counted."""
    estimate = estimate_pose(photo(eval_set, "couple_grey"))

    assert estimate is not None
    assert estimate.bbox.iou(labelled_subject(eval_labels, "couple_grey")) >= 0.5
    assert estimate.person_count == 2


def test_a_skeleton_stitched_from_two_neighbours_gives_way_to_the_person_s_own(
    eval_set, eval_labels
):
    """Four women side by side: on the whole photo the pose model fits one skeleton with the
    central woman's head and her neighbour's hips. Its eyes do not match her face, so the
    skeleton found around her face replaces it, and every person found has their own face."""
    image = photo(eval_set, "women_group")
    faces = find_faces(image)
    people = [c for c in candidates(image, faces) if c.face is not None]

    central = labelled_subject(eval_labels, "women_group")
    assert any(c.person.bbox.iou(central) >= 0.5 for c in people)
    for person in people:
        face = person.face.box
        eyes = [k for k in person.person.keypoints if k.name in ("left_eye", "right_eye")]
        assert all(
            face.x <= k.x <= face.x + face.width and face.y <= k.y <= face.y + face.height
            for k in eyes
        )


def test_confidence_is_the_calibrated_probability_and_the_evidence_is_reported(sample):
    image = np.asarray(Image.open(sample.path("astronaut")).convert("RGB"))
    person = person_of(estimate_pose(image)).model_dump(mode="json")

    assert set(person["evidence"]) == {"agreement", "face", "torso", "presence"}
    assert person["evidence"]["face"] > 0.5  # her face is in plain view
    expected = evidence.Evidence(
        agreement=person["evidence"]["agreement"],
        face=person["evidence"]["face"],
        torso=bool(person["evidence"]["torso"]),
        presence=person["evidence"]["presence"],
    ).probability
    assert person["confidence"] == pytest.approx(expected, abs=0.01)


def test_each_question_of_the_evidence_can_turn_a_hit_down():
    calibrated = evidence.calibration()
    strong = evidence.Evidence(agreement=1.0, face=0.95, torso=True, presence=1.0)
    assert strong.probability > 0.9
    for weak in (
        evidence.Evidence(agreement=0.0, face=0.95, torso=True, presence=1.0),
        evidence.Evidence(agreement=1.0, face=0.0, torso=False, presence=1.0),
        evidence.Evidence(agreement=1.0, face=0.95, torso=True, presence=0.0),
    ):
        assert weak.probability < evidence.PERSON_PROBABILITY, (weak, calibrated)
