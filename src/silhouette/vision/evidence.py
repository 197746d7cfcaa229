"""Is a pose hit a person? MediaPipe's pose model fits a skeleton to whatever it is shown and
reports high presence on roof ridges, a mandrill's nose or a carnival mask. A hit counts as a
person only when other models agree, and `person.confidence` is the probability that it is one,
calibrated on the labelled development set (samples/eval) rather than the landmark score.

The evidence for one hit (gathered by corroboration.py, which runs the models):
- agreement: the share of the pose model's person mask that MediaPipe's selfie segmenter, run on
  the hit's own crop (so a small person fills its input), also calls person;
- face: the confidence of a face detected at the hit's head (0 when none);
- torso: both shoulders and a hip are seen, the body a back or far-away view shows instead of
  a face;
- presence: the pose model's own presence score of the head and shoulders."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# The probability is a soft AND of three questions, each a logistic step at a threshold: does
# the segmenter see a person where the pose model does; is there a face at the head or a torso
# below it; does the pose model itself believe a person is present. The thresholds and the
# steps' steepness are fitted (maximum likelihood) on the pose hits of the labelled set by
# `make calibrate` (benchmarks/calibrate_person.py); too few hits for a free-form regression,
# which learned that a torso makes a person less likely from one painting.
CALIBRATION_FILE = Path(__file__).with_name("person_calibration.json")
# A hit is reported as a person from this probability on...
PERSON_PROBABILITY = 0.5
# ...and as a sure one from this one on: below it the result's notes and overlay flag it.
SURE_PERSON = 0.8


@dataclass(frozen=True)
class Evidence:
    agreement: float  # 0..1
    face: float  # 0..1, 0 when no face was found at the head
    torso: bool
    presence: float  # 0..1

    @property
    def probability(self) -> float:
        """The calibrated probability that the hit is a real person."""
        return probability(self, calibration())

    def features(self) -> dict[str, float]:
        return {
            "agreement": self.agreement,
            "face": self.face,
            "torso": float(self.torso),
            "presence": self.presence,
        }


def probability(evidence: Evidence, fitted: dict[str, float]) -> float:
    def step(value: float, threshold: float) -> float:
        return 1 / (1 + math.exp(-fitted["steepness"] * (value - threshold)))

    seen = step(evidence.agreement, fitted["agreement"])
    face_or_torso = 1.0 if evidence.torso else step(evidence.face, fitted["face"])
    present = step(evidence.presence, fitted["presence"])
    return seen * face_or_torso * present


@cache
def calibration() -> dict[str, float]:
    weights: dict[str, float] = json.loads(CALIBRATION_FILE.read_text())
    return weights
