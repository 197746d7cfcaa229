"""How sure a result is, in one block a person can read: the person's calibrated confidence,
how much of the body is in view, how much clothing the colours come from, whether the face
could be read, and a plain note for each part that should not be relied on."""

from __future__ import annotations

from typing import Any

from silhouette.schema import ResultQuality
from silhouette.vision.evidence import SURE_PERSON


def assess(facts: dict[str, Any]) -> ResultQuality | None:
    """The quality block of a result assembled from the stages' facts (None without a person:
    a rejected or failed job has nothing to qualify)."""
    person = facts.get("person")
    if person is None:
        return None
    notes = []
    confidence = person["confidence"]
    if confidence < SURE_PERSON:
        notes.append(
            f"the person is uncertain ({confidence:.0%}): the models only partly agree that "
            "this is a person"
        )
    if person["framing"] == "face_only":
        notes.append("only the face is in view: there is no body to measure or describe")
    overlapping = person.get("overlapping_people", 0)
    if overlapping:
        others = "another person overlaps" if overlapping == 1 else f"{overlapping} people overlap"
        notes.append(
            f"{others} the subject: the colours may include their clothing, and the skeleton "
            "their limbs"
        )
    clothing = facts.get("clothing") or {}
    if clothing.get("reason"):
        notes.append(clothing["reason"])
    face = facts.get("face") or {}
    face_usable = _face_usable(face)
    if face_usable is False:
        notes.append(
            f"the face could not be read: {face.get('reason') or 'its estimates are unsure'}"
        )
    return ResultQuality(
        person_confidence=confidence,
        framing=person["framing"],
        clothing_share=clothing.get("share_of_person"),
        face_usable=face_usable,
        reliable=not notes,
        notes=notes,
    )


def _face_usable(face: dict[str, Any]) -> bool | None:
    """Whether age or sex could be read; None when face analysis was switched off."""
    if not face or face.get("status") == "off":
        return None
    if face.get("status") != "ok":
        return False
    return face["age"]["status"] == "ok" or face["sex"]["value"] != "unknown"
