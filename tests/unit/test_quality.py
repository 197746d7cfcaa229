"""The result's quality block: every unreliable part is flagged with a plain reason."""

from __future__ import annotations

import numpy as np
from PIL import Image

from silhouette.service.quality import assess
from silhouette.service.stages.face import face_of
from silhouette.service.stages.pose import person_of
from silhouette.settings import get_settings
from silhouette.vision import decoding, face, pose
from silhouette.vision.evidence import SURE_PERSON


def facts_for(sample, name: str) -> dict:
    image = np.asarray(Image.open(sample.path(name)).convert("RGB"))
    estimate = pose.estimate_pose(image)
    analysed = face.analyse_face(image, hint=estimate.face_box or estimate.bbox)
    return {
        "person": person_of(estimate).model_dump(mode="json"),
        "face": face_of(analysed).model_dump(mode="json"),
    }


def test_a_clear_portrait_is_reliable(sample):
    quality = assess(facts_for(sample, "astronaut"))

    assert quality.reliable and quality.notes == []
    assert quality.person_confidence >= SURE_PERSON
    assert quality.face_usable is True
    assert quality.framing == "upper_body"


def test_each_unreliable_part_gets_a_reason(sample):
    facts = facts_for(sample, "astronaut")
    facts["person"]["confidence"] = 0.55
    facts["face"] = {"status": "unknown", "reason": "no face found"}
    facts["clothing"] = {"share_of_person": 0.02, "reason": "too little clothing visible"}

    quality = assess(facts)

    assert not quality.reliable
    assert quality.face_usable is False
    assert quality.clothing_share == 0.02
    assert len(quality.notes) == 3
    assert any("55%" in note for note in quality.notes)
    assert any("no face found" in note for note in quality.notes)
    assert "too little clothing visible" in quality.notes


def test_a_face_only_photo_says_there_is_no_body(eval_set):
    image = np.asarray(Image.open(eval_set.path("terminator_face")).convert("RGB"))
    person = person_of(pose.estimate_pose(image)).model_dump(mode="json")

    quality = assess({"person": person, "face": {"status": "off"}})

    assert quality.framing == "face_only"
    assert quality.face_usable is None  # switched off, not failed
    assert any("only the face" in note for note in quality.notes)


def test_people_pressed_against_the_subject_make_its_colours_unreliable(eval_set):
    """Five children side by side: the girl in the middle is the subject, and the boy in green
    beside her lends the skeleton an arm and the colours his shirt."""
    normalised = decoding.normalise(
        eval_set.path("children").read_bytes(), decoding.Limits.from_settings(get_settings())
    )
    image = normalised.pixels  # on white, as ingest composites a transparent photo
    person = person_of(pose.estimate_pose(image)).model_dump(mode="json")

    quality = assess({"person": person, "face": {"status": "off"}})

    assert person["overlapping_people"] >= 1
    assert not quality.reliable
    assert any("overlap the subject" in note for note in quality.notes)


def test_nothing_to_qualify_without_a_person():
    assert assess({"image": {"width": 10, "height": 10}}) is None
