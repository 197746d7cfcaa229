"""How sure a result is, in one block a person can read: the person's calibrated confidence,
how much of the body is in view, how much clothing the colours come from, whether the face
could be read, and a plain note for each part that should not be relied on."""

from __future__ import annotations

from typing import Any

from silhouette.schema import Face, Person, ResultQuality
from silhouette.vision.evidence import SURE_PERSON


def assess(facts: dict[str, Any]) -> ResultQuality | None:
    """The quality block of a result assembled from the stages' facts (None without a person:
    a rejected or failed job has nothing to qualify)."""
    if facts.get("person") is None:
        return None
    person = Person.model_validate(facts["person"])
    face = Face.model_validate(facts["face"]) if facts.get("face") else None
    notes = []
    if person.confidence < SURE_PERSON:
        notes.append(
            f"the person is uncertain ({person.confidence:.0%}): the models only partly agree "
            "that this is a person"
        )
    if person.framing == "face_only":
        notes.append("only the face is in view: there is no body to measure or describe")
    if person.overlapping_people:
        count = person.overlapping_people
        others = "another person overlaps" if count == 1 else f"{count} people overlap"
        notes.append(
            f"{others} the subject: the colours may include their clothing, and the skeleton "
            "their limbs"
        )
    clothing = facts.get("clothing") or {}
    if clothing.get("reason"):
        notes.append(clothing["reason"])
    face_usable = _face_usable(face)
    if face is not None and face_usable is False:
        notes.append(f"the face could not be read: {face.reason or 'its estimates are unsure'}")
    return ResultQuality(
        person_confidence=person.confidence,
        framing=person.framing,
        clothing_share=clothing.get("share_of_person"),
        face_usable=face_usable,
        reliable=not notes,
        notes=notes,
    )


def _face_usable(face: Face | None) -> bool | None:
    """Whether age or sex could be read; None when face analysis was switched off."""
    if face is None or face.status == "off":
        return None
    if face.status != "ok" or face.age is None or face.sex is None:
        return False
    return face.age.status == "ok" or face.sex.value != "unknown"
